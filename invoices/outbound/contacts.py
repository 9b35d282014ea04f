"""The outbound engine's strategy for contact creates (kind `contacts_create`), made by
invoices/services/push/contacts.py before the invoices that need them go: confirmed by each contact's ContactNumber
(our customer id) and ContactID in Xero's answer, looked up by ContactNumber when an answer was lost."""

from __future__ import annotations

from typing import Any

from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundOperation
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.errors import validation_messages
from integrations.xero.types import XeroResponse

CONTACTS_CREATE = "contacts_create"


def _numbers(operation: OutboundOperation) -> list[str]:
    return [str(c.get("ContactNumber") or "") for c in operation.payload.get("Contacts") or []]


def _answers_by_number(operation: OutboundOperation, elements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Xero's element for each contact we sent, matched by ContactNumber (our customer id)."""
    by_number = {str(e.get("ContactNumber") or ""): e for e in elements if e.get("ContactNumber")}
    numbers = _numbers(operation)
    if not by_number and len(elements) == len(numbers):
        by_number = dict(zip(numbers, elements, strict=True))  # an answer without numbers, in the order sent
    return {n: by_number[n] for n in numbers if n in by_number}


def _contacts_send(client: XeroClient, operation: OutboundOperation) -> XeroResponse:
    return accounting.contacts_post(
        client, contacts=operation.payload["Contacts"], idempotency_key=operation.idempotency_key
    )


def _contacts_confirm(operation: OutboundOperation, response: XeroResponse) -> k.Confirmation:
    elements = accounting.items(response, "Contacts")
    answers = _answers_by_number(operation, elements)
    missing = [n for n in _numbers(operation) if n not in answers]
    unanswered = [n for n, e in answers.items() if not e.get("ContactID") and not validation_messages([e])]
    if missing or unanswered:
        return k.Unconfirmed(
            f"Xero's answer does not account for contacts {', '.join((missing + unanswered)[:10])}",
            answer={"Contacts": elements[:50]},
        )
    return k.Confirmed({"Contacts": list(answers.values())})


def _contacts_look_up(client: XeroClient, operation: OutboundOperation) -> k.Lookup:
    from invoices.services.push.contacts import CONTACT_NUMBER_CLAUSE

    numbers = _numbers(operation)
    where = " OR ".join(CONTACT_NUMBER_CLAUSE.format(n) for n in numbers)
    response = accounting.contacts_get(client, where=where, summary_only=True)
    found = _answers_by_number(operation, accounting.items(response, "Contacts"))
    if len(found) == len(numbers):
        return k.Confirmed({"Contacts": list(found.values())})
    if not found:
        return k.Absent()
    return k.Unconfirmed(f"{len(found)} of {len(numbers)} contacts found", answer={"Contacts": list(found.values())})


def _contacts_finish(operation: OutboundOperation, outcome: k.Outcome) -> None:
    from invoices.services.push.contacts import contact_created, contact_failed

    if outcome.state == "waiting":
        return
    answers = _answers_by_number(operation, list((outcome.result or {}).get("Contacts") or []))
    for number in _numbers(operation):
        element = answers.get(number) if outcome.state == "done" else None
        if element is not None and element.get("ContactID") and not validation_messages([element]):
            contact_created(
                organisation_id=operation.organisation_id,
                tenant_id=operation.tenant_id,
                number=number,
                contact_id=element["ContactID"],
            )
        elif element is not None:
            errors = validation_messages([element])
            contact_failed(organisation_id=operation.organisation_id, number=number, errors=errors)
        else:
            contact_failed(
                organisation_id=operation.organisation_id,
                number=number,
                errors=[outcome.message or "Xero did not return the contact."],
                needs_attention=outcome.state == "needs_attention",
            )


def register() -> None:
    k.register_kind(
        k.Kind(
            name=CONTACTS_CREATE,
            send=_contacts_send,
            confirm=_contacts_confirm,
            look_up=_contacts_look_up,
            finish=_contacts_finish,
        )
    )


__all__ = ["CONTACTS_CREATE", "register"]
