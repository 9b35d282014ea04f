"""The forms of the new-batch page (a name, invoices, each invoice's lines) and of the CSV upload page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms

from invoices.forms.fields import (
    DATE_FORMATS,
    MAX_FORM_LINES,
    DateInput,
    quantity_field,
    unit_amount_field,
)
from invoices.forms.locale import LocaleFormMixin
from invoices.models import Invoice
from invoices.services.batches.inputs import CREATABLE_STATUSES, KIND_INVOICE, KINDS
from invoices.services.batches.validation import line_quantity_problem

MAX_FORM_INVOICES = 50
BLANK_LINES = 3


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
