"""What the outbound engine shows people: operations that need attention, and each one's latest calls."""

from django.db.models import Prefetch, QuerySet

from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.states import FINAL
from organisations.models import Organisation

KIND_LABELS = {
    "invoice_change": "Invoice edit, void or delete",
    "invoice_chunk": "Invoices sent together (up to 50 in one request)",
    "contacts_create": "Contacts created before invoices",
    "disconnect_delete_connection": "Disconnect: remove the connection in Xero",
    "disconnect_revoke_token": "Disconnect: revoke the refresh token",
    "credit_note_create": "Credit note",
    "credit_note_allocate": "Credit note allocated to an invoice",
}


def operations_needing_attention(organisation: Organisation) -> QuerySet[OutboundOperation]:
    """The organisation's writes whose result Xero could not confirm, newest first, with their last five calls."""
    return (
        OutboundOperation.objects.filter(organisation=organisation, state=OutboundOperation.State.NEEDS_ATTENTION)
        .order_by("-completed_at", "-pk")
        .prefetch_related(
            Prefetch(
                "outbound_attempts",
                queryset=OutboundAttempt.objects.order_by("-started_at", "-pk"),
                to_attr="attempts_newest_first",
            )
        )
    )


def operation_for(organisation: Organisation, operation_id: int) -> OutboundOperation:
    """One of the organisation's operations; another organisation's id raises DoesNotExist (a 404)."""
    return OutboundOperation.objects.get(organisation=organisation, pk=operation_id)


def operation_latest(
    *, organisation_id: int, kind: str, subject_id: int, unfinished: bool = False
) -> OutboundOperation | None:
    """The newest operation of this kind about this subject (a credit note, an allocation, a connection), or None;
    `unfinished` leaves out the ones in a final state (done, refused)."""
    operations = OutboundOperation.objects.filter(organisation_id=organisation_id, kind=kind, subject_id=subject_id)
    if unfinished:
        operations = operations.exclude(state__in=FINAL)
    return operations.order_by("-pk").first()


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))
