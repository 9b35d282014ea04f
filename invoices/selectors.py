from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from integrations.selectors import xero_connection_for
from invoices.models import (
    CancelledInvoice,
    CreditNote,
    CreditNoteAllocation,
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
)
from invoices.services.credit_notes import CREDIT_NOTE_ALLOCATE
from invoices.states import Group, credit_note_group_q, documents_in_words, group_q
from organisations.locale import today_for
from organisations.models import Organisation

S = Invoice.SyncState


# ---------------------------------------------------------------- counts of both document kinds, by status group

# Each kind of a batch's documents with the filter of its status groups (invoices/states.py): invoices and credit
# notes are counted alike everywhere a count is shown.
DOCUMENT_KINDS = ((Invoice, group_q), (CreditNote, credit_note_group_q))


def group_counts(group_q_of, *, today, relation: str = "", **extra: Q) -> dict[str, Count]:
    """One kind's counts as aggregates: `total`, one per status group (`in_xero`, `removed`, `waiting`, `failed`,
    `not_synced`) and one per `extra` filter; over the rows themselves, or over `relation` (e.g. "invoices")."""
    counted = relation or "pk"
    prefix = f"{relation}__" if relation else ""
    counts = {"total": Count(counted)}
    counts.update(
        {group.value: Count(counted, filter=group_q_of(group, today=today, prefix=prefix)) for group in Group}
    )
    counts.update({name: Count(counted, filter=q) for name, q in extra.items()})
    return counts


def document_counts(*, organisation: Organisation, today, **filters) -> dict[str, dict[str, int]]:
    """`group_counts` of invoices and of credit notes (one query each), keyed "invoices" and "credit_notes", with
    `warning`, `pending`, `in_flight` and `needs_attention` by sync state. `filters` narrow both kinds alike (e.g.
    batch=...)."""
    extra = {state.value: Q(sync_state=state) for state in (S.WARNING, S.PENDING, S.IN_FLIGHT, S.NEEDS_ATTENTION)}
    return {
        kind: {
            key: value or 0
            for key, value in model.objects.filter(organisation=organisation, **filters)
            .aggregate(**group_counts(group_q_of, today=today, **extra))
            .items()
        }
        for kind, (model, group_q_of) in zip(("invoices", "credit_notes"), DOCUMENT_KINDS, strict=True)
    }


def _credit_notes_per_batch(aggregate: Aggregate, *, default: Value | int = 0) -> Coalesce:
    """`aggregate` over the credit notes of the outer batch, as a subquery: joining them beside the invoices would
    multiply both."""
    rows = CreditNote.objects.filter(batch=OuterRef("pk")).order_by().values("batch").annotate(n=aggregate).values("n")
    return Coalesce(Subquery(rows), default)


def batch_list(*, organisation: Organisation, query: str = "", state: str = "") -> QuerySet[InvoiceBatch]:
    """Batches with their invoices and credit notes counted by status group: `invoice_count`, `credit_note_count`,
    `document_count` (both), `in_xero_count`, `removed_count`, `pending_count`, `failed_count` (both kinds; the
    failed group, needing attention included), `attention_count` (those needing attention) and `refused_count`
    (the rest); the
    invoices' `total_amount` and `currency`, the credit notes' `credit_note_total` and `credit_note_currency`, the
    batch's `net_amount` (invoices less credit notes) and `several_currencies` (no one total is true then)."""
    qs = InvoiceBatch.objects.filter(organisation=organisation)
    if query:
        # A subquery, not a join: joining the invoices (or credit notes) again would multiply the counts below.
        matching = (
            InvoiceBatch.objects.filter(organisation=organisation)
            .filter(
                Q(name__icontains=query)
                | Q(invoices__number__icontains=query)
                | Q(invoices__customer__name__icontains=query)
                | Q(credit_notes__number__icontains=query)
            )
            .values("pk")
        )
        qs = qs.filter(pk__in=matching)
    today = today_for(organisation)
    attention = S.NEEDS_ATTENTION.value
    invoices = group_counts(
        group_q, today=today, relation="invoices", **{attention: Q(invoices__sync_state=S.NEEDS_ATTENTION)}
    )
    notes = group_counts(credit_note_group_q, today=today, **{attention: Q(sync_state=S.NEEDS_ATTENTION)})
    qs = (
        qs.select_related("created_by")
        .annotate(
            invoice_count=invoices["total"],
            credit_note_count=_credit_notes_per_batch(notes["total"]),
            **{
                f"{name}_count": invoices[group] + _credit_notes_per_batch(notes[group])
                for name, group in (
                    ("in_xero", "in_xero"),
                    ("removed", "removed"),
                    ("pending", "waiting"),
                    ("failed", "failed"),
                    ("attention", attention),
                )
            },
            total_amount=Sum("invoices__total"),
            currency_count=Count("invoices__currency", distinct=True),
            currency=Min("invoices__currency"),
            credit_note_total=_credit_notes_per_batch(Sum("total"), default=Value(Decimal("0"))),
            credit_note_currency_count=_credit_notes_per_batch(Count("currency", distinct=True)),
            credit_note_currency=_credit_notes_per_batch(Min("currency"), default=Value("")),
        )
        .annotate(
            document_count=F("invoice_count") + F("credit_note_count"),
            refused_count=F("failed_count") - F("attention_count"),
            net_amount=Coalesce("total_amount", Value(Decimal("0"))) - F("credit_note_total"),
            # A net of two currencies would be no amount at all: the list says "Several currencies" instead.
            several_currencies=Case(
                When(
                    Q(currency_count__gt=1)
                    | Q(credit_note_currency_count__gt=1)
                    | (Q(invoice_count__gt=0, credit_note_count__gt=0) & ~Q(currency=F("credit_note_currency"))),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .order_by("-created_at", "-pk")
    )
    if state == "failed":
        qs = qs.filter(failed_count__gt=0)
    elif state == "pending":
        qs = qs.filter(pending_count__gt=0)
    elif state == "synced":
        qs = qs.filter(document_count__gt=0, in_xero_count=F("document_count"))
    elif state == "not_synced":
        qs = qs.exclude(eligibility=InvoiceBatch.Eligibility.ELIGIBLE)
    return qs


def batch_get(*, organisation: Organisation, pk: int) -> InvoiceBatch:
    return get_object_or_404(InvoiceBatch.objects.select_related("created_by"), organisation=organisation, pk=pk)


def batch_invoices(*, organisation: Organisation, batch: InvoiceBatch) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organisation=organisation, batch=batch).select_related("customer").order_by("number")


def invoice_sync_counts(*, organisation: Organisation) -> dict[str, int]:
    """The dashboard's tiles, by the status vocabulary's groups, invoices and credit notes together (voided and
    deleted ones are not "in Xero"), `attention`: how many of the failed need attention, and `credit_notes`: how many
    credit notes there are."""
    kinds = document_counts(organisation=organisation, today=today_for(organisation))
    tiles = {
        "synced": Group.IN_XERO,
        "removed": Group.REMOVED,
        "pending": Group.WAITING,
        "failed": Group.FAILED,
        "not_synced": Group.NOT_SYNCED,
    }
    counts = {tile: sum(kind[group] for kind in kinds.values()) for tile, group in tiles.items()}
    attention = sum(kind[S.NEEDS_ATTENTION] for kind in kinds.values())
    return {**counts, "attention": attention, "credit_notes": kinds["credit_notes"]["total"]}


# ---------------------------------------------------------------- batch detail, progress and Xero links


@dataclass(frozen=True)
class BatchProgress:
    """A batch's invoices and credit notes by where they are, counted alike. `in_xero` counts live documents in Xero
    only (an invoice draft, awaiting payment, part paid, paid, overdue; a credit note draft, with credit available
    or fully allocated); voided or deleted ones are `removed`; failures are apart. `failed` is the failed group, the
    ones needing attention (`attention`: we could not confirm what Xero did, so they may be in Xero) included;
    `refused` is the rest. Percentages are of the documents meant for Xero (all but not synced). `credit_notes`: how
    many of `total` are credit notes."""

    total: int
    in_xero: int
    removed: int
    warning: int
    pending: int
    in_flight: int
    failed: int
    not_synced: int
    attention: int = 0
    credit_notes: int = 0
    of_invoices: "BatchProgress | None" = None

    @property
    def invoices(self) -> "BatchProgress":
        """The invoices alone (what the invoice table's filters and Retry act on)."""
        return self.of_invoices or self

    @property
    def credit_notes_failed(self) -> int:
        """Credit notes Xero refused (not those needing attention: those may be in Xero)."""
        return self.refused - self.invoices.refused

    @property
    def documents(self) -> str:
        """What `total` counts, in words: "3 invoices", or "2 invoices and 1 credit note"."""
        return documents_in_words(self.total - self.credit_notes, self.credit_notes)

    @property
    def noun(self) -> str:
        """What the batch holds: "invoices", or "invoices and credit notes"."""
        return "invoices and credit notes" if self.credit_notes else "invoices"

    @property
    def waiting(self) -> int:
        return self.pending + self.in_flight

    @property
    def synced(self) -> int:
        return self.in_xero

    @property
    def done(self) -> int:
        return self.in_xero + self.removed + self.failed

    @property
    def active(self) -> bool:
        return self.waiting > 0

    @property
    def eligible(self) -> int:
        return self.total - self.not_synced

    def _share(self, count: int) -> int:
        # Rounded down, so a batch reads 100% in Xero only when every invoice is.
        return int(count * 100 / self.eligible) if self.eligible > 0 else 0

    @property
    def percent(self) -> int:
        """Share of the batch in Xero (live)."""
        return self._share(self.in_xero)

    @property
    def removed_percent(self) -> int:
        return self._share(self.removed)

    @property
    def failed_percent(self) -> int:
        return self._share(self.failed)

    @property
    def refused(self) -> int:
        return self.failed - self.attention

    @property
    def refused_percent(self) -> int:
        return self._share(self.refused)

    @property
    def attention_percent(self) -> int:
        return self._share(self.attention)

    @property
    def all_in_xero(self) -> bool:
        return self.eligible > 0 and self.in_xero == self.eligible

    @property
    def all_removed(self) -> bool:
        return self.eligible > 0 and self.removed == self.eligible


def _progress(counts: dict[str, int]) -> BatchProgress:
    return BatchProgress(
        total=counts["total"],
        in_xero=counts[Group.IN_XERO],
        removed=counts[Group.REMOVED],
        warning=counts[S.WARNING],
        pending=counts[S.PENDING],
        in_flight=counts[S.IN_FLIGHT],
        failed=counts[Group.FAILED],
        not_synced=counts[Group.NOT_SYNCED],
        attention=counts[S.NEEDS_ATTENTION],
    )


def batch_progress(*, organisation: Organisation, batch: InvoiceBatch) -> BatchProgress:
    """The batch's invoices and credit notes counted together; `.invoices` is the invoices alone."""
    kinds = document_counts(organisation=organisation, today=today_for(organisation), batch=batch)
    invoices = _progress(kinds["invoices"])
    if not kinds["credit_notes"]["total"]:
        return invoices
    both = {key: kinds["invoices"][key] + kinds["credit_notes"][key] for key in kinds["invoices"]}
    return replace(_progress(both), credit_notes=kinds["credit_notes"]["total"], of_invoices=invoices)


def batch_invoice_rows(*, organisation: Organisation, batch: InvoiceBatch, state: str = "") -> QuerySet[Invoice]:
    """The batch's invoices with their customer, lines and history, for the detail page."""
    qs = batch_invoices(organisation=organisation, batch=batch).prefetch_related(
        "lines", "payments", Prefetch("events", queryset=InvoiceEvent.objects.select_related("actor"))
    )
    if state == "failed":
        # The tab counts the FAILED group (the progress, `_progress`): needing attention included, sharing the Retry.
        qs = qs.filter(group_q(Group.FAILED, today=today_for(organisation)))
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
    tenant_id: str = ""

    def invoice_url(self, xero_invoice_id: str, *, short_code: str | None = None) -> str:
        short_code = self.short_code if short_code is None else short_code
        if not (short_code and xero_invoice_id):
            return ""
        return settings.XERO_INVOICE_DEEP_LINK.format(
            short_code=quote(short_code, safe=""), invoice_id=quote(xero_invoice_id, safe="")
        )

    def url_for(self, invoice: Invoice) -> str:
        """The invoice's link into the Xero organisation it was created in, even after a switch to another one
        (none when that organisation's short code is unknown: better no link than one into the wrong books)."""
        if invoice.xero_tenant_id and invoice.xero_tenant_id != self.tenant_id:
            return self.invoice_url(invoice.xero_invoice_id, short_code=invoice.xero_short_code)
        return self.invoice_url(invoice.xero_invoice_id, short_code=invoice.xero_short_code or self.short_code)


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
        tenant_id=connection.tenant_id,
    )


def batch_credit_notes(*, organisation: Organisation, batch: InvoiceBatch) -> list[CreditNote]:
    """The batch's credit notes with their customer, lines, history and allocations (with its invoice), by number.
    Each allocation carries `removable` (see `allocations_with_removable`)."""
    return list(
        CreditNote.objects.filter(organisation=organisation, batch=batch)
        .select_related("customer")
        .prefetch_related(
            "lines",
            "events",
            Prefetch("allocations", queryset=allocations_with_removable(organisation=organisation)),
        )
        .order_by("number", "pk")
    )


def allocations_with_removable(*, organisation: Organisation) -> QuerySet[CreditNoteAllocation]:
    """The organisation's allocations with their invoice and `removable`: refused, or needing attention with the
    latest write of it sent to a Xero organisation other than one connected now (it can never be looked up there:
    removing it is the way out). The one rule, for a page of them in one query (the batch page) and for one
    (invoices/services/fix/allocations.allocation_moved_away)."""
    AS = CreditNoteAllocation.State
    latest_tenant = (
        OutboundOperation.objects.filter(
            organisation=organisation, kind=CREDIT_NOTE_ALLOCATE, subject_id=OuterRef("pk")
        )
        .order_by("-pk")
        .values("tenant_id")[:1]
    )
    another_tenant_connected = Exists(
        XeroConnection.objects.filter(organisation=organisation)
        .exclude(tenant_id="")
        .exclude(tenant_id=OuterRef("latest_tenant"))
    )
    return (
        CreditNoteAllocation.objects.filter(organisation=organisation)
        .select_related("invoice")
        .annotate(latest_tenant=Subquery(latest_tenant))
        .annotate(
            removable=Case(
                When(state=AS.REFUSED, then=Value(True)),
                When(
                    Q(state=AS.NEEDS_ATTENTION, latest_tenant__isnull=False) & another_tenant_connected,
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )


def batch_cancelled_invoices(*, organisation: Organisation, batch: InvoiceBatch) -> QuerySet[CancelledInvoice]:
    return CancelledInvoice.objects.filter(organisation=organisation, batch=batch).select_related("cancelled_by")


def invoice_versions_held(*, organisation_id: int, resource_ids: Sequence[str]) -> dict[str, datetime]:
    """Xero's UpdatedDateUTC of the version we hold of each of these invoices (by InvoiceID) of the organisation; an
    invoice we do not hold, or hold at no known version, is absent. Named in settings.XERO_RESOURCE_VERSIONS, so the
    webhook inbox skips fetching what it already holds newer without importing invoices. One indexed query."""
    return {
        xero_id.lower(): version
        for xero_id, version in Invoice.objects.filter(
            organisation_id=organisation_id, xero_invoice_id__in=list(resource_ids), xero_updated_at__isnull=False
        ).values_list("xero_invoice_id", "xero_updated_at")
    }
