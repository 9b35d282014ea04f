"""People acting on outbound operations: a retry of one that needed attention, recorded in the audit trail."""

from django.db import transaction

from integrations.audit import audit_event_record
from integrations.outbound import engine
from integrations.outbound.models import OutboundOperation
from organisations.models import Organisation


@transaction.atomic
def outbound_operation_retry(*, organisation: Organisation, operation_id: int, actor, as_support: bool) -> bool:
    """Send it again after someone looked (lookups start afresh; the key stays). False if it no longer waited."""
    before = OutboundOperation.objects.select_for_update().get(organisation=organisation, pk=operation_id).state
    operation = engine.operation_retry(organisation_id=organisation.pk, operation_id=operation_id, by=actor)
    retried = before == OutboundOperation.State.NEEDS_ATTENTION and operation.state == OutboundOperation.State.PENDING
    audit_event_record(
        organisation=organisation,
        action="xero_write_retried",
        actor=actor,
        as_support=as_support,
        outcome="success" if retried else "refused",
        detail={"operation_id": operation.pk, "kind": operation.kind, "was": before},
    )
    return retried
