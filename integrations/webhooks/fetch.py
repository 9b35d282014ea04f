"""Fetching the resources that webhook events name from Xero, and handing them to the invoices app's appliers.

Webhooks carry ids only, so processing fetches the resources from Xero (in batches: GET /Invoices?IDs=...) and
hands them to the applier the invoices app names in settings.XERO_RESOURCE_APPLIERS (the dependency runs
invoices -> integrations; this package never imports invoices). Applying is idempotent and keyed on Xero's
UpdatedDateUTC, so processing an event twice, or out of order, leaves the newest state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from integrations.models import XeroConnection
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.ratelimit import Priority

RESOURCE_PATHS = {"INVOICE": "Invoices", "CONTACT": "Contacts"}
# Xero pages GET /Invoices and /Contacts by 100, with line items only when `page` is given.
# https://developer.xero.com/documentation/api/accounting/invoices#optional-parameters-for-get-invoices
FETCH_CHUNK = 100


@dataclass(frozen=True)
class ApplyOutcome:
    """What an applier did with one resource fetched from Xero (returned by the invoices app)."""

    resource_id: str
    outcome: str  # applied | unchanged | stale | created_in_xero | not_ours | ignored | conflict
    label: str = ""
    summary: str = ""

    @property
    def changed(self) -> bool:
        return self.outcome in ("applied", "created_in_xero")


Applier = Callable[..., list[ApplyOutcome]]


def xero_connection_usable(organisation_id: int) -> XeroConnection | None:
    return XeroConnection.objects.usable().filter(organisation_id=organisation_id).first()


def xero_resources_fetch(
    *, connection: XeroConnection, category: str, resource_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The current version of each resource, fetched in pages of 100 ids: one call per 100 events, not one each
    (Xero allows a tenant 60 calls a minute). An id Xero does not return is simply absent."""
    client = XeroClient(connection.pk, rate_limiter=xero_rate_limiter(), priority=Priority.WEBHOOK)
    found: list[dict[str, Any]] = []
    for start in range(0, len(resource_ids), FETCH_CHUNK):
        chunk = resource_ids[start : start + FETCH_CHUNK]
        if category == "CONTACT":
            response = accounting.contacts_get(client, ids=chunk, include_archived=True, page=1)
        else:
            response = accounting.invoices_get(client, ids=chunk)
        found.extend(accounting.items(response, RESOURCE_PATHS[category]))
    return found


def xero_rate_limiter():
    """The push pipeline's shared per-tenant limiter, when it is installed."""
    try:
        from integrations.xero import ratelimit
    except ImportError:
        return None
    factory = getattr(ratelimit, "rate_limiter", None)
    return factory() if callable(factory) else None


def resource_apply(
    *, organisation_id: int, category: str, resources: Sequence[Mapping[str, Any]], source: str
) -> list[ApplyOutcome]:
    """Hand fetched resources to the applier registered for their category (settings.XERO_RESOURCE_APPLIERS)."""
    if not resources:
        return []
    applier: Applier = import_string(settings.XERO_RESOURCE_APPLIERS[category])
    return applier(organisation_id=organisation_id, resources=list(resources), source=source)
