from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from integrations.banners import xero_connection_banners
        from organisations.banners import register_banner_provider

        register_banner_provider(xero_connection_banners)

        from integrations.connections.reports import on_xero_report
        from integrations.registry import register_report_listener

        register_report_listener(on_xero_report)

        from integrations.connections import disconnect

        disconnect.register()  # the disconnect steps' outbound kinds
