"""Reconciliation: a beat-driven poll per connected tenant that catches whatever a webhook missed.

GET /Invoices, /Contacts and /CreditNotes with If-Modified-Since the start of the last window of changes read to its
end, paged in id order (a pass cut short leaves the next to go on at its page); everything goes through the same
appliers as webhook events, so only newer copies change anything.
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
from integrations.services.reconcile_cadence import (
    Reason,
    reconcile_due_claim,
    reconcile_pass_scheduled,
    reconcile_window_held,
)
from integrations.webhooks import fetch
from integrations.webhooks.fetch import RESOURCE_PATHS, resource_apply, xero_connection_usable
from integrations.webhooks.models import ReconciliationState, WebhookEvent
from integrations.webhooks.process import reconciliation_state_for
from integrations.webhooks.record import KNOWN_CATEGORIES
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroError, XeroRateLimited
from integrations.xero.ratelimit import Priority
from integrations.xero.types import XeroResponse

logger = logging.getLogger("integrations.webhooks")

# Credit notes are polled only: the inbox takes invoice and contact events (a change to an invoice's credit shows
# on the invoice itself), and a credit note's own changes (voided, refunded, allocated in Xero) come back here.
POLLED_CATEGORIES = (*KNOWN_CATEGORIES, "CREDITNOTE")
POLL_PATHS = {**RESOURCE_PATHS, "CREDITNOTE": "CreditNotes"}
ID_KEYS = {"INVOICE": "InvoiceID", "CONTACT": "ContactID", "CREDITNOTE": "CreditNoteID"}
RECONCILE_LEASE = dt.timedelta(minutes=10)
# A pass that finds its tenant's row locked by another transaction comes back after this many seconds.
RECONCILE_LOCKED_RETRY_SECONDS = 5
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
    # Cut short by its page cap: the task asks for the next pass of the window at once (the limiter paces it).
    goes_on: bool = False
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


def _reconcile_claim(*, organisation_id: int) -> tuple[ReconciliationState | None, bool]:
    """The tenant's state, claimed for this pass (a lease); or None, and whether its row was only locked for a moment
    by another transaction (the beat claiming due tenants, a sync being recorded) rather than leased by a pass that
    is running."""
    reconciliation_state_for(organisation_id)
    now = timezone.now()
    with transaction.atomic():
        state = (
            ReconciliationState.objects.select_for_update(skip_locked=True)
            .filter(organisation_id=organisation_id)
            .first()
        )
        if state is None:
            return None, True
        if state.reconcile_claimed_until is not None and state.reconcile_claimed_until > now:
            return None, False
        state.reconcile_claimed_until = now + RECONCILE_LEASE
        state.last_started_at = now
        state.save(update_fields=["reconcile_claimed_until", "last_started_at", "updated_at"])
    return state, False


@dataclass
class _Window:
    """What a tenant's passes read: the changes since `since` (If-Modified-Since, fixed until the window's last page is
    read), going on at `category`'s `page`. `started` is when its first pass began: read to its end, the window is
    done up to then, and the next window asks from there."""

    since: dt.datetime
    started: dt.datetime
    category: str = ""
    page: int = 1


def reconciliation_run(*, organisation_id: int) -> ReconcileResult:
    """One pass for one tenant: the invoices, contacts and credit notes Xero changed in the window it reads (since
    the last window read to its end began), paged, applied if newer. What it had to change, and no webhook was
    waiting to bring in, is drift."""
    result = ReconcileResult()
    connection = xero_connection_usable(organisation_id)
    if connection is None:
        result.skipped = "not_connected"
        return result
    state, locked = _reconcile_claim(organisation_id=organisation_id)
    if state is None:
        result.busy = True
        if locked:
            # Held for a moment: come back in seconds. (Ended here, the next pass of a window waited for the beat's
            # hold, about eleven minutes.) A running pass's lease is not waited for: that pass goes on itself.
            result.retry_after = RECONCILE_LOCKED_RETRY_SECONDS
        return result
    window = _window(state, connection)
    context = {"organisation_id": organisation_id, "tenant_id": connection.tenant_id}
    error = ""
    done = False
    try:
        done = _reconcile_window(connection=connection, window=window, result=result)
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
        _reconcile_finish(organisation_id=organisation_id, result=result, error=error, window=window, done=done)
        result.goes_on = not done and not error
        if result.retry_after is not None or result.goes_on:
            # The task comes back itself (when the limiter said; or at once for the rest of the window): the beat
            # holds off meanwhile, so there is one chain of passes per tenant.
            reconcile_window_held(organisation_id=organisation_id)
        else:
            # A window read over several passes leaves changes made meanwhile on pages it had read: the next window
            # comes soon, not at the tenant's phase a day away. After a failure, soon too.
            single = window.started == state.last_started_at
            reconcile_pass_scheduled(
                organisation_id=organisation_id,
                started=state.last_started_at,
                ok=done and not error and single,
                soon_reason=Reason.RETRY if error else Reason.WINDOW,
            )
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


def _window(state: ReconciliationState, connection: XeroConnection) -> _Window:
    """The window a pass reads: the one a pass left part-way, or what changed since the last window read to its end
    began. A stored window begun before the connection was last made (a reconnect, perhaps to another Xero
    organisation) starts again at its first page, with the same If-Modified-Since: its page numbers may not be this
    tenant's, but nothing it was to read is dropped. So does one whose category is no longer polled."""
    started = state.last_started_at
    if state.resume_since is not None:
        begun = state.resume_started_at
        if (
            begun is None
            or (connection.connected_at and begun < connection.connected_at)
            or state.resume_category not in POLLED_CATEGORIES
        ):
            return _Window(since=state.resume_since, started=started)
        return _Window(since=state.resume_since, started=begun, category=state.resume_category, page=state.resume_page)
    since = state.last_success_at or connection.connected_at or (started - dt.timedelta(days=1))
    return _Window(since=since - RECONCILE_OVERLAP, started=started)


def _categories(organisation_id: int) -> list[str]:
    """The categories this tenant's pass polls: a gated one only when its gate says there is something of ours."""
    gates = getattr(settings, "XERO_RECONCILE_GATES", {})
    return [c for c in POLLED_CATEGORIES if c not in gates or import_string(gates[c])(organisation_id=organisation_id)]


def _reconcile_window(*, connection: XeroConnection, window: _Window, result: ReconcileResult) -> bool:
    """Read and apply the window's changes, category by category, page by page, from where it stands: at most
    RECONCILE_MAX_PAGES pages. True when its last page was read; otherwise `window` says where the next pass goes on
    (the page that failed, if one did).

    Pages are asked by number in id order with If-Modified-Since fixed: an edit made in Xero while the passes page
    moves nothing (ordered by UpdatedDateUTC, the edited record would go to the end and the next one slide onto a page
    already read, never to be read), and a record that enters the results only pushes later ones on (the first of a
    page is then read twice). Such an edit is newer than the window's start, so the next window reads it."""
    client = XeroClient(connection.pk, rate_limiter=fetch.xero_rate_limiter(), priority=Priority.RECONCILE)
    order = POLLED_CATEGORIES.index
    pages = 0
    for category in _categories(connection.organisation_id):
        if window.category and order(category) < order(window.category):
            continue  # read to its end by an earlier pass of this window
        if category != window.category:
            window.category, window.page = category, 1
        while True:
            if pages == RECONCILE_MAX_PAGES:
                return False
            response = _poll(client, category, since=window.since, page=window.page)
            pages += 1
            items = accounting.items(response, POLL_PATHS[category])
            _apply(connection=connection, category=category, items=items, result=result)
            if not items or accounting.is_last_page(response, page=window.page, collection=POLL_PATHS[category]):
                break
            window.page += 1
    return True


def _poll(client: XeroClient, category: str, *, since: dt.datetime, page: int) -> XeroResponse:
    # Only what changed since then. https://developer.xero.com/documentation/api/accounting/invoices
    if category == "CONTACT":
        return accounting.contacts_get(client, modified_since=since, include_archived=True, in_id_order=True, page=page)
    if category == "CREDITNOTE":
        return accounting.credit_notes_get(client, modified_since=since, in_id_order=True, page=page)
    return accounting.invoices_get(client, modified_since=since, in_id_order=True, page=page)


def _apply(*, connection: XeroConnection, category: str, items: list[dict[str, Any]], result: ReconcileResult) -> None:
    """Apply one page of Xero's records; what changed with no received event waiting to bring it in is drift."""
    result.checked += len(items)
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


def _id_key(category: str) -> str:
    return ID_KEYS[category]


def _reconcile_finish(
    *, organisation_id: int, result: ReconcileResult, error: str, window: _Window, done: bool
) -> None:
    """Record how the pass ended: `done` when the window was read to its end, otherwise `window` says where the next
    pass goes on."""
    now = timezone.now()
    with transaction.atomic():
        state = ReconciliationState.objects.select_for_update().get(organisation_id=organisation_id)
        state.reconcile_claimed_until = None
        state.last_finished_at = now
        state.last_error = error
        fields = ["reconcile_claimed_until", "last_finished_at", "last_error", "updated_at"]
        if done:
            # Everything that changed before the window's first pass began is in: the next window asks from then.
            state.last_success_at = window.started
            state.passes += 1
            state.checked_last = result.checked
            state.resume_since, state.resume_started_at, state.resume_category, state.resume_page = None, None, "", 1
            fields += ["last_success_at", "passes", "checked_last"]
        else:
            # Cut short: the next pass goes on at the page this one reached, with the same If-Modified-Since (the
            # window's start still to be claimed), instead of reading what this one read again.
            state.resume_since, state.resume_started_at = window.since, window.started
            state.resume_category, state.resume_page = window.category, window.page
            if not error:
                state.last_error = (
                    f"More than {RECONCILE_MAX_PAGES} pages changed; the next pass goes on at {state.resume_label}"
                )
                state.checked_last = result.checked
                fields.append("checked_last")
        fields += ["resume_since", "resume_started_at", "resume_category", "resume_page"]
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
