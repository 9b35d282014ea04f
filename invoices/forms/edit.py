"""Editing an invoice already in Xero: its reference, dates and lines (each line keeps its own account and tax)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from invoices import mappers
from invoices.forms.fields import MAX_FORM_LINES, iso_date_field, quantity_field, unit_amount_field
from invoices.forms.locale import LocaleFormMixin
from invoices.models import InvoiceLine
from invoices.services.batches.inputs import NEGATIVE_TOTAL_MESSAGE
from invoices.services.batches.validation import line_quantity_problem


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
