from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from integrations.models import XeroConnection


def _connected(request: HttpRequest) -> bool:
    organisation = getattr(request, "organisation", None)
    if organisation is None:
        return False
    return XeroConnection.objects.filter(
        organisation=organisation, status__in=XeroConnection.BOUND_STATUSES, disconnect_step=""
    ).exists()


def xero(request: HttpRequest) -> dict:
    """`xero_connected` for the help panel (connecting help comes first until the organisation is connected).
    Lazy: one small query, only on pages whose template reads it."""
    return {"xero_connected": SimpleLazyObject(lambda: _connected(request))}
