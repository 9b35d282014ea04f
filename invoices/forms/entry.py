"""The whole new-batch page as one object (`BatchEntry`): a formset of invoices, each with its own formset of lines
(prefix `inv-<i>-lines`). Rows left blank are ignored; "Add another invoice/line" and "Make it a credit note" are
submit buttons handled on the server (`entry_with_*`, `entry_as_credit_note`), so the page needs no JavaScript."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.forms.utils import ErrorDict
from django.http import QueryDict

from invoices import mappers
from invoices.forms.batch import (
    BLANK_LINES,
    MAX_FORM_INVOICES,
    BatchNameForm,
    InvoiceForm,
    InvoiceFormSet,
    LineForm,
    LineFormSet,
)
from invoices.forms.fields import MAX_FORM_LINES
from invoices.services.batches.inputs import (
    KIND_CREDIT_NOTE,
    KIND_INVOICE,
    NEGATIVE_TOTAL_MESSAGE,
    BatchProblem,
    InvoiceInput,
    LineInput,
)
from organisations.locale import Locale


def _raw_blank(data: QueryDict, prefix: str, fields: tuple[str, ...]) -> bool:
    return not any((data.get(f"{prefix}-{name}") or "").strip() for name in fields)


class BatchEntry:
    """The whole batch form: a name, invoices, and each invoice's lines."""

    INVOICE_PREFIX = "inv"
    INVOICE_CONTENT = ("customer_name", "customer_email", "reference")
    LINE_CONTENT = ("description", "unit_amount", "account_code", "tax_type")

    def __init__(
        self, data: QueryDict | None = None, *, initial_invoices: list[dict] | None = None, locale: Locale | None = None
    ) -> None:
        self.data = data
        self.locale = locale
        kw = {"form_kwargs": {"locale": locale}}
        self.name_form = BatchNameForm(data, prefix="batch")
        if data is None:
            initial_invoices = initial_invoices or [{}]
            self.invoices = InvoiceFormSet(prefix=self.INVOICE_PREFIX, initial=initial_invoices, **kw)
            self.invoices.extra = 0
            # An unbound formset with `initial` renders one form per initial dict.
            self.lines = [
                LineFormSet(prefix=self.line_prefix(i), initial=[{}] * BLANK_LINES, **kw)
                for i in range(len(initial_invoices))
            ]
        else:
            self.invoices = InvoiceFormSet(data, prefix=self.INVOICE_PREFIX, **kw)
            self.lines = [
                LineFormSet(data, prefix=self.line_prefix(i), **kw) for i in range(self.invoices.total_form_count())
            ]
        self.problems: list[str] = []
        self._kept: list[int] = []
        self._positions: list[int] = []

    @classmethod
    def line_prefix(cls, index: int) -> str:
        return f"{cls.INVOICE_PREFIX}-{index}-lines"

    @property
    def rows(self) -> list[tuple[InvoiceForm, forms.BaseFormSet]]:
        return list(zip(self.invoices.forms, self.lines, strict=True))

    # ------------------------------------------------------------ blank rows

    def _invoice_is_blank(self, index: int) -> bool:
        assert self.data is not None
        prefix = self.invoices.forms[index].prefix
        lines = self.lines[index]
        return _raw_blank(self.data, prefix, self.INVOICE_CONTENT) and all(
            self._line_is_blank(form) for form in lines.forms
        )

    def _line_is_blank(self, form: LineForm) -> bool:
        assert self.data is not None
        return _raw_blank(self.data, form.prefix, self.LINE_CONTENT)

    # ------------------------------------------------------------ validation

    def is_valid(self) -> bool:
        """Validate the non-blank rows; blank invoices and blank lines are left out."""
        ok = self.name_form.is_valid()
        self.name_form.show_errors = True
        if not (self.invoices.management_form.is_valid() and all(ls.management_form.is_valid() for ls in self.lines)):
            self.problems.append("The form was incomplete. Please start again.")
            return False
        self._kept: list[int] = []
        for index, (form, lines) in enumerate(self.rows):
            if self._invoice_is_blank(index):
                continue
            self._kept.append(index)
            form.show_errors = True
            ok = form.is_valid() and ok
            kept_lines = [line for line in lines.forms if not self._line_is_blank(line)]
            if not kept_lines:
                form.add_error(None, "Add at least one line with a description and a unit price.")
                ok = False
            for line in kept_lines:
                line.show_errors = True
                ok = line.is_valid() and ok
        if not self._kept:
            self.problems.append("Add at least one invoice: a customer and a line.")
            ok = False
        self.silence(validated_only=True)
        return ok

    def silence(self, *, validated_only: bool = False) -> None:
        """Rows we did not validate show no errors (and no aria-invalid) when the page is drawn again."""
        for form, lines in self.rows:
            for f in [form, *lines.forms]:
                if not (validated_only and getattr(f, "show_errors", False)):
                    f._errors = ErrorDict()
                    f.cleaned_data = {}

    def invoice_inputs(self, *, only_valid: bool = False) -> list[InvoiceInput]:
        """The kept invoices as the service takes them; with `only_valid`, those whose every field was valid (so the
        service's checks run on them too and every problem shows at once, not one round at a time)."""
        out = []
        self._positions: list[int] = []
        for index in self._kept:
            form = self.invoices.forms[index]
            kept_lines = [line for line in self.lines[index].forms if not self._line_is_blank(line)]
            if only_valid and (form.errors or any(line.errors for line in kept_lines) or not kept_lines):
                continue
            data = form.cleaned_data
            lines = [
                LineInput(
                    description=line.cleaned_data["description"].strip(),
                    quantity=line.cleaned_data["quantity"],
                    unit_amount=line.cleaned_data["unit_amount"],
                    account_code=line.cleaned_data["account_code"].strip(),
                    tax_type=line.cleaned_data["tax_type"].strip(),
                )
                for line in kept_lines
            ]
            out.append(
                InvoiceInput(
                    customer_name=data["customer_name"].strip(),
                    customer_email=data["customer_email"],
                    number=data["number"].strip(),
                    reference=data["reference"].strip(),
                    currency=data["currency"],
                    issue_date=data["issue_date"],
                    due_date=data["due_date"],
                    line_amount_types=data["line_amount_types"],
                    status=data["status"],
                    lines=lines,
                    kind=data.get("kind") or KIND_INVOICE,
                    allocate_to=(data.get("allocate_to") or "").strip(),
                )
            )
            self._positions.append(index)
        return out

    def add_problems(self, problems: list[BatchProblem], *, batch_level: bool = True) -> None:
        """Put the service's problems (about the list `invoice_inputs` last returned) on the rows they are about."""
        for problem in problems:
            if problem.index is None:
                if not batch_level:
                    continue
                if problem.field == "name":
                    self.name_form.add_error("name", problem.message)
                else:
                    self.problems.append(problem.message)
                continue
            index = self._positions[problem.index]
            form = self.invoices.forms[index]
            if problem.line is not None:
                kept_lines = [line for line in self.lines[index].forms if not self._line_is_blank(line)]
                if problem.line < len(kept_lines):
                    form = kept_lines[problem.line]
            field = problem.field if problem.field in form.fields else None
            form.add_error(field, problem.message)
            if problem.message == NEGATIVE_TOTAL_MESSAGE:
                # The way out is one click away: the form offers to turn this invoice into a credit note.
                self.invoices.forms[index].offer_credit_note = True

    @property
    def error_count(self) -> int:
        count = len(self.problems) + (1 if self.name_form.errors else 0)
        for index, (form, lines) in enumerate(self.rows):
            if index in getattr(self, "_kept", []):
                count += len(form.errors) + sum(
                    len(line.errors) for line in lines.forms if not self._line_is_blank(line)
                )
        return count


def _copy(data: QueryDict) -> QueryDict:
    return data.copy()


def entry_with_added_invoice(data: QueryDict, *, next_number: str, locale: Locale | None = None) -> BatchEntry:
    """The same entry plus one invoice row (dates, currency and status copied from the last one)."""
    data = _copy(data)
    prefix = BatchEntry.INVOICE_PREFIX
    try:
        count = int(data.get(f"{prefix}-TOTAL_FORMS", "0"))
    except ValueError:
        count = 0
    if count >= MAX_FORM_INVOICES:
        entry = BatchEntry(data, locale=locale)
        entry.silence()
        entry.problems.append(f"The form holds up to {MAX_FORM_INVOICES} invoices. Use a CSV upload for more.")
        return entry
    last = f"{prefix}-{count - 1}-"
    new = f"{prefix}-{count}-"
    for name in ("currency", "issue_date", "due_date", "line_amount_types", "status"):
        data[new + name] = data.get(last + name, "") if count else ""
    data[new + "number"] = next_number
    data[f"{prefix}-TOTAL_FORMS"] = str(count + 1)
    lines = BatchEntry.line_prefix(count)
    data[f"{lines}-TOTAL_FORMS"] = str(BLANK_LINES)
    data[f"{lines}-INITIAL_FORMS"] = "0"
    for i in range(BLANK_LINES):
        data[f"{lines}-{i}-quantity"] = "1"
    entry = BatchEntry(data, locale=locale)
    entry.silence()
    return entry


def entry_as_credit_note(data: QueryDict, *, invoice_index: int, locale: Locale | None = None) -> BatchEntry:
    """The same entry with this invoice turned into a credit note: its type set, its amounts' signs turned (a
    negative invoice of -50 credits 50), its number left for the person to check."""
    data = _copy(data)
    prefix = f"{BatchEntry.INVOICE_PREFIX}-{invoice_index}-"
    data[prefix + "kind"] = KIND_CREDIT_NOTE
    lines = BatchEntry.line_prefix(invoice_index)
    try:
        count = min(int(data.get(f"{lines}-TOTAL_FORMS", "0")), MAX_FORM_LINES)
    except ValueError:
        count = 0
    for i in range(count):
        key = f"{lines}-{i}-unit_amount"
        text = (data.get(key) or "").strip()
        try:
            value = Decimal(text)
        except ArithmeticError:
            continue
        if value.is_finite() and text:
            data[key] = mappers.plain_decimal(-value, min_places=2)
    entry = BatchEntry(data, locale=locale)
    entry.silence()
    return entry


def entry_with_added_line(data: QueryDict, *, invoice_index: int, locale: Locale | None = None) -> BatchEntry:
    data = _copy(data)
    lines = BatchEntry.line_prefix(invoice_index)
    try:
        count = int(data.get(f"{lines}-TOTAL_FORMS", "0"))
    except ValueError:
        count = 0
    if count < MAX_FORM_LINES:
        data[f"{lines}-TOTAL_FORMS"] = str(count + 1)
        data[f"{lines}-{count}-quantity"] = "1"
    entry = BatchEntry(data, locale=locale)
    entry.silence()
    return entry
