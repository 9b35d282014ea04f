"""Reading integrations state. Tenant selectors take the organisation first; support selectors span tenants."""

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.db.models import BigIntegerField, ExpressionWrapper, F, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from integrations.connections.types import DISCONNECT_KINDS
from integrations.models import (
    IntegrationAuditEvent,
    OutboundAttempt,
    OutboundOperation,
    XeroConnection,
    XeroPendingTenantChoice,
)
from organisations.models import Organisation

Eligibility = Literal["eligible", "before_connection", "while_disconnected"]


def xero_connection_for(organisation: Organisation) -> XeroConnection | None:
    """The organisation's Xero connection row, or None if it never started connecting."""
    return XeroConnection.objects.filter(organisation=organisation).select_related("connected_by").first()


def xero_sync_eligibility(organisation: Organisation) -> Eligibility:
    """Whether an invoice batch created now goes to Xero. Decided once, at batch creation.

    eligible: connected (also while it needs a reconnect: those batches wait and go after the reconnect);
    before_connection: never connected; while_disconnected: disconnected by us, in Xero, or disconnecting.
    """
    connection = xero_connection_for(organisation)
    if connection is None or connection.status == XeroConnection.Status.NOT_CONNECTED:
        return "before_connection"
    if connection.is_bound and not connection.disconnect_step:
        return "eligible"
    return "while_disconnected"


def xero_connection_holding_tenant(organisation: Organisation, *, tenant_id: str) -> XeroConnection | None:
    """Another organisation's connection that holds this Xero organisation (bound, or still disconnecting)."""
    return (
        XeroConnection.objects.exclude(organisation=organisation)
        .filter(Q(status__in=XeroConnection.BOUND_STATUSES) | ~Q(disconnect_step=""), tenant_id=tenant_id)
        .select_related("organisation")
        .first()
    )


def xero_tenant_ids_held_elsewhere(organisation: Organisation, *, tenant_ids: list[str]) -> set[str]:
    """Which of these Xero organisations another organisation's connection holds, in one query."""
    return set(
        XeroConnection.objects.exclude(organisation=organisation)
        .filter(
            Q(status__in=XeroConnection.BOUND_STATUSES) | ~Q(disconnect_step=""),
            tenant_id__in=[t for t in tenant_ids if t],
        )
        .values_list("tenant_id", flat=True)
    )


def xero_connection_ids_in_use(organisation: Organisation | None, *, connection_ids: list[str]) -> set[str]:
    """Which of these Xero connection ids another organisation's connection relies on (never delete those)."""
    qs = XeroConnection.objects.filter(connection_id__in=[c for c in connection_ids if c]).filter(
        Q(status__in=XeroConnection.BOUND_STATUSES) | ~Q(disconnect_step="")
    )
    if organisation is not None:
        qs = qs.exclude(organisation=organisation)
    return set(qs.values_list("connection_id", flat=True))


def xero_user_connected_elsewhere(organisation: Organisation, *, xero_user_id: str) -> bool:
    """Whether another organisation's live connection came from the same Xero user. Revoking this user's refresh
    token would remove all that user's connections to our app, including that one (xero-facts 1.5)."""
    if not xero_user_id:
        return False
    return (
        XeroConnection.objects.exclude(organisation=organisation)
        .filter(xero_user_id=xero_user_id, status__in=XeroConnection.BOUND_STATUSES)
        .exists()
    )


def xero_user_has_live_connection(*, xero_user_id: str) -> bool:
    """Whether any organisation's live connection (this one's too) came from this Xero user."""
    if not xero_user_id:
        return False
    return XeroConnection.objects.filter(xero_user_id=xero_user_id, status__in=XeroConnection.BOUND_STATUSES).exists()


def pending_choice_get(organisation: Organisation, *, pk: uuid.UUID | str) -> XeroPendingTenantChoice:
    choice = XeroPendingTenantChoice.objects.filter(organisation=organisation, pk=pk).first()
    if choice is None:
        raise Http404("No such Xero organisation choice.")
    return choice


def pending_choice_consent_unknown(pending: XeroPendingTenantChoice) -> bool:
    """Whether Xero didn't say which organisations this consent authorised (no JWT access token, or no authEventId
    on /connections): the choice then lists every organisation of the grant that no other organisation holds."""
    return not pending.auth_event_id or not any(c.get("auth_event_id") for c in pending.candidates)


def audit_event_list(organisation: Organisation) -> QuerySet[IntegrationAuditEvent]:
    return IntegrationAuditEvent.objects.filter(organisation=organisation).select_related("actor")


# ---------------------------------------------------------------- background work (span tenants)


# Each connection is checked at its own fixed second of the UTC day, derived from its id: multiplying by a number
# coprime with 86,400 spreads consecutive ids across the whole day, so a day's checks are even, not a burst.
KEEPALIVE_SPREAD = 40507
DAY_SECONDS = 86400


def keepalive_offset_seconds(connection_id: int) -> int:
    """The second of the UTC day at which this connection's daily check runs."""
    return (connection_id * KEEPALIVE_SPREAD) % DAY_SECONDS


@dataclass(frozen=True)
class KeepaliveDue:
    connection_id: int
    countdown: int  # seconds from now until its time in this window (0 when late)


# A check runs at its second or a little after (queue lag): a day and this long without one is a missed one.
KEEPALIVE_STALE_MARGIN_SECONDS = 60


def connection_ids_due_keepalive(
    *, now: dt.datetime | None = None, window_start: int, window_seconds: int, after_id: int = 0, limit: int = 500
) -> list[KeepaliveDue]:
    """Active connections whose daily check falls in this window of the UTC day ([window_start, window_start +
    window_seconds) seconds after midnight), plus those not checked for more than a day and a minute (a check that
    failed, a window beat never fanned out: its first fan-out comes one interval after it starts), after `after_id`
    in id order, at most `limit`: one page of the fan-out. A check is queued for its own second or just after, never
    before it (the countdown is rounded up).

    Every connection gets its check once a day (Xero recommends a light daily call to find dead connections) and a
    refresh when its refresh token is older than XERO_KEEPALIVE_AFTER_DAYS (idle refresh tokens die after 60 days).
    The window test is one expression in SQL, so a page reads only the due rows whatever the number of tenants."""
    now = now or timezone.now()
    end = window_start + window_seconds
    offset = ExpressionWrapper((F("pk") * KEEPALIVE_SPREAD) % DAY_SECONDS, output_field=BigIntegerField())
    in_window = Q(offset__gte=window_start, offset__lt=min(end, DAY_SECONDS))
    if end > DAY_SECONDS:  # the window crosses midnight
        in_window |= Q(offset__lt=end - DAY_SECONDS)
    stale = Q(last_verified_at__isnull=True) | Q(
        last_verified_at__lt=now - dt.timedelta(seconds=DAY_SECONDS + KEEPALIVE_STALE_MARGIN_SECONDS)
    )
    rows = (
        XeroConnection.objects.usable()
        .filter(pk__gt=after_id)
        .alias(offset=offset)
        .filter(in_window | stale)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    second_of_day = (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    due = []
    for position, pk in enumerate(rows):
        wait = (keepalive_offset_seconds(pk) - second_of_day) % DAY_SECONDS
        # In this window: at its own second. Stale: now, a second apart, so a catch-up is not a burst either.
        due.append(KeepaliveDue(pk, math.ceil(wait) if wait < window_seconds else position % window_seconds))
    return due


def connection_needs_keepalive_refresh(connection: XeroConnection, *, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    issued = connection.refresh_token_issued_at
    return issued is None or now - issued >= dt.timedelta(days=settings.XERO_KEEPALIVE_AFTER_DAYS)


def disconnect_operations(organisation: Organisation, *, connection: XeroConnection) -> list[OutboundOperation]:
    """The Xero calls (outbound operations) of the connection's latest disconnect, newest first, with their attempts."""
    attempts = OutboundAttempt.objects.order_by("-started_at", "-pk")
    operations = OutboundOperation.objects.filter(
        organisation=organisation, subject_id=connection.pk, kind__in=DISCONNECT_KINDS
    )
    if connection.disconnected_at is not None:
        operations = operations.filter(created_at__gte=connection.disconnected_at)
    return list(operations.order_by("-pk").prefetch_related(Prefetch("outbound_attempts", queryset=attempts)))


def connection_ids_disconnecting() -> list[int]:
    return list(XeroConnection.objects.exclude(disconnect_step="").order_by("pk").values_list("pk", flat=True))


def pending_choice_ids_expired(*, now: dt.datetime | None = None) -> list[uuid.UUID]:
    now = now or timezone.now()
    return list(
        XeroPendingTenantChoice.objects.filter(consumed_at__isnull=True, expires_at__lte=now).values_list(
            "pk", flat=True
        )
    )


# ---------------------------------------------------------------- support console

SUPPORT_STATE_FILTERS = {
    "": "All states",
    "active": "Connected",
    "needs_reconnect": "Needs reconnect",
    "disconnected": "Disconnected",
    "revoked_in_xero": "Disconnected in Xero",
    "not_connected": "Not connected",
    "problems": "With open errors",
}


def support_organisation_list(*, query: str = "", state: str = "") -> QuerySet[Organisation]:
    qs = Organisation.objects.select_related("xero_connection", "xero_connection__connected_by").order_by("name")
    if query:
        qs = qs.filter(
            Q(name__icontains=query)
            | Q(xero_connection__tenant_name__icontains=query)
            | Q(xero_connection__tenant_id__iexact=query)
        )
    if state == "not_connected":
        qs = qs.filter(Q(xero_connection__isnull=True) | Q(xero_connection__status="not_connected"))
    elif state == "problems":
        qs = qs.filter(xero_connection__isnull=False).filter(
            Q(xero_connection__status__in=["needs_reconnect", "revoked_in_xero"])
            | ~Q(xero_connection__last_error="")
            | ~Q(xero_connection__disconnect_step="")
            | Q(xero_connection__reconnect_requested_at__isnull=False)
        )
    elif state in XeroConnection.Status.values:
        qs = qs.filter(xero_connection__status=state)
    return qs
