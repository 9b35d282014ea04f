"""The Xero banner on every page of an organisation whose connection needs attention."""

from django.http import HttpRequest
from django.urls import reverse

from integrations.models import XeroConnection
from organisations.banners import Banner


def xero_connection_banners(request: HttpRequest) -> list[Banner]:
    organisation = getattr(request, "organisation", None)
    if organisation is None:
        return []
    connection = (
        XeroConnection.objects.filter(organisation=organisation)
        .only("status", "tenant_name", "reconnect_requested_at", "reconnect_requested_reason", "disconnect_step")
        .first()
    )
    if connection is None:
        return []
    url = reverse("integrations:manage")
    tenant = connection.tenant_name or "your Xero organisation"
    if connection.status == XeroConnection.Status.NEEDS_RECONNECT:
        return [
            Banner(
                text=f"Xero needs you to reconnect: Xero no longer accepts Coordinoter's access to {tenant}. "
                "New invoice batches wait until an admin reconnects.",
                level="error",
                url=url,
                link_text="Reconnect Xero",
            )
        ]
    if connection.status == XeroConnection.Status.REVOKED_IN_XERO:
        return [
            Banner(
                text=f"Xero was disconnected from {tenant} in Xero. Invoice batches no longer go to Xero.",
                level="error",
                url=url,
                link_text="Connect to Xero again",
            )
        ]
    if connection.reconnect_requested_at and connection.status == XeroConnection.Status.ACTIVE:
        return [
            Banner(
                text=f"Coordinoter support asks an admin to reconnect Xero: {connection.reconnect_requested_reason}",
                level="warning",
                url=url,
                link_text="Reconnect Xero",
            )
        ]
    return []
