"""Create invoice batches (from the form or a CSV upload): one atomic service both go through."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from integrations.selectors import xero_sync_eligibility
from invoices import mappers
from invoices.models import (
    CreditNote,
    CreditNoteAllocation,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
    InvoiceLine,
    customer_name_key,
)
from invoices.services.mapping import (
    MappingUnavailable,
    currencies_enabled,
    mapping_choices,
    mapping_for,
    tax_rates_cached,
)
from invoices.sync_states import sync_state_begin
from organisations.models import Organisation

logger = logging.getLogger(__name__)

MAX_INVOICES_PER_BATCH = 5000
MAX_LINES_PER_INVOICE = 200
NUMBER_MAX_LENGTH = Invoice._meta.get_field("number").max_length
CREATABLE_STATUSES = (Invoice.Status.DRAFT, Invoice.Status.SUBMITTED, Invoice.Status.AUTHORISED)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
NEGATIVE_TOTAL_MESSAGE = (
    "This invoice's total is below zero: Xero does not take negative invoices, use a credit note instead "
    "(type “Credit note”, with the amounts as positive numbers)."
)
NEGATIVE_CREDIT_NOTE_MESSAGE = (
    "A credit note's total cannot be below zero: enter the amounts to credit as positive numbers."
)
# What a batch line can be: an invoice (PUT /Invoices) or a credit note (PUT /CreditNotes, its own number space).
KIND_INVOICE, KIND_CREDIT_NOTE = "invoice", "credit_note"
KINDS = {KIND_INVOICE: "Invoice", KIND_CREDIT_NOTE: "Credit note"}
NOT_SYNCED_REASONS = {
    InvoiceBatch.Eligibility.BEFORE_CONNECTION: "Created before Xero was connected, so it is not synced to Xero.",
    InvoiceBatch.Eligibility.WHILE_DISCONNECTED: "Created while Xero was disconnected, so it is not synced to Xero.",
}


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    account_code: str = ""
    tax_type: str = ""


@dataclass(frozen=True)
class InvoiceInput:
    customer_name: str
    number: str
    issue_date: dt.date
    due_date: dt.date
    currency: str
    lines: Sequence[LineInput]
    customer_email: str = ""
    reference: str = ""
    line_amount_types: str = Invoice.LineAmountTypes.EXCLUSIVE
    status: str = Invoice.Status.AUTHORISED
    kind: str = KIND_INVOICE  # KIND_INVOICE | KIND_CREDIT_NOTE
    allocate_to: str = ""  # a credit note only: the number of an invoice of the same customer to allocate it to

    @property
    def is_credit_note(self) -> bool:
        return self.kind == KIND_CREDIT_NOTE


@dataclass(frozen=True)
class BatchProblem:
    """One thing wrong with the input: which invoice (0-based position, None for the batch), which of its lines
    (0-based, None for the invoice itself), which field, what."""

    index: int | None
    field: str
    message: str
    line: int | None = None


class BatchInvalid(Exception):
    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass
class _Totals:
    tax_rate: Decimal = Decimal("0")
    tax_rates: dict[str, Decimal] = field(default_factory=dict)


# ---------------------------------------------------------------- eligibility


def batch_eligibility_now(*, organisation: Organisation) -> str:
    """What the help article promises, decided from the organisation's Xero connection at this moment."""
    value = xero_sync_eligibility(organisation)
    return value if value in InvoiceBatch.Eligibility.values else InvoiceBatch.Eligibility.BEFORE_CONNECTION


# ---------------------------------------------------------------- numbers


_NUMBER = re.compile(r"^(.*?)(\d+)$")


def invoice_numbers_suggest(*, organisation: Organisation, count: int = 1, after: str = "") -> list[str]:
    """The next `count` free invoice numbers, continuing the organisation's latest numbering (INV-0001 first)."""
    if len(after) > NUMBER_MAX_LENGTH:
        after = ""  # not a number we could store: continue from the latest stored one instead
    latest = (
        after
        or (
            Invoice.objects.filter(organisation=organisation)
            .order_by("-created_at", "-pk")
            .values_list("number", flat=True)
            .first()
        )
        or "INV-0000"
    )
    match = _NUMBER.match(latest)
    prefix, digits = (match.group(1), match.group(2)) if match else (f"{latest}-", "0000")
    taken = (
        {
            n.lower()
            for n in Invoice.objects.filter(organisation=organisation, number__istartswith=prefix).values_list(
                "number", flat=True
            )
        }
        if prefix
        else set()
    )
    out: list[str] = []
    value = int(digits)
    while len(out) < count:
        value += 1
        candidate = f"{prefix}{value:0{len(digits)}d}"
        if not prefix and Invoice.objects.filter(organisation=organisation, number__iexact=candidate).exists():
            continue
        if candidate.lower() not in taken:
            out.append(candidate)
    return out


def _taken_numbers(
    *, organisation: Organisation, numbers: list[str], existing: Collection[int] = (), model=Invoice
) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        taken.update(
            model.objects.filter(organisation=organisation)
            .exclude(pk__in=existing)
            .annotate(lowered=Lower("number"))
            .filter(lowered__in=chunk)
            .values_list("lowered", flat=True)
        )
    return taken


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class LineChart:
    """What a line may name, from the organisation's own Xero: its ACTIVE revenue accounts and the tax rates that
    apply to sales (None when they could not be read: `unavailable` says why), and its base currency ("" if unknown).
    """

    accounts: frozenset[str] | None
    tax_types: frozenset[str] | None
    base_currency: str = ""
    unavailable: str = ""
    # The currencies enabled in the organisation's Xero (GET /Currencies); None when not read (only the base
    # currency was used, or they could not be read: `currencies_unavailable` says why).
    currencies: tuple[str, ...] | None = None
    currencies_unavailable: str = ""


def line_chart(*, organisation: Organisation, needed: bool, currencies: Sequence[str] = ()) -> LineChart:
    """The chart lines are checked against. Xero is asked (through the mapping's ten-minute cache) only when a line
    names its own account or tax rate (`needed`), and for the enabled currencies only when a document is in another
    currency than the base one: lines that use the defaults in the base currency never wait on Xero."""
    from integrations.selectors import xero_connection_for

    connection = xero_connection_for(organisation)
    base_currency = (connection.base_currency if connection else "") or ""
    enabled: tuple[str, ...] | None = None
    currencies_unavailable = ""
    if connection is not None and connection.tenant_id and any(c != base_currency for c in currencies):
        try:
            enabled = tuple(currencies_enabled(organisation=organisation))
        except MappingUnavailable as exc:
            currencies_unavailable = str(exc)
    common = {"base_currency": base_currency, "currencies": enabled, "currencies_unavailable": currencies_unavailable}
    if not needed:
        return LineChart(accounts=None, tax_types=None, **common)
    try:
        choices = mapping_choices(organisation=organisation)
    except MappingUnavailable as exc:
        return LineChart(accounts=None, tax_types=None, unavailable=str(exc), **common)
    return LineChart(
        accounts=frozenset(a.code for a in choices.accounts),
        tax_types=frozenset(r.tax_type for r in choices.tax_rates),
        **common,
    )


def currency_problem(currency: str, chart: LineChart) -> str | None:
    """Why a document cannot be in this currency in the organisation's Xero; None when it can."""
    if not _CURRENCY.match(currency or ""):
        return "Use a three-letter currency code such as AUD."
    if chart.currencies is not None:
        if currency not in chart.currencies:
            return f"{currency} is not enabled in your Xero organisation: use one of {', '.join(chart.currencies)}."
        return None
    if chart.base_currency and currency != chart.base_currency:
        if chart.currencies_unavailable:
            return (
                f"We can't check {currency} against your Xero: {chart.currencies_unavailable} "
                f"Use {chart.base_currency}."
            )
        return f"Use {chart.base_currency}, your Xero organisation's base currency."
    return None


def line_quantity_problem(quantity: Decimal | None) -> str | None:
    """Why a quantity cannot go to Xero on an invoice line; None when it can."""
    if quantity is None:
        return None
    if quantity < 0:
        return "Quantities cannot be negative: to take an amount back, use a credit note."
    if quantity == 0:
        return "Enter a quantity above zero."
    if quantity > mappers.MAX_QUANTITY:
        return "That quantity is too large: at most 10 digits before the decimal point."
    return None


def _line_problems(i: int, inv: InvoiceInput, chart: LineChart) -> list[BatchProblem]:
    problems: list[BatchProblem] = []
    total = Decimal("0")
    for j, item in enumerate(inv.lines):
        quantity_problem = line_quantity_problem(item.quantity)
        if quantity_problem:
            problems.append(BatchProblem(i, "quantity", quantity_problem, line=j))
        if abs(item.unit_amount) > mappers.MAX_UNIT_AMOUNT:
            problems.append(
                BatchProblem(i, "unit_amount", "That price is too large: at most 10 digits before the point.", line=j)
            )
            continue
        amount = mappers.line_amount(quantity=item.quantity, unit_amount=item.unit_amount)
        if abs(amount) > mappers.MAX_TOTAL:
            problems.append(
                BatchProblem(
                    i,
                    "unit_amount",
                    f"Quantity × unit price is {amount:,.2f}: too large for one line (at most "
                    f"{mappers.MAX_TOTAL:,.2f}).",
                    line=j,
                )
            )
        total += amount
        account = (item.account_code or "").strip()
        if account:
            if chart.accounts is None:
                problems.append(BatchProblem(i, "account_code", _unchecked(f"account {account}", chart), line=j))
            elif account not in chart.accounts:
                problems.append(
                    BatchProblem(
                        i,
                        "account_code",
                        f"Account {account} is not one of your active revenue accounts in Xero.",
                        line=j,
                    )
                )
        tax = (item.tax_type or "").strip()
        if tax:
            if chart.tax_types is None:
                problems.append(BatchProblem(i, "tax_type", _unchecked(f"tax rate {tax}", chart), line=j))
            elif tax not in chart.tax_types:
                problems.append(
                    BatchProblem(i, "tax_type", f"Tax rate {tax} is not one of your Xero tax rates for sales.", line=j)
                )
    if abs(total) > mappers.MAX_TOTAL:
        problems.append(
            BatchProblem(i, "lines", f"The invoice's total is too large for Xero (at most {mappers.MAX_TOTAL:,.2f}).")
        )
    elif total < 0:
        problems.append(
            BatchProblem(i, "lines", NEGATIVE_CREDIT_NOTE_MESSAGE if inv.is_credit_note else NEGATIVE_TOTAL_MESSAGE)
        )
    return problems


def _unchecked(what: str, chart: LineChart) -> str:
    return f"We can't check {what} against your Xero: {chart.unavailable} Leave it empty to use your default."


def batch_problems(
    *,
    organisation: Organisation,
    name: str,
    invoices: Sequence[InvoiceInput],
    existing: Collection[int] = (),
    existing_credit_notes: Collection[int] = (),
) -> list[BatchProblem]:
    """Everything wrong with a batch before anything is written; empty when it can be created.

    `existing` (`existing_credit_notes`): ids of stored invoices (credit notes) these inputs are (fixing one,
    reviewing a batch before sending it), so their own numbers do not count as taken."""
    problems: list[BatchProblem] = []
    if not name.strip():
        problems.append(BatchProblem(None, "name", "Give the batch a name."))
    if not invoices:
        problems.append(BatchProblem(None, "invoices", "Add at least one invoice."))
    if len(invoices) > MAX_INVOICES_PER_BATCH:
        problems.append(BatchProblem(None, "invoices", f"A batch holds at most {MAX_INVOICES_PER_BATCH:,} invoices."))
    chart = line_chart(
        organisation=organisation,
        needed=any(
            (item.account_code or "").strip() or (item.tax_type or "").strip() for inv in invoices for item in inv.lines
        ),
        currencies=sorted({inv.currency for inv in invoices if _CURRENCY.match(inv.currency or "")}),
    )
    first_seen: dict[str, int] = {}
    credit_seen: dict[str, int] = {}
    for i, inv in enumerate(invoices):
        number = inv.number.strip()
        what = "Credit note" if inv.is_credit_note else "Invoice"
        seen = credit_seen if inv.is_credit_note else first_seen
        if inv.kind not in KINDS:
            problems.append(BatchProblem(i, "kind", "Use “invoice” or “credit note”."))
        if not number:
            problems.append(
                BatchProblem(i, "number", f"Enter {'a credit note' if inv.is_credit_note else 'an invoice'} number.")
            )
        elif len(number) > NUMBER_MAX_LENGTH:
            problems.append(BatchProblem(i, "number", f"{what} numbers have at most {NUMBER_MAX_LENGTH} characters."))
        elif number.lower() in seen:
            problems.append(BatchProblem(i, "number", f"{what} number {number} appears twice in this batch."))
        else:
            seen[number.lower()] = i
        if not inv.customer_name.strip():
            problems.append(BatchProblem(i, "customer_name", "Enter the customer."))
        currency_wrong = currency_problem(inv.currency, chart)
        if currency_wrong:
            problems.append(BatchProblem(i, "currency", currency_wrong))
        if inv.due_date < inv.issue_date:
            problems.append(BatchProblem(i, "due_date", "The due date is before the issue date."))
        if inv.line_amount_types not in Invoice.LineAmountTypes.values:
            problems.append(BatchProblem(i, "line_amount_types", "Use Exclusive, Inclusive or NoTax."))
        if inv.status not in CREATABLE_STATUSES:
            problems.append(BatchProblem(i, "status", "Use DRAFT, SUBMITTED or AUTHORISED."))
        if not inv.lines:
            problems.append(BatchProblem(i, "lines", "Add at least one line."))
        elif len(inv.lines) > MAX_LINES_PER_INVOICE:
            problems.append(BatchProblem(i, "lines", f"An invoice holds at most {MAX_LINES_PER_INVOICE} lines."))
        else:
            problems.extend(_line_problems(i, inv, chart))
    for lowered in sorted(_taken_numbers(organisation=organisation, numbers=list(first_seen), existing=existing)):
        i = first_seen[lowered]
        problems.append(
            BatchProblem(
                i,
                "number",
                f"Invoice number {invoices[i].number.strip()} is already used by another invoice of this organisation.",
            )
        )
    for lowered in sorted(
        _taken_numbers(
            organisation=organisation, numbers=list(credit_seen), existing=existing_credit_notes, model=CreditNote
        )
    ):
        i = credit_seen[lowered]
        problems.append(
            BatchProblem(
                i,
                "number",
                f"Credit note number {invoices[i].number.strip()} is already used by another credit note of this "
                "organisation.",
            )
        )
    problems.extend(_allocation_problems(organisation=organisation, invoices=invoices, first_seen=first_seen))
    return problems


def _allocation_problems(
    *, organisation: Organisation, invoices: Sequence[InvoiceInput], first_seen: dict[str, int]
) -> list[BatchProblem]:
    """A credit note may name an invoice to allocate it to: one of this batch, or one already in Coordinoter, of the
    same customer and currency; both approved (Xero allocates only AUTHORISED to AUTHORISED)."""
    problems: list[BatchProblem] = []
    wanted = {inv.allocate_to.strip().lower() for inv in invoices if inv.allocate_to.strip()}
    existing = {
        number.lower(): invoice
        for invoice in Invoice.objects.filter(organisation=organisation)
        .annotate(lowered=Lower("number"))
        .filter(lowered__in=[w for w in wanted if w not in first_seen])
        .select_related("customer")
        for number in [invoice.number]
    }
    for i, inv in enumerate(invoices):
        target = inv.allocate_to.strip()
        if not target:
            continue
        if not inv.is_credit_note:
            problems.append(BatchProblem(i, "allocate_to", "Only a credit note can be allocated to an invoice."))
            continue
        if inv.status != Invoice.Status.AUTHORISED:
            problems.append(
                BatchProblem(
                    i, "allocate_to", "Only an approved credit note can be allocated: set its status to AUTHORISED."
                )
            )
        j = first_seen.get(target.lower())
        if j is not None:
            other = invoices[j]
            customer, currency, status = customer_name_key(other.customer_name), other.currency, other.status
        elif target.lower() in existing:
            invoice = existing[target.lower()]
            customer, currency, status = (
                invoice.customer.name_key,
                invoice.currency,
                invoice.xero_status or invoice.status,
            )
            if invoice.sync_state in (Invoice.SyncState.FAILED, Invoice.SyncState.NOT_SYNCED):
                problems.append(
                    BatchProblem(i, "allocate_to", f"Invoice {target} is not in Xero: it cannot take credit.")
                )
                continue
        else:
            problems.append(
                BatchProblem(i, "allocate_to", f"There is no invoice {target} in this batch or in Coordinoter.")
            )
            continue
        if customer != customer_name_key(inv.customer_name):
            problems.append(BatchProblem(i, "allocate_to", f"Invoice {target} is for another customer."))
        elif currency != inv.currency:
            problems.append(
                BatchProblem(
                    i, "allocate_to", f"Invoice {target} is in {currency}, this credit note in {inv.currency}."
                )
            )
        elif status != Invoice.Status.AUTHORISED:
            label = Invoice.Status(status).label.lower() if status in Invoice.Status.values else status
            message = f"Invoice {target} is {label}: only an approved, unpaid invoice takes credit."
            problems.append(BatchProblem(i, "allocate_to", message))
    return problems


# ---------------------------------------------------------------- create


def _customers(*, organisation: Organisation, invoices: Sequence[InvoiceInput]) -> dict[str, Customer]:
    """Existing customers matched by their canonical name key (customer_name_key) within the organisation; the rest
    created. Keyed by that same key, computed in Python both for the lookup and for the match."""
    wanted: dict[str, InvoiceInput] = {}
    for inv in invoices:
        wanted.setdefault(customer_name_key(inv.customer_name), inv)
    found = {c.name_key: c for c in Customer.objects.filter(organisation=organisation, name_key__in=list(wanted))}
    for key, inv in wanted.items():
        if key not in found:
            found[key] = Customer.objects.create(
                organisation=organisation, name=inv.customer_name.strip()[:255], email=inv.customer_email.strip()
            )
    return found


def _totals_context(*, organisation: Organisation) -> _Totals:
    # Tax rates as last read from Xero (cache only: creating a batch never waits on Xero). Xero recomputes
    # totals when the invoice lands and the push stores them; until then these are our best estimate.
    rates = tax_rates_cached(organisation=organisation) or {}
    mapping = mapping_for(organisation)
    default = rates.get(mapping.tax_type, Decimal("0")) if mapping else Decimal("0")
    return _Totals(tax_rate=default, tax_rates=rates)


def batch_create(
    *,
    organisation: Organisation,
    user: AbstractBaseUser | None,
    name: str,
    invoices: Sequence[InvoiceInput],
    source: str,
) -> InvoiceBatch:
    """Create a batch and its invoices, or nothing (raises BatchInvalid listing every problem).

    Eligibility is decided once, now: eligible batches' invoices start `pending` and the push is
    enqueued on commit; batches created before Xero was connected, or while it was disconnected, stay
    `not_synced` (the help article's promise).
    """
    problems = batch_problems(organisation=organisation, name=name, invoices=invoices)
    if problems:
        raise BatchInvalid(problems)
    eligibility = batch_eligibility_now(organisation=organisation)
    totals_context = _totals_context(organisation=organisation)
    try:
        with transaction.atomic():
            batch = _write(
                organisation=organisation,
                user=user,
                name=name.strip(),
                invoices=invoices,
                source=source,
                eligibility=eligibility,
                totals_context=totals_context,
            )
            if eligibility == InvoiceBatch.Eligibility.ELIGIBLE:
                organisation_id = organisation.pk
                transaction.on_commit(lambda: _enqueue_push(organisation_id=organisation_id))
    except IntegrityError as exc:
        # Another request took one of these numbers between our check and our insert.
        logger.info("invoices.batch.create_conflict", extra={"organisation": organisation.pk})
        problems = batch_problems(organisation=organisation, name=name, invoices=invoices)
        raise BatchInvalid(
            problems
            or [BatchProblem(None, "invoices", "An invoice number was just taken by another batch. Please try again.")]
        ) from exc
    logger.info(
        "invoices.batch.created",
        extra={
            "organisation": organisation.pk,
            "batch": batch.pk,
            "invoices": len(invoices),
            "eligibility": eligibility,
        },
    )
    return batch


def _write(
    *,
    organisation: Organisation,
    user: AbstractBaseUser | None,
    name: str,
    invoices: Sequence[InvoiceInput],
    source: str,
    eligibility: str,
    totals_context: _Totals,
) -> InvoiceBatch:
    batch = InvoiceBatch.objects.create(
        organisation=organisation,
        name=name[:200],
        source=source,
        eligibility=eligibility,
        created_by=user if user else None,
    )
    customers = _customers(organisation=organisation, invoices=invoices)
    credit_notes = [inv for inv in invoices if inv.is_credit_note]
    invoices = [inv for inv in invoices if not inv.is_credit_note]
    eligible = eligibility == InvoiceBatch.Eligibility.ELIGIBLE
    rows = []
    for inv in invoices:
        fields = _document_fields(inv, batch=batch, customers=customers, totals=totals_context)
        rows.append(
            Invoice(
                **fields,
                sync_state=sync_state_begin(eligible=eligible),
                due_date=inv.due_date,
                amount_due=fields["total"],
            )
        )
    created = Invoice.objects.bulk_create(rows, batch_size=500)
    lines = [
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=line.description.strip(),
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            account_code=line.account_code.strip(),
            tax_type=line.tax_type.strip(),
        )
        for invoice, inv in zip(created, invoices, strict=True)
        for position, line in enumerate(inv.lines, start=1)
    ]
    InvoiceLine.objects.bulk_create(lines, batch_size=1000)
    message = NOT_SYNCED_REASONS.get(eligibility, "Created; waiting to be sent to Xero.")
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=invoice,
                organisation=organisation,
                source=InvoiceEvent.Source.COORDINOTER,
                kind="created",
                message=message,
                actor=user if user else None,
                changes={"batch": batch.pk, "source": source},
            )
            for invoice in created
        ],
        batch_size=1000,
    )
    _write_credit_notes(
        batch=batch,
        user=user,
        credit_notes=credit_notes,
        customers=customers,
        invoices={invoice.number.lower(): invoice for invoice in created},
        eligible=eligible,
        totals_context=totals_context,
    )
    return batch


def _document_fields(
    inv: InvoiceInput, *, batch: InvoiceBatch, customers: dict[str, Customer], totals: _Totals
) -> dict:
    """What an invoice and a credit note of the batch store alike: who, which numbers and dates, and the totals
    with Xero's rounding."""
    computed = mappers.invoice_totals(
        inv.lines, line_amount_types=inv.line_amount_types, tax_rate=totals.tax_rate, tax_rates=totals.tax_rates
    )
    return {
        "organisation": batch.organisation,
        "batch": batch,
        "customer": customers[customer_name_key(inv.customer_name)],
        "number": inv.number.strip(),
        "reference": inv.reference.strip(),
        "currency": inv.currency,
        "issue_date": inv.issue_date,
        "line_amount_types": inv.line_amount_types,
        "status": inv.status,
        "subtotal": computed.subtotal,
        "total_tax": computed.total_tax,
        "total": computed.total,
    }


def _write_credit_notes(
    *,
    batch: InvoiceBatch,
    user: AbstractBaseUser | None,
    credit_notes: Sequence[InvoiceInput],
    customers: dict[str, Customer],
    invoices: dict[str, Invoice],
    eligible: bool,
    totals_context: _Totals,
) -> None:
    """The batch's credit notes, their lines, and the allocations asked for (waiting until both are in Xero)."""
    if not credit_notes:
        return
    organisation = batch.organisation
    notes = []
    for inv in credit_notes:
        fields = _document_fields(inv, batch=batch, customers=customers, totals=totals_context)
        notes.append(CreditNote(**fields, sync_state=sync_state_begin(eligible=eligible)))
    created = CreditNote.objects.bulk_create(notes)
    CreditNoteLine.objects.bulk_create(
        [
            CreditNoteLine(
                credit_note=note,
                position=position,
                description=line.description.strip(),
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                account_code=line.account_code.strip(),
                tax_type=line.tax_type.strip(),
            )
            for note, inv in zip(created, credit_notes, strict=True)
            for position, line in enumerate(inv.lines, start=1)
        ]
    )
    targets = {inv.allocate_to.strip().lower() for inv in credit_notes if inv.allocate_to.strip()}
    earlier = {
        number.lower(): invoice
        for invoice in Invoice.objects.filter(organisation=organisation)
        .annotate(lowered=Lower("number"))
        .filter(lowered__in=[t for t in targets if t not in invoices])
        for number in [invoice.number]
    }
    allocations = [
        CreditNoteAllocation(
            organisation=organisation,
            credit_note=note,
            invoice=invoices.get(inv.allocate_to.strip().lower()) or earlier[inv.allocate_to.strip().lower()],
            requested_by=user if user else None,
        )
        for note, inv in zip(created, credit_notes, strict=True)
        if inv.allocate_to.strip()
    ]
    CreditNoteAllocation.objects.bulk_create(allocations)
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=allocation.invoice,
                organisation=organisation,
                source=InvoiceEvent.Source.COORDINOTER,
                kind="credit_requested",
                message=f"Credit note {allocation.credit_note.number} to be allocated to it once both are in Xero.",
                actor=user if user else None,
                changes={"credit_note_id": allocation.credit_note.pk},
            )
            for allocation in allocations
        ]
    )


def _enqueue_push(*, organisation_id: int) -> None:
    from invoices.services.push import push_enqueue_for_organisation  # the engine imports this module's app

    push_enqueue_for_organisation(organisation_id=organisation_id)
