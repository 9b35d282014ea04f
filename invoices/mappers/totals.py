"""Totals the way Xero computes them: line amounts to 2 dp (half up), tax rounded per line; and the bounds of what
our columns hold. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

TWO_DP = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
EXCLUSIVE, INCLUSIVE, NO_TAX = "Exclusive", "Inclusive", "NoTax"
LINE_AMOUNT_TYPES = (EXCLUSIVE, INCLUSIVE, NO_TAX)
# Bounds of what our columns hold (InvoiceLine.quantity / unit_amount: 14 digits, 4 decimals; Invoice totals:
# 14 digits, 2 decimals), so nothing we accept fails to store, to render or to reach Xero whole.
MAX_QUANTITY = Decimal("9999999999.9999")
MAX_UNIT_AMOUNT = Decimal("9999999999.9999")
MAX_TOTAL = Decimal("999999999999.99")


@dataclass(frozen=True)
class LineTotals:
    line_amount: Decimal  # Quantity x UnitAmount rounded to 2 dp; gross for Inclusive, net otherwise
    tax_amount: Decimal
    net_amount: Decimal


@dataclass(frozen=True)
class InvoiceTotals:
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal


def round_money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(TWO_DP, rounding=ROUND_HALF_UP)


def line_amount(*, quantity: Decimal, unit_amount: Decimal) -> Decimal:
    return round_money(Decimal(quantity) * Decimal(unit_amount))


def line_totals(
    *, quantity: Decimal, unit_amount: Decimal, line_amount_types: str, tax_rate: Decimal = ZERO
) -> LineTotals:
    """One line the way Xero computes it: line amount to 2 dp (half up), tax rounded per line.

    https://developer.xero.com/documentation/api/accounting/invoices (LineAmountTypes)
    """
    if line_amount_types not in LINE_AMOUNT_TYPES:
        raise ValueError(f"Unknown LineAmountTypes {line_amount_types!r}")
    amount = line_amount(quantity=quantity, unit_amount=unit_amount)
    rate = Decimal(tax_rate)
    if line_amount_types == NO_TAX or not rate:
        tax = ZERO
    elif line_amount_types == INCLUSIVE:
        tax = round_money(amount * rate / (HUNDRED + rate))
    else:
        tax = round_money(amount * rate / HUNDRED)
    net = amount - tax if line_amount_types == INCLUSIVE else amount
    return LineTotals(line_amount=amount, tax_amount=tax, net_amount=net)


def invoice_totals(
    lines: Iterable[Any],
    *,
    line_amount_types: str,
    tax_rate: Decimal = ZERO,
    tax_rates: Mapping[str, Decimal] | None = None,
) -> InvoiceTotals:
    """Sum of the lines' Xero-rounded amounts.

    `tax_rate` is the default rate in percent; a line whose `tax_type` is in `tax_rates` uses that rate.
    """
    subtotal = total_tax = ZERO
    for line in lines:
        rate = tax_rate
        override = getattr(line, "tax_type", "") or ""
        if override and tax_rates is not None and override in tax_rates:
            rate = tax_rates[override]
        result = line_totals(
            quantity=line.quantity, unit_amount=line.unit_amount, line_amount_types=line_amount_types, tax_rate=rate
        )
        subtotal += result.net_amount
        total_tax += result.tax_amount
    return InvoiceTotals(subtotal=subtotal, total_tax=total_tax, total=subtotal + total_tax)
