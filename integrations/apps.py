from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from integrations.audit import xero_audit_source
        from integrations.banners import xero_connection_banners
        from organisations.audit import register_audit_source
        from organisations.banners import register_banner_provider

        register_banner_provider(xero_connection_banners)
        register_audit_source(xero_audit_source())
