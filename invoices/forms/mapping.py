"""The Xero mapping settings page: the organisation's default revenue account and tax rate."""

from __future__ import annotations

from django import forms


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
