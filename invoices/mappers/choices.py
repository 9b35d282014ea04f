"""The mapping page's choices from the organisation's own Xero: revenue accounts and tax rates valid on sales."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from invoices.mappers.answers import _decimal
from invoices.mappers.totals import ZERO


@dataclass(frozen=True)
class AccountChoice:
    code: str
    name: str
    type: str


@dataclass(frozen=True)
class TaxRateChoice:
    tax_type: str
    name: str
    rate: Decimal


REVENUE_ACCOUNT_TYPES = frozenset({"REVENUE", "SALES", "OTHERINCOME"})


def revenue_accounts(body: Mapping[str, Any]) -> list[AccountChoice]:
    """The accounts a sales line may post to: ACTIVE, Class REVENUE, Type REVENUE|SALES|OTHERINCOME, with a Code.

    https://developer.xero.com/documentation/api/accounting/accounts (certification: use ACTIVE accounts)
    """
    out = []
    for account in body.get("Accounts") or []:
        if (
            account.get("Status") == "ACTIVE"
            and account.get("Class") == "REVENUE"
            and account.get("Type") in REVENUE_ACCOUNT_TYPES
            and account.get("Code")
        ):
            out.append(
                AccountChoice(code=str(account["Code"]), name=str(account.get("Name") or ""), type=str(account["Type"]))
            )
    return sorted(out, key=lambda a: (a.code, a.name))


def revenue_tax_rates(body: Mapping[str, Any]) -> list[TaxRateChoice]:
    """Tax rates valid on sales: ACTIVE and CanApplyToRevenue. https://developer.xero.com/documentation/api/accounting/taxrates"""
    out = []
    for rate in body.get("TaxRates") or []:
        if rate.get("Status") == "ACTIVE" and rate.get("CanApplyToRevenue") is True and rate.get("TaxType"):
            effective = _decimal(rate.get("EffectiveRate"))
            if effective is None:
                effective = _decimal(rate.get("DisplayTaxRate")) or ZERO
            out.append(TaxRateChoice(tax_type=str(rate["TaxType"]), name=str(rate.get("Name") or ""), rate=effective))
    return sorted(out, key=lambda r: r.name.lower())
