"""Fetching the resources that webhook events name from Xero, and handing them to the invoices app's appliers.

Webhooks carry ids only, so processing fetches the resources from Xero (in batches: GET /Invoices?IDs=...) and
hands them to the applier the invoices app names in settings.XERO_RESOURCE_APPLIERS (the dependency runs
invoices -> integrations; this package never imports invoices). Applying is idempotent and keyed on Xero's
UpdatedDateUTC, so processing an event twice, or out of order, leaves the newest state.

Fetches cost what they must (issue 15): an event older than the version we already hold (a replay, a late delivery,
an event a reconciliation pass overtook) is not fetched at all; the selector the invoices app names in
settings.XERO_RESOURCE_VERSIONS says which versions we hold. Our own pushes' echoes are still fetched: their
eventDateUtc is not before the UpdatedDateUTC we stored from Xero's answer.
"""

from __future__ import annotations

import datetime as dt
import logging
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
APPLY_ID_KEYS = {"INVOICE": "InvoiceID", "CONTACT": "ContactID", "CREDITNOTE": "CreditNoteID"}
APPLY_FAILED = "apply_failed"
# Xero pages GET /Invoices and /Contacts by 100, with line items only when `page` is given.
# https://developer.xero.com/documentation/api/accounting/invoices#optional-parameters-for-get-invoices
FETCH_CHUNK = 100
# An event's outcome when what it names was not fetched, because we hold it at a newer version than the event.
FETCH_SKIPPED = "fetch_skipped"
# eventDateUtc and UpdatedDateUTC carry milliseconds ("2024-06-21T01:15:39.902", /Date(1718932539902+0000)/); a
# value without any may have been cut to whole seconds, and then a difference under a second proves nothing.
SKIP_MARGIN = dt.timedelta(milliseconds=1)
SKIP_MARGIN_WHOLE_SECONDS = dt.timedelta(seconds=1)

logger = logging.getLogger("integrations.webhooks")


@dataclass(frozen=True)
class ApplyOutcome:
    """What an applier did with one resource fetched from Xero (returned by the invoices app)."""

    resource_id: str
    outcome: str  # applied | unchanged | stale | created_in_xero | not_ours | ignored | conflict | apply_failed
    label: str = ""
    summary: str = ""

    @property
    def changed(self) -> bool:
        return self.outcome in ("applied", "created_in_xero")


Applier = Callable[..., list[ApplyOutcome]]
VersionsHeld = Callable[..., dict[str, dt.datetime]]


def fetch_needed(*, event_date: dt.datetime, held: dt.datetime | None) -> bool:
    """False only when the version we hold is later than the event by more than the margin of the coarser of the two
    timestamps: equal ones (our own push's echo) are fetched, and so is anything we do not hold."""
    if held is None:
        return True
    margin = SKIP_MARGIN_WHOLE_SECONDS if 0 in (event_date.microsecond, held.microsecond) else SKIP_MARGIN
    return held - event_date <= margin


def resource_versions_held(
    *, organisation_id: int, category: str, resource_ids: Sequence[str]
) -> dict[str, dt.datetime]:
    """The Xero version (UpdatedDateUTC) we hold of each of these resources of the organisation, from the selector
    named for the category in settings.XERO_RESOURCE_VERSIONS; empty when none is named. Never raises: if the
    selector fails, everything is fetched as before."""
    path = getattr(settings, "XERO_RESOURCE_VERSIONS", {}).get(category)
    if not path or not resource_ids:
        return {}
    try:
        selector: VersionsHeld = import_string(path)
        return selector(organisation_id=organisation_id, resource_ids=list(resource_ids))
    except Exception:  # noqa: BLE001 - a bug here must cost fetches, never events
        logger.exception(
            "xero.webhook.versions_failed",
            extra={"event": "xero.webhook.versions_failed", "organisation_id": organisation_id, "category": category},
        )
        return {}


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
    """Hand fetched resources to the applier registered for their category (settings.XERO_RESOURCE_APPLIERS).

    One resource that cannot be applied (a bug, a value our tables cannot hold) does not hold back the others: when
    the batch fails, each is applied on its own (those already applied are unchanged by then), and the one that
    fails comes back as `apply_failed` with why, for its caller to show."""
    if not resources:
        return []
    applier: Applier = import_string(settings.XERO_RESOURCE_APPLIERS[category])
    try:
        return applier(organisation_id=organisation_id, resources=list(resources), source=source)
    except Exception:
        if len(resources) == 1:
            raise
    outcomes: list[ApplyOutcome] = []
    for resource in resources:
        try:
            outcomes += applier(organisation_id=organisation_id, resources=[resource], source=source)
        except Exception as exc:  # noqa: BLE001 - shown with its resource; the others go on
            resource_id = str(resource.get(APPLY_ID_KEYS.get(category, "")) or "").lower()
            logger.exception(
                "xero.apply_failed",
                extra={"event": "xero.apply_failed", "organisation_id": organisation_id, "resource_id": resource_id},
            )
            outcomes.append(
                ApplyOutcome(
                    resource_id=resource_id, outcome=APPLY_FAILED, summary=f"{type(exc).__name__}: {exc}"[:300]
                )
            )
    return outcomes
