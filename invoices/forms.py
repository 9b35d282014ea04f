"""Forms for creating invoice batches (several invoices, each with several lines), CSV upload and mapping.

The batch form is a formset of invoices, each with its own formset of lines (prefix `inv-<i>-lines`).
Rows left blank are ignored; "Add another invoice/line" is a submit button handled on the server, so the
page needs no JavaScript.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.forms.utils import ErrorDict
from django.http import QueryDict

from invoices import mappers
from invoices.locale_forms import LocaleFormMixin
from invoices.models import Invoice, InvoiceLine
from invoices.services.batches import (
    CREATABLE_STATUSES,
    KIND_CREDIT_NOTE,
    KIND_INVOICE,
    KINDS,
    NEGATIVE_TOTAL_MESSAGE,
    BatchProblem,
    InvoiceInput,
    LineInput,
    line_quantity_problem,
)
from organisations.locale import Locale

MAX_FORM_INVOICES = 50
MAX_FORM_LINES = 50
BLANK_LINES = 3
DATE_FORMATS = ["%Y-%m-%d"]


class DateInput(forms.DateInput):
    # A plain YYYY-MM-DD text field: the same format as the CSV and as Xero takes, whatever the browser's locale.
    def __init__(self, **kwargs):
        super().__init__(
            format="%Y-%m-%d",
            attrs={
                "placeholder": "YYYY-MM-DD",
                "inputmode": "numeric",
                "pattern": r"\d{4}-\d{2}-\d{2}",
                "maxlength": 10,
                "autocomplete": "off",
            },
            **kwargs,
        )


DECIMAL_ERRORS = {
    "invalid": "Enter a number, with a point as the decimal separator (12.50, not 12,50).",
    "max_digits": "That number is too large: at most 10 digits before the decimal point.",
    "max_whole_digits": "That number is too large: at most 10 digits before the decimal point.",
    "max_decimal_places": "Use at most 4 decimal places.",
}


def quantity_field(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(
        max_digits=14,
        decimal_places=4,
        error_messages=DECIMAL_ERRORS,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        **kwargs,
    )


def unit_amount_field(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(
        max_digits=14,
        decimal_places=4,
        label="Unit price",
        error_messages=DECIMAL_ERRORS,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        **kwargs,
    )


class BatchNameForm(forms.Form):
    name = forms.CharField(
        max_length=200, label="Batch name", widget=forms.TextInput(attrs={"placeholder": "e.g. November services"})
    )


class InvoiceForm(LocaleFormMixin, forms.Form):
    customer_name = forms.CharField(
        max_length=255,
        label="Customer",
        required=False,
        help_text="An existing customer, or a new name to add one.",
        widget=forms.TextInput(attrs={"list": "customer-names", "autocomplete": "off"}),
    )
    customer_email = forms.EmailField(label="Customer email", required=False, help_text="Only used for a new customer.")
    number = forms.CharField(
        max_length=255,
        label="Invoice number",
        error_messages={
            "max_length": "Invoice numbers have at most %(limit_value)d characters (this one has %(show_value)d)."
        },
    )
    reference = forms.CharField(
        max_length=255,
        required=False,
        error_messages={
            "max_length": "References have at most %(limit_value)d characters (this one has %(show_value)d)."
        },
    )
    currency = forms.RegexField(
        regex=r"^[A-Za-z]{3}$",
        max_length=3,
        label="Currency",
        error_messages={"invalid": "Use a three-letter code such as AUD."},
        widget=forms.TextInput(attrs={"list": "currency-codes", "size": 4, "autocomplete": "off"}),
    )
    issue_date = forms.DateField(
        input_formats=DATE_FORMATS,
        widget=DateInput(),
        label="Issue date",
        error_messages={"invalid": "Use the form YYYY-MM-DD."},
    )
    due_date = forms.DateField(
        input_formats=DATE_FORMATS,
        widget=DateInput(),
        label="Due date",
        error_messages={"invalid": "Use the form YYYY-MM-DD."},
    )
    line_amount_types = forms.ChoiceField(choices=Invoice.LineAmountTypes.choices, label="Amounts are")
    status = forms.ChoiceField(choices=[(s.value, s.label) for s in CREATABLE_STATUSES], label="Status in Xero")
    kind = forms.ChoiceField(
        choices=list(KINDS.items()),
        label="Type",
        required=False,
        help_text="A credit note gives money back: its own number (e.g. CN-0001), amounts as positive numbers.",
    )
    allocate_to = forms.CharField(
        max_length=255,
        required=False,
        label="Allocate to invoice",
        help_text="Credit notes only: an approved invoice of the same customer, by number (in this batch or sent "
        "before). The credit is allocated once both are in Xero.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. INV-0001"}),
    )

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or KIND_INVOICE

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].upper()

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("customer_name") or "").strip():
            self.add_error("customer_name", "Enter the customer.")
        issue, due = data.get("issue_date"), data.get("due_date")
        if issue and due and due < issue:
            self.add_error("due_date", "The due date is before the issue date.")
        return data


class LineForm(LocaleFormMixin, forms.Form):
    description = forms.CharField(max_length=4000, required=False)
    quantity = quantity_field(initial=Decimal("1"))
    unit_amount = unit_amount_field(required=False)
    account_code = forms.CharField(
        max_length=10,
        required=False,
        label="Account",
        widget=forms.TextInput(attrs={"list": "account-codes", "placeholder": "Default", "autocomplete": "off"}),
    )
    tax_type = forms.CharField(
        max_length=50,
        required=False,
        label="Tax rate",
        widget=forms.TextInput(attrs={"list": "tax-types", "placeholder": "Default", "autocomplete": "off"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("description") or "").strip():
            self.add_error("description", "Describe the line.")
        if data.get("unit_amount") is None and "unit_amount" not in self.errors:
            self.add_error("unit_amount", "Enter the unit price.")
        problem = line_quantity_problem(data.get("quantity"))
        if problem:
            self.add_error("quantity", problem)
        return data


InvoiceFormSet = forms.formset_factory(InvoiceForm, extra=0, max_num=MAX_FORM_INVOICES, absolute_max=MAX_FORM_INVOICES)
LineFormSet = forms.formset_factory(LineForm, extra=0, max_num=MAX_FORM_LINES, absolute_max=MAX_FORM_LINES)


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


def default_invoice_initial(*, number: str, currency: str, today: dt.date) -> dict:
    return {
        "number": number,
        "currency": currency,
        "issue_date": today,
        "due_date": today + dt.timedelta(days=14),
        "line_amount_types": Invoice.LineAmountTypes.EXCLUSIVE,
        "status": Invoice.Status.AUTHORISED,
    }


class CsvUploadForm(forms.Form):
    name = forms.CharField(
        max_length=200, label="Batch name", widget=forms.TextInput(attrs={"placeholder": "e.g. November services"})
    )
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))


class MappingForm(forms.Form):
    revenue_account_code = forms.ChoiceField(label="Default revenue account")
    tax_type = forms.ChoiceField(label="Default tax rate")

    def __init__(self, *args, accounts=(), tax_rates=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["revenue_account_code"].choices = [("", "Choose an account")] + [
            (a.code, f"{a.code} · {a.name}") for a in accounts
        ]
        self.fields["tax_type"].choices = [("", "Choose a tax rate")] + [
            (r.tax_type, f"{r.name} ({r.rate.normalize():f}%)") for r in tax_rates
        ]


# ---------------------------------------------------------------- editing an invoice already in Xero


def iso_date_field(label: str) -> forms.DateField:
    """A date an edit or fix form shows back in ISO (date inputs need it) and reads in ISO or the locale's form."""
    return forms.DateField(
        label=label,
        input_formats=DATE_FORMATS,
        widget=IsoDateInput(),
        error_messages={"invalid": "Use the form YYYY-MM-DD."},
    )


class IsoDateInput(forms.DateInput):
    # A browser's date input takes and gives YYYY-MM-DD only; the locale's format (en-AU 02/12/2026) shows it empty.
    # https://html.spec.whatwg.org/multipage/input.html#date-state-(type=date)
    input_type = "date"

    def __init__(self, **kwargs) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class InvoiceEditForm(LocaleFormMixin, forms.Form):
    reference = forms.CharField(max_length=255, required=False)
    issue_date = iso_date_field("Invoice date")
    due_date = iso_date_field("Due date")
    based_on = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict:
        data = super().clean()
        issue, due = data.get("issue_date"), data.get("due_date")
        if issue and due and due < issue:
            self.add_error("due_date", "The due date is before the invoice date.")
        return data


class LineEditForm(LocaleFormMixin, forms.Form):
    # Which of the invoice's lines this row shows: its account and tax go with it, wherever it sits in the form.
    line_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    description = forms.CharField(max_length=4000, required=False)
    quantity = quantity_field(required=False)
    unit_amount = unit_amount_field(required=False)

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("description") or "").strip():
            return data  # a row left empty removes the line
        if data.get("unit_amount") is None and "unit_amount" not in self.errors:
            self.add_error("unit_amount", "Enter the unit price.")
        problem = line_quantity_problem(data.get("quantity"))
        if problem:
            self.add_error("quantity", problem)
        return data


class BaseLineEditFormSet(forms.BaseFormSet):
    def kept(self) -> list[dict]:
        rows = [getattr(form, "cleaned_data", None) or {} for form in self.forms]
        return [row for row in rows if (row.get("description") or "").strip()]

    def clean(self) -> None:
        if any(self.errors):
            return
        kept = self.kept()
        if not kept:
            raise forms.ValidationError("An invoice needs at least one line.")
        amounts = [
            mappers.line_amount(quantity=f["quantity"] or Decimal("1"), unit_amount=f["unit_amount"]) for f in kept
        ]
        if any(abs(a) > mappers.MAX_TOTAL for a in amounts) or abs(sum(amounts)) > mappers.MAX_TOTAL:
            raise forms.ValidationError("The invoice total is too large for Xero.")
        if sum(amounts) < 0:
            raise forms.ValidationError(NEGATIVE_TOTAL_MESSAGE)


LineEditFormSet = forms.formset_factory(
    LineEditForm, formset=BaseLineEditFormSet, extra=1, max_num=MAX_FORM_LINES, absolute_max=MAX_FORM_LINES
)


def line_edit_initial(lines: list[InvoiceLine]) -> list[dict]:
    """The invoice's lines as the edit form shows them: amounts as a person would type them, never `1E+2`."""
    return [
        {
            "line_id": line.pk,
            "description": line.description,
            "quantity": mappers.plain_decimal(line.quantity),
            "unit_amount": mappers.plain_decimal(line.unit_amount, min_places=2),
        }
        for line in lines
    ]


def line_edits(formset: BaseLineEditFormSet, *, existing: list[InvoiceLine]) -> list[dict]:
    """The kept rows, each with the account and tax of the line it came from (by id, never by position).

    An id that is not one of this invoice's lines counts as a new line: it takes the mapping's defaults.
    """
    by_id = {line.pk: line for line in existing}
    out = []
    for row in formset.kept():
        source = by_id.get(row.get("line_id"))
        out.append(
            {
                "description": row["description"].strip(),
                "quantity": row["quantity"] or Decimal("1"),
                "unit_amount": row["unit_amount"],
                "account_code": source.account_code if source else "",
                "tax_type": source.tax_type if source else "",
            }
        )
    return out
