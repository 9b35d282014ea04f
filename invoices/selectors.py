from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.db.models import Count, Min, Prefetch, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.selectors import xero_connection_for
from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceEvent, PushAttempt, PushChunk
from organisations.models import Organisation

S = Invoice.SyncState


def batch_list(*, organisation: Organisation, query: str = "", state: str = "") -> QuerySet[InvoiceBatch]:
    qs = InvoiceBatch.objects.filter(organisation=organisation)
    if query:
        # A subquery, not a join: joining the invoices again would multiply the counts below.
        matching = (
            InvoiceBatch.objects.filter(organisation=organisation)
            .filter(
                Q(name__icontains=query)
                | Q(invoices__number__icontains=query)
                | Q(invoices__customer__name__icontains=query)
            )
            .values("pk")
        )
        qs = qs.filter(pk__in=matching)
    qs = (
        qs.select_related("created_by")
        .annotate(
            invoice_count=Count("invoices"),
            synced_count=Count("invoices", filter=Q(invoices__sync_state__in=[S.SYNCED, S.WARNING])),
            pending_count=Count("invoices", filter=Q(invoices__sync_state__in=[S.PENDING, S.IN_FLIGHT])),
            failed_count=Count("invoices", filter=Q(invoices__sync_state=S.FAILED)),
            total_amount=Sum("invoices__total"),
            currency_count=Count("invoices__currency", distinct=True),
            currency=Min("invoices__currency"),
        )
        .order_by("-created_at", "-pk")
    )
    if state == "failed":
        qs = qs.filter(failed_count__gt=0)
    elif state == "pending":
        qs = qs.filter(pending_count__gt=0)
    elif state == "synced":
        qs = qs.filter(invoice_count__gt=0, synced_count=Count("invoices"))
    elif state == "not_synced":
        qs = qs.exclude(eligibility=InvoiceBatch.Eligibility.ELIGIBLE)
    return qs


def batch_get(*, organisation: Organisation, pk: int) -> InvoiceBatch:
    return get_object_or_404(InvoiceBatch.objects.select_related("created_by"), organisation=organisation, pk=pk)


def batch_invoices(*, organisation: Organisation, batch: InvoiceBatch) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organisation=organisation, batch=batch).select_related("customer").order_by("number")


def invoice_sync_counts(*, organisation: Organisation) -> dict[str, int]:
    counts = Invoice.objects.filter(organisation=organisation).aggregate(
        synced=Count("pk", filter=Q(sync_state__in=[S.SYNCED, S.WARNING])),
        pending=Count("pk", filter=Q(sync_state__in=[S.PENDING, S.IN_FLIGHT])),
        failed=Count("pk", filter=Q(sync_state=S.FAILED)),
        not_synced=Count("pk", filter=Q(sync_state=S.NOT_SYNCED)),
    )
    return {key: value or 0 for key, value in counts.items()}


# ---------------------------------------------------------------- batch detail, progress and Xero links


@dataclass(frozen=True)
class BatchProgress:
    total: int
    synced: int
    warning: int
    pending: int
    in_flight: int
    failed: int
    not_synced: int

    @property
    def waiting(self) -> int:
        return self.pending + self.in_flight

    @property
    def done(self) -> int:
        return self.synced + self.warning + self.failed

    @property
    def active(self) -> bool:
        return self.waiting > 0

    @property
    def in_xero(self) -> int:
        return self.synced + self.warning

    @property
    def percent(self) -> int:
        eligible = self.total - self.not_synced
        if eligible <= 0:
            return 0
        return int(self.done * 100 / eligible)


def batch_progress(*, organisation: Organisation, batch: InvoiceBatch) -> BatchProgress:
    counts = Invoice.objects.filter(organisation=organisation, batch=batch).aggregate(
        total=Count("pk"),
        synced=Count("pk", filter=Q(sync_state=S.SYNCED)),
        warning=Count("pk", filter=Q(sync_state=S.WARNING)),
        pending=Count("pk", filter=Q(sync_state=S.PENDING)),
        in_flight=Count("pk", filter=Q(sync_state=S.IN_FLIGHT)),
        failed=Count("pk", filter=Q(sync_state=S.FAILED)),
        not_synced=Count("pk", filter=Q(sync_state=S.NOT_SYNCED)),
    )
    return BatchProgress(**{key: value or 0 for key, value in counts.items()})


@dataclass(frozen=True)
class PushNotice:
    """Why a batch's waiting invoices are not moving right now, for the batch page while a push is under way.

    kind: xero_unavailable (Xero's last answer was a 5xx or no answer), rate_limited (Xero's last answer was a
    429), stalled (a chunk is overdue by longer than the sweeper needs to pick it up again: our workers, broker
    or database are down). next_try_in: seconds until the next call is due, when one is scheduled.
    """

    kind: str
    next_try_in: int | None = None

    @property
    def next_try(self) -> str:
        if self.next_try_in is None:
            return ""
        seconds = max(1, self.next_try_in)
        return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


UNANSWERED = (PushAttempt.Outcome.SERVER_ERROR, PushAttempt.Outcome.TIMEOUT)


def push_stall_seconds() -> float:
    """How long a due chunk may wait before the page calls it stalled: the sweeper re-queues overdue chunks
    every PUSH_SWEEP_SECONDS and expired leases after PUSH_LEASE_SECONDS, so longer means nothing runs them."""
    return 2 * settings.PUSH_SWEEP_SECONDS + settings.PUSH_LEASE_SECONDS


def batch_push_notice(*, organisation: Organisation, progress: BatchProgress, now=None) -> PushNotice | None:
    """The notice for a batch with waiting invoices. Chunks are per organisation (one may carry invoices of
    several batches), so this reads the organisation's push state."""
    if not progress.waiting:
        return None
    now = now or timezone.now()
    chunks = PushChunk.objects.filter(
        organisation=organisation, state__in=[PushChunk.State.PENDING, PushChunk.State.SENDING]
    )
    late = now - timedelta(seconds=push_stall_seconds())
    stalled = chunks.filter(
        Q(state=PushChunk.State.PENDING, next_attempt_at__lt=late)
        | Q(state=PushChunk.State.PENDING, next_attempt_at__isnull=True, created_at__lt=late)
        | Q(state=PushChunk.State.SENDING, lease_expires_at__lt=late)
    ).exists()
    if stalled:
        return PushNotice("stalled")
    latest = (
        PushAttempt.objects.filter(organisation=organisation, started_at__gte=now - timedelta(hours=1))
        .order_by("-started_at")
        .values_list("outcome", flat=True)
        .first()
    )
    if latest not in (*UNANSWERED, PushAttempt.Outcome.RATE_LIMITED):
        return None
    due = chunks.filter(state=PushChunk.State.PENDING, next_attempt_at__gt=now).aggregate(due=Min("next_attempt_at"))[
        "due"
    ]
    next_try_in = int((due - now).total_seconds()) if due else None
    kind = "rate_limited" if latest == PushAttempt.Outcome.RATE_LIMITED else "xero_unavailable"
    return PushNotice(kind, next_try_in)


def batch_invoice_rows(*, organisation: Organisation, batch: InvoiceBatch, state: str = "") -> QuerySet[Invoice]:
    """The batch's invoices with their customer, lines and history, for the detail page."""
    qs = batch_invoices(organisation=organisation, batch=batch).prefetch_related(
        "lines", Prefetch("events", queryset=InvoiceEvent.objects.select_related("actor"))
    )
    if state == "failed":
        qs = qs.filter(sync_state=S.FAILED)
    elif state == "warning":
        qs = qs.filter(sync_state=S.WARNING)
    elif state == "waiting":
        qs = qs.filter(sync_state__in=[S.PENDING, S.IN_FLIGHT])
    return qs


def invoice_get(*, organisation: Organisation, batch: InvoiceBatch, pk: int) -> Invoice:
    return get_object_or_404(Invoice, organisation=organisation, batch=batch, pk=pk)


def customer_names(*, organisation: Organisation, limit: int = 500) -> list[str]:
    return list(
        Customer.objects.filter(organisation=organisation).order_by("name").values_list("name", flat=True)[:limit]
    )


@dataclass(frozen=True)
class XeroLinkInfo:
    """What the batch page needs to know about the connection: deep links and whether pushes wait."""

    short_code: str = ""
    needs_reconnect: bool = False
    connected: bool = False
    tenant_name: str = ""
    base_currency: str = ""

    def invoice_url(self, xero_invoice_id: str) -> str:
        if not (self.short_code and xero_invoice_id):
            return ""
        return settings.XERO_INVOICE_DEEP_LINK.format(
            short_code=quote(self.short_code, safe=""), invoice_id=quote(xero_invoice_id, safe="")
        )


def xero_link_info(*, organisation: Organisation) -> XeroLinkInfo:
    connection = xero_connection_for(organisation)
    if connection is None:
        return XeroLinkInfo()
    return XeroLinkInfo(
        short_code=connection.tenant_short_code,
        needs_reconnect=connection.status == XeroConnection.Status.NEEDS_RECONNECT,
        connected=connection.is_bound,
        tenant_name=connection.tenant_name,
        base_currency=connection.base_currency,
    )
