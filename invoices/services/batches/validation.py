"""Everything wrong with a batch before anything is written: numbers, customers, currencies, lines checked against
the organisation's Xero chart, and credit-note allocations."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db.models.functions import Lower

from invoices import mappers
from invoices.models import CreditNote, Invoice, customer_name_key
from invoices.services.batches.inputs import (
    _CURRENCY,
    CREATABLE_STATUSES,
    KINDS,
    MAX_INVOICES_PER_BATCH,
    MAX_LINES_PER_INVOICE,
    NEGATIVE_CREDIT_NOTE_MESSAGE,
    NEGATIVE_TOTAL_MESSAGE,
    NUMBER_MAX_LENGTH,
    BatchProblem,
    InvoiceInput,
)
from invoices.services.batches.numbering import _taken_numbers
from invoices.services.mapping import MappingUnavailable, currencies_enabled, mapping_choices
from organisations.models import Organisation


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
                    i,
                    "allocate_to",
                    "Only an approved credit note can be allocated: set its status to Approved (AUTHORISED in a CSV).",
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
