"""The forms that fix a document Xero refused (or that has not gone yet), an invoice or a credit note: customer,
dates, reference, and its lines with their own account and tax rate. Values round-trip as typed: ISO dates, amounts
never as `1E+2`."""

from __future__ import annotations

from django import forms

from invoices import mappers
from invoices.forms import MAX_FORM_LINES, LineForm, iso_date_field
from invoices.forms.locale import LocaleFormMixin
from invoices.services.batches import BatchProblem, LineInput
from invoices.services.fix import DocumentFix

BLANK_ROWS = 2


class DocumentFixForm(LocaleFormMixin, forms.Form):
    """A credit note's fields (it has no due date); the invoice's form adds one."""

    customer_name = forms.CharField(
        max_length=255,
        label="Customer",
        help_text="An existing customer, or a new name to add one.",
        widget=forms.TextInput(attrs={"list": "customer-names", "autocomplete": "off"}),
    )
    customer_email = forms.EmailField(label="Customer email", required=False, help_text="Only used for a new customer.")
    reference = forms.CharField(max_length=255, required=False)
    issue_date = iso_date_field("Date")


class InvoiceFixForm(DocumentFixForm):
    issue_date = iso_date_field("Invoice date")
    due_date = iso_date_field("Due date")

    def clean(self) -> dict:
        data = super().clean()
        issue, due = data.get("issue_date"), data.get("due_date")
        if issue and due and due < issue:
            self.add_error("due_date", "The due date is before the invoice date.")
        return data


class FixLineForm(LineForm):
    """A line with its own account and tax rate (empty: the Xero mapping's defaults). A row whose description is
    empty is no line: that is how a line is removed, and how the blank rows stay unused."""

    def is_blank(self) -> bool:
        return not (self.data.get(self.add_prefix("description")) or "").strip()

    def full_clean(self) -> None:
        if self.is_bound and self.is_blank():
            self._errors = forms.utils.ErrorDict()
            self.cleaned_data = {}
            return
        super().full_clean()


class BaseFixLineFormSet(forms.BaseFormSet):
    def kept(self) -> list[FixLineForm]:
        return [form for form in self.forms if not form.is_blank()]

    def clean(self) -> None:
        if any(self.errors):
            return
        if not self.kept():
            raise forms.ValidationError("It needs at least one line: describe it and give its unit price.")


FixLineFormSet = forms.formset_factory(
    FixLineForm, formset=BaseFixLineFormSet, extra=BLANK_ROWS, max_num=MAX_FORM_LINES, absolute_max=MAX_FORM_LINES
)


def fix_initial(document) -> dict:
    initial = {"customer_name": document.customer.name, "reference": document.reference}
    initial.update({name: getattr(document, name) for name in ("issue_date", "due_date") if hasattr(document, name)})
    return initial


def fix_lines_initial(lines: list) -> list[dict]:
    return [
        {
            "description": line.description,
            "quantity": mappers.plain_decimal(line.quantity),
            "unit_amount": mappers.plain_decimal(line.unit_amount, min_places=2),
            "account_code": line.account_code,
            "tax_type": line.tax_type,
        }
        for line in lines
    ]


def document_fix_of(form: DocumentFixForm, lines: BaseFixLineFormSet) -> DocumentFix:
    data = form.cleaned_data
    return DocumentFix(
        customer_name=data["customer_name"],
        customer_email=data.get("customer_email") or "",
        issue_date=data["issue_date"],
        due_date=data.get("due_date"),
        reference=data.get("reference") or "",
        lines=[
            LineInput(
                description=line.cleaned_data["description"].strip(),
                quantity=line.cleaned_data["quantity"],
                unit_amount=line.cleaned_data["unit_amount"],
                account_code=(line.cleaned_data.get("account_code") or "").strip(),
                tax_type=(line.cleaned_data.get("tax_type") or "").strip(),
            )
            for line in lines.kept()
        ],
    )


def problems_onto(form: DocumentFixForm, lines: BaseFixLineFormSet, problems: list[BatchProblem]) -> None:
    """The service's problems on the fields they are about (a line's on that line's row)."""
    kept = lines.kept()
    for problem in problems:
        target: forms.Form = form
        if problem.line is not None and problem.line < len(kept):
            target = kept[problem.line]
        field = problem.field if problem.field in target.fields else None
        target.add_error(field, problem.message)
