"""Applying a Xero contact to the customer behind it: its name and email, if newer."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from integrations.webhooks.fetch import ApplyOutcome
from invoices.created_in_xero.models import XeroContactVersion
from invoices.models import Customer, customer_name_key
from invoices.services.apply.reading import _fmt, xero_updated_at

logger = logging.getLogger("invoices.apply")


def contacts_apply_from_xero(
    *, organisation_id: int, resources: Sequence[Mapping[str, Any]], source: str
) -> list[ApplyOutcome]:
    return [contact_apply_from_xero(organisation_id=organisation_id, data=data, source=source) for data in resources]


@transaction.atomic
def contact_apply_from_xero(*, organisation_id: int, data: Mapping[str, Any], source: str) -> ApplyOutcome:
    """A Xero contact behind one of our customers: its name and email update the customer, if newer."""
    contact_id = str(data.get("ContactID") or "")
    customer = (
        (
            Customer.objects.select_for_update()
            .filter(organisation_id=organisation_id, xero_contact_id=contact_id)
            .first()
        )
        if contact_id
        else None
    )
    if customer is None:
        return ApplyOutcome(resource_id=contact_id, outcome="not_ours", label=str(data.get("Name") or ""))
    updated_at = xero_updated_at(data)
    if updated_at is None:
        return ApplyOutcome(resource_id=contact_id, outcome="ignored", label=customer.name)
    version, created = XeroContactVersion.objects.select_for_update().get_or_create(
        organisation_id=organisation_id, xero_contact_id=contact_id, defaults={"xero_updated_at": updated_at}
    )
    if not created and updated_at <= version.xero_updated_at:
        outcome = "unchanged" if updated_at == version.xero_updated_at else "stale"
        return ApplyOutcome(resource_id=contact_id, outcome=outcome, label=customer.name)
    if not created:
        version.xero_updated_at = updated_at
        version.save(update_fields=["xero_updated_at"])
    changes: dict[str, tuple[str, str]] = {}
    notes = []
    name = str(data.get("Name") or "").strip()[:255]
    if name and name != customer.name:
        clash = (
            Customer.objects.filter(organisation_id=organisation_id, name_key=customer_name_key(name))
            .exclude(pk=customer.pk)
            .exists()
        )
        if clash:
            notes.append(f"name {name!r} is another customer's; kept {customer.name!r}")
        else:
            changes["name"] = (customer.name, name)
    email = str(data.get("EmailAddress") or "").strip()[:254]
    if "EmailAddress" in data and email != customer.email:
        changes["email"] = (customer.email, email)
    if not changes:
        return ApplyOutcome(resource_id=contact_id, outcome="unchanged", label=customer.name, summary="; ".join(notes))
    for field, (_before, after) in changes.items():
        setattr(customer, field, after)
    customer.save(update_fields=[*changes, "updated_at"])
    summary = ", ".join(f"{field} {_fmt(b)} → {_fmt(a)}" for field, (b, a) in changes.items())
    logger.info(
        "invoices.xero.contact_applied",
        extra={
            "event": "invoices.xero.contact_applied",
            "organisation_id": organisation_id,
            "customer_id": customer.pk,
            "fields": sorted(changes),
            "via": source,
        },
    )
    return ApplyOutcome(
        resource_id=contact_id,
        outcome="applied",
        label=customer.name,
        summary="contact changed in Xero: " + summary + (f" ({'; '.join(notes)})" if notes else ""),
    )
