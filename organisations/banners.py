"""Apps higher up (integrations) register functions that return banners for the current request.

This keeps the dependency direction: organisations never imports integrations.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class Banner:
    text: str
    level: str = "warning"
    url: str = ""
    link_text: str = ""


BannerProvider = Callable[[HttpRequest], list[Banner]]
_providers: list[BannerProvider] = []


def register_banner_provider(provider: BannerProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def banners_for(request: HttpRequest) -> list[Banner]:
    banners: list[Banner] = []
    for provider in _providers:
        banners.extend(provider(request))
    return banners
