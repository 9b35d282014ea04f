from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from integrations.banners import xero_connection_banners
        from organisations.banners import register_banner_provider

        register_banner_provider(xero_connection_banners)
