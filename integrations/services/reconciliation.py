"""Reconciliation: a beat-driven poll per connected tenant that catches whatever a webhook missed.

GET /Invoices, /Contacts and /CreditNotes with If-Modified-Since the start of the last complete pass, paged, ordered by
UpdatedDateUTC; everything goes through the same appliers as webhook events, so only newer copies change anything.
What a pass had to change, with no webhook event waiting to bring it in, is drift: counted and shown to support.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from integrations.models import XeroConnection
from integrations.services.reconcile_cadence import reconcile_due_claim, reconcile_pass_scheduled
from integrations.webhooks import fetch
from integrations.webhooks.fetch import RESOURCE_PATHS, resource_apply, xero_connection_usable
from integrations.webhooks.models import ReconciliationState, WebhookEvent
from integrations.webhooks.process import reconciliation_state_for
from integrations.webhooks.record import KNOWN_CATEGORIES
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroError, XeroRateLimited
from integrations.xero.ratelimit import Priority

logger = logging.getLogger("integrations.webhooks")

# Credit notes are polled only: the inbox takes invoice and contact events (a change to an invoice's credit shows
# on the invoice itself), and a credit note's own changes (voided, refunded, allocated in Xero) come back here.
POLLED_CATEGORIES = (*KNOWN_CATEGORIES, "CREDITNOTE")
POLL_PATHS = {**RESOURCE_PATHS, "CREDITNOTE": "CreditNotes"}
ID_KEYS = {"INVOICE": "InvoiceID", "CONTACT": "ContactID", "CREDITNOTE": "CreditNoteID"}
RECONCILE_LEASE = dt.timedelta(minutes=10)
# If-Modified-Since is asked a little before the last pass began: clocks differ, and a repeat is harmless.
RECONCILE_OVERLAP = dt.timedelta(minutes=2)
RECONCILE_MAX_PAGES = 50
DRIFT_RECENT_KEEP = 25


@dataclass
class ReconcileResult:
    checked: int = 0
    drift: int = 0
    busy: bool = False
    skipped: str = ""
    retry_after: int | None = None
    repairs: list[dict[str, Any]] = field(default_factory=list)
    # Resources that could not be applied (fetch.APPLY_FAILED): the pass goes on past them and says so.
    unapplied: list[str] = field(default_factory=list)


def reconciliation_enqueue(*, organisation_id: int) -> bool:
    """Ask a worker for a reconciliation pass now (support's button). False if the broker is unreachable."""
    from coordinoter import queue
    from integrations.webhooks.tasks import reconcile_organisation

    try:
        queue.enqueue(reconcile_organisation, kwargs={"organisation_id": organisation_id}, retry=False)
    except Exception:  # noqa: BLE001 - the beat pass comes anyway
        logger.warning(
            "xero.reconcile.enqueue_failed",
            extra={"event": "xero.reconcile.enqueue_failed", "organisation_id": organisation_id},
        )
        return False
    return True


def reconciliation_organisation_ids() -> list[int]:
    """One page of tenants due for a pass, claimed (integrations/services/reconcile_cadence.py)."""
    return reconcile_due_claim()


def _reconcile_claim(*, organisation_id: int) -> ReconciliationState | None:
    reconciliation_state_for(organisation_id)
    now = timezone.now()
    with transaction.atomic():
        state = (
            ReconciliationState.objects.select_for_update(skip_locked=True)
            .filter(organisation_id=organisation_id)
            .first()
        )
        if state is None or (state.reconcile_claimed_until is not None and state.reconcile_claimed_until > now):
            return None
        state.reconcile_claimed_until = now + RECONCILE_LEASE
        state.last_started_at = now
        state.save(update_fields=["reconcile_claimed_until", "last_started_at", "updated_at"])
    return state


def reconciliation_run(*, organisation_id: int) -> ReconcileResult:
    """One pass for one tenant: every invoice (and contact) Xero changed since the last complete pass, paged,
    applied if newer. What it had to change, and no webhook was waiting to bring in, is drift."""
    result = ReconcileResult()
    connection = xero_connection_usable(organisation_id)
    if connection is None:
        result.skipped = "not_connected"
        return result
    state = _reconcile_claim(organisation_id=organisation_id)
    if state is None:
        result.busy = True
        return result
    started = state.last_started_at
    since = state.last_success_at or connection.connected_at or (started - dt.timedelta(days=1))
    since = since - RECONCILE_OVERLAP
    context = {"organisation_id": organisation_id, "tenant_id": connection.tenant_id}
    error = ""
    read_until: dt.datetime | None = None  # set when a category had more pages than a pass reads
    try:
        for category in _categories(organisation_id):
            capped = _reconcile_category(connection=connection, category=category, since=since, result=result)
            if capped is not None:
                read_until = capped if read_until is None else min(read_until, capped)
    except XeroRateLimited as exc:
        # Background waits behind customers' calls: the task comes back when the limiter said.
        result.retry_after = max(1, int(exc.retry_after))
        error = f"rate limited; retrying in {result.retry_after}s"
    except XeroError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        logger.warning(
            "xero.reconcile.failed",
            extra={
                "event": "xero.reconcile.failed",
                "error": type(exc).__name__,
                "correlation_id": exc.correlation_id,
                **context,
            },
        )
    except Exception as exc:
        # Not Xero's (Redis, the database): the pass ended part-way, so its window is not done. The task fails loudly.
        error = f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        _reconcile_finish(
            organisation_id=organisation_id, started=started, result=result, error=error, read_until=read_until
        )
        if result.retry_after is None:  # a rate-limited pass is already coming back; its claim holds meanwhile
            complete = not error and read_until is None
            reconcile_pass_scheduled(organisation_id=organisation_id, started=started, ok=complete)
    logger.info(
        "xero.reconcile.finished",
        extra={
            "event": "xero.reconcile.finished",
            "checked": result.checked,
            "drift": result.drift,
            "ok": not error,
            **context,
        },
    )
    return result


def _categories(organisation_id: int) -> list[str]:
    """The categories this tenant's pass polls: a gated one only when its gate says there is something of ours."""
    gates = getattr(settings, "XERO_RECONCILE_GATES", {})
    return [c for c in POLLED_CATEGORIES if c not in gates or import_string(gates[c])(organisation_id=organisation_id)]


def _reconcile_category(
    *, connection: XeroConnection, category: str, since: dt.datetime, result: ReconcileResult
) -> dt.datetime | None:
    """Read and apply what changed in one category, page by page. None when its last page was read; otherwise (more
    than RECONCILE_MAX_PAGES) the moment up to which everything is in (the second before the last change read), where
    the next pass goes on, exactly: Xero's own clock, so without the overlap a pass's start is asked with."""
    key = POLL_PATHS[category]
    client = XeroClient(connection.pk, rate_limiter=fetch.xero_rate_limiter(), priority=Priority.RECONCILE)
    cursor, page = since, 1
    for _ in range(RECONCILE_MAX_PAGES):
        # Only what changed since then, oldest change first. https://developer.xero.com/documentation/api/accounting/invoices
        if category == "CONTACT":
            response = accounting.contacts_get(
                client, modified_since=cursor, include_archived=True, oldest_change_first=True, page=page
            )
        elif category == "CREDITNOTE":
            response = accounting.credit_notes_get(client, modified_since=cursor, oldest_change_first=True, page=page)
        else:
            response = accounting.invoices_get(client, modified_since=cursor, oldest_change_first=True, page=page)
        items = accounting.items(response, key)
        if not items:
            return None
        result.checked += len(items)
        # A change a webhook already brought in (still waiting in the inbox) is not drift.
        waiting = set(
            WebhookEvent.objects.filter(
                organisation_id=connection.organisation_id,
                state=WebhookEvent.State.RECEIVED,
                category=category,
                resource_id__in=[str(item.get(_id_key(category)) or "").lower() for item in items],
            ).values_list("resource_id", flat=True)
        )
        for outcome in resource_apply(
            organisation_id=connection.organisation_id, category=category, resources=items, source="reconcile"
        ):
            if outcome.outcome == fetch.APPLY_FAILED:
                result.unapplied.append(f"{category} {outcome.resource_id}: {outcome.summary}")
            if outcome.changed and outcome.resource_id.lower() not in waiting:
                result.drift += 1
                result.repairs.append(
                    {
                        "category": category,
                        "resource_id": outcome.resource_id,
                        "label": outcome.label,
                        "summary": outcome.summary[:300],
                        "outcome": outcome.outcome,
                        "at": timezone.now().isoformat(),
                    }
                )
        if accounting.is_last_page(response, page=page, collection=key):
            return None
        cursor, page = _next_page(items, cursor, page)
    # Everything that changed up to the second before the last change read is in; no date to go on: the window's
    # start, so nothing is skipped.
    return _second_before(items[-1]) or since


def _next_page(items: list[dict[str, Any]], cursor: dt.datetime, page: int) -> tuple[dt.datetime, int]:
    """Where the next request of a poll starts. Xero orders it by UpdatedDateUTC, so a record edited while the pass
    pages moves to the end, and every later one moves up a place: asking for the next page number would skip the one
    that moved onto the page already read. The pass asks again from the second before the last change it read (the
    header holds whole seconds, and a change read twice is harmless). Where changes are dense (more than a quarter of
    a page within those last seconds: a burst, such as our own push), asking again would re-read most of the page for
    little progress, so it pages on by number there, as it does when a whole page changed within one second."""
    restart = _second_before(items[-1])
    if restart is not None and restart > cursor:
        again = sum(1 for at in map(_changed, items) if at is not None and at > restart)
        if again <= accounting.PAGE_SIZE // 4:
            return restart, 1
    return cursor, page + 1


def _changed(item: dict[str, Any]) -> dt.datetime | None:
    return accounting.parse_xero_datetime(item.get("UpdatedDateUTC"))


def _second_before(item: dict[str, Any]) -> dt.datetime | None:
    """The whole second before this change: asked from there, Xero answers with it again, however it rounds."""
    changed = _changed(item)
    return changed.replace(microsecond=0) - dt.timedelta(seconds=1) if changed is not None else None


def _id_key(category: str) -> str:
    return ID_KEYS[category]


def _reconcile_finish(
    *, organisation_id: int, started: dt.datetime, result: ReconcileResult, error: str, read_until: dt.datetime | None
) -> None:
    now = timezone.now()
    with transaction.atomic():
        state = ReconciliationState.objects.select_for_update().get(organisation_id=organisation_id)
        state.reconcile_claimed_until = None
        state.last_finished_at = now
        state.last_error = error
        fields = ["reconcile_claimed_until", "last_finished_at", "last_error", "updated_at"]
        if not error and read_until is not None:
            # Xero pages oldest change first: what changed up to `read_until` (Xero's clock) is in. The next pass
            # (soon) goes on from exactly there, its overlap taken back, instead of asking for the whole window again,
            # skipping the rest of it, or stepping back two minutes each time (a long burst would never be read past).
            state.last_success_at = min(started, read_until + RECONCILE_OVERLAP)
            state.last_error = (
                f"More than {RECONCILE_MAX_PAGES} pages changed; the next pass goes on from {read_until.isoformat()}"
            )
            state.checked_last = result.checked
            fields += ["last_success_at", "checked_last"]
        elif not error:
            state.last_success_at = started
            state.passes += 1
            state.checked_last = result.checked
            fields += ["last_success_at", "passes", "checked_last"]
        if not error and result.unapplied:
            state.last_error = (
                f"{len(result.unapplied)} changes from Xero could not be applied; first: {result.unapplied[0]}"
            )[:1000]
        if result.drift:
            state.drift_last = result.drift
            state.drift_total += result.drift
            state.last_drift_at = now
            state.drift_recent = (list(reversed(result.repairs)) + list(state.drift_recent))[:DRIFT_RECENT_KEEP]
            fields += ["drift_last", "drift_total", "last_drift_at", "drift_recent"]
        elif not error:
            state.drift_last = 0
            fields.append("drift_last")
        state.save(update_fields=fields)


__all__ = ["ReconcileResult", "reconciliation_enqueue", "reconciliation_organisation_ids", "reconciliation_run"]
