"""Fields and widgets every invoice form shares: ISO date inputs and four-decimal amounts, with our words."""

from __future__ import annotations

from django import forms

MAX_FORM_LINES = 50
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
