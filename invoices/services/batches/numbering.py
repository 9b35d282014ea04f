"""Invoice numbers: the next free ones to suggest, and which of a batch's numbers are already taken."""

from __future__ import annotations

import re
from collections.abc import Collection

from django.db.models.functions import Lower

from invoices.models import Invoice
from invoices.services.batches.inputs import NUMBER_MAX_LENGTH
from organisations.models import Organisation

_NUMBER = re.compile(r"^(.*?)(\d+)$")


def invoice_numbers_suggest(*, organisation: Organisation, count: int = 1, after: str = "") -> list[str]:
    """The next `count` free invoice numbers, continuing the organisation's latest numbering (INV-0001 first)."""
    if len(after) > NUMBER_MAX_LENGTH:
        after = ""  # not a number we could store: continue from the latest stored one instead
    latest = (
        after
        or (
            Invoice.objects.filter(organisation=organisation)
            .order_by("-created_at", "-pk")
            .values_list("number", flat=True)
            .first()
        )
        or "INV-0000"
    )
    match = _NUMBER.match(latest)
    prefix, digits = (match.group(1), match.group(2)) if match else (f"{latest}-", "0000")
    taken = (
        {
            n.lower()
            for n in Invoice.objects.filter(organisation=organisation, number__istartswith=prefix).values_list(
                "number", flat=True
            )
        }
        if prefix
        else set()
    )
    out: list[str] = []
    value = int(digits)
    while len(out) < count:
        value += 1
        candidate = f"{prefix}{value:0{len(digits)}d}"
        if not prefix and Invoice.objects.filter(organisation=organisation, number__iexact=candidate).exists():
            continue
        if candidate.lower() not in taken:
            out.append(candidate)
    return out


def _taken_numbers(
    *, organisation: Organisation, numbers: list[str], existing: Collection[int] = (), model=Invoice
) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        taken.update(
            model.objects.filter(organisation=organisation)
            .exclude(pk__in=existing)
            .annotate(lowered=Lower("number"))
            .filter(lowered__in=chunk)
            .values_list("lowered", flat=True)
        )
    return taken
