"""The one loop every write to Xero goes through: claim -> decide -> call -> record.

claim   the operation row under select_for_update with a lease; the attempt is counted (and the call about to be
        made is written down) in the same commit, before any call: if the worker dies mid-call, the next claim
        knows that call's outcome is unknown.
decide  from the stored attempts: send (again under the same Idempotency-Key while Xero still remembers it), or,
        when a send's outcome is in doubt and the key's window has passed, look the result up first. A lookup that
        proves absence allows a send (under a new key while Xero still remembers the old one, which would replay
        its answer: a 500 is kept under the key, so it is looked up rather than resent); one that cannot confirm is
        repeated with backoff and, after OUTBOUND_MAX_LOOKUPS, the operation stops in needs_attention. Never a
        resend under a new key without a lookup that proved absence.
call    through the kind's strategy and the endpoint layer (integrations/xero/accounting.py), with the shared
        rate limiter (a refusal is a wait, never a sleep).
record  one OutboundAttempt per call; Xero's answer is checked against what was sent (the kind's `confirm`); the
        verdict of a failure comes from integrations/xero/errors.classify, every wait from its backoff.

Running it twice is harmless: only the lease holder calls, and a finished operation is never claimed again.

This module creates, runs and sweeps operations; claim and decide are integrations/outbound/decide.py, record is
integrations/outbound/record.py.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from coordinoter import queue
from integrations.models import XeroConnection
from integrations.outbound import kinds as k
from integrations.outbound.decide import claim, mark_sending
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult, attention, locked_for, record, record_failure
from integrations.outbound.states import FINAL, operation_move
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroError
from integrations.xero.ratelimit import rate_limiter
from integrations.xero.types import NoRateLimit

logger = logging.getLogger("integrations.outbound")

S = OutboundOperation.State
ACT = OutboundAttempt.Action
OUT = OutboundAttempt.Outcome
IN_DOUBT = (OUT.UNKNOWN, OUT.UNCONFIRMED)


# ---------------------------------------------------------------- creating


def operation_create(
    *,
    organisation_id: int,
    tenant_id: str,
    kind: str,
    payload: dict[str, Any],
    subject_id: int | None = None,
    requested_by: Any = None,
    idempotency_key: str | None = None,
    next_attempt_at: Any = None,
) -> OutboundOperation:
    """Store a write with its payload and Idempotency-Key before any attempt; the caller enqueues it on commit."""
    k.kind_for(kind)  # an unknown kind is a programming error: refuse it before anything is stored
    return OutboundOperation.objects.create(
        organisation_id=organisation_id,
        tenant_id=tenant_id,
        kind=kind,
        subject_id=subject_id,
        payload=payload,
        idempotency_key=idempotency_key or f"coordinoter-{kind}-{uuid.uuid4()}",
        requested_by=requested_by,
        next_attempt_at=next_attempt_at,
    )


def operation_for_key(key: str) -> OutboundOperation | None:
    """The operation stored under this Idempotency-Key, also once its key was renewed (`<key>~n`, record.py)."""
    return (
        OutboundOperation.objects.filter(Q(idempotency_key=key) | Q(idempotency_key__startswith=f"{key}~"))
        .order_by("pk")
        .first()
    )


def operation_enqueue(*, operation_id: int, countdown: float = 0.0) -> None:
    """Run the operation once the current transaction commits (the sweep catches it if the broker is down)."""
    from integrations.outbound.tasks import run_operation

    transaction.on_commit(lambda: _publish(run_operation, operation_id, countdown))


def _publish(task, operation_id: int, countdown: float) -> None:
    try:
        queue.enqueue(task, args=(operation_id,), countdown=countdown, retry=False)
    except Exception:  # noqa: BLE001 - the stored operation is the record; the sweep sends it later
        logger.warning(
            "outbound.enqueue_failed", extra={"event": "outbound.enqueue_failed", "operation_id": operation_id}
        )


@transaction.atomic
def operation_retry(*, organisation_id: int, operation_id: int, by: Any = None) -> OutboundOperation:
    """A person (`by`) retried an operation that needed attention: it starts again with a fresh allowance of lookups,
    under the same key (a lookup decides before any send whose outcome was in doubt); its kind is told."""
    operation = OutboundOperation.objects.select_for_update().get(pk=operation_id, organisation_id=organisation_id)
    if operation.state != S.NEEDS_ATTENTION:
        return operation
    operation_move(operation, S.PENDING)
    operation.lookups, operation.sends, operation.checks, operation.next_attempt_at = 0, 0, 0, timezone.now()
    operation.save(update_fields=["state", "lookups", "sends", "checks", "next_attempt_at"])
    retried = k.kind_for(operation.kind).retried
    if retried is not None:
        retried(operation, by)
    operation_enqueue(operation_id=operation.pk)
    return operation


@transaction.atomic
def operation_withdraw(*, organisation_id: int, operation_id: int, reason: str) -> bool:
    """A person cancelled what the operation was for: it ends refused and is never sent. Only one that needs
    attention (a person was asked to look in Xero) or that has sent nothing can be withdrawn; False otherwise (it is
    being sent, or a send of it may be in Xero). Its kind is not told: the caller is removing its subject."""
    operation = OutboundOperation.objects.select_for_update().get(pk=operation_id, organisation_id=organisation_id)
    if operation.state in FINAL:
        return True
    if operation.state != S.NEEDS_ATTENTION and (operation.state != S.PENDING or operation.sends or operation.lookups):
        return False
    operation_move(operation, S.REFUSED)
    operation.last_error, operation.completed_at = reason[:2000], timezone.now()
    operation.leased_by, operation.lease_until, operation.in_flight = "", None, ""
    operation.save(update_fields=["state", "last_error", "completed_at", "leased_by", "lease_until", "in_flight"])
    logger.info(
        "outbound.withdrawn",
        extra={"event": "outbound.withdrawn", "operation_id": operation.pk, "organisation_id": organisation_id},
    )
    return True


# ---------------------------------------------------------------- running


def operation_run(*, operation_id: int, worker: str | None = None) -> RunResult:
    worker = worker or f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    connection = _usable_connection(operation_id)
    if isinstance(connection, RunResult):
        return connection
    if isinstance(connection, tuple):
        kind, _ = connection
        return kind.run(operation_id=operation_id, worker=worker)
    claimed = claim(operation_id, worker, calling=not isinstance(connection, str))
    if isinstance(claimed, RunResult):
        return claimed
    operation, action = claimed
    kind = k.kind_for(operation.kind)
    if isinstance(connection, str):
        with transaction.atomic():
            locked = locked_for(operation)
            return locked if isinstance(locked, RunResult) else attention(locked, kind, connection)
    # A kind that works without a usable connection makes identity calls with the bare token (the disconnect steps),
    # which were never counted against the tenant's API limits: it needs no limiter (nor its start-up cost).
    limiter = rate_limiter() if kind.requires_usable_connection else NoRateLimit()
    client = XeroClient(connection.pk, rate_limiter=limiter)
    started, clock = timezone.now(), time.monotonic()
    try:
        if action == ACT.CHECK:
            checked = kind.check(client, operation) if kind.check else None
            if checked is None:
                action = ACT.SEND  # nothing against it: the send follows in the same claim
                started, clock = timezone.now(), time.monotonic()
                mark_sending(operation)
                response = kind.send(client, operation)
                verdict: Any = kind.confirm(operation, response)
            else:
                response, verdict = None, checked
        elif action == ACT.SEND:
            response = kind.send(client, operation)
            verdict = kind.confirm(operation, response)
        else:
            response, verdict = None, kind.look_up(client, operation)
    except XeroError as exc:
        return record_failure(operation, kind, action, exc, started, clock)
    return record(operation, kind, action, verdict, response, started, clock)


def _usable_connection(operation_id: int) -> XeroConnection | RunResult | str | tuple[k.Kind, None]:
    """The connection to call through; a RunResult when there is nothing to do now; or, as a string, why the
    operation can never go through this connection (disconnected, revoked, another Xero organisation); or, for a
    kind that runs its own call and record (`Kind.run`), that kind."""
    row = (
        OutboundOperation.objects.filter(pk=operation_id)
        .values("organisation_id", "tenant_id", "state", "kind")
        .first()
    )
    if row is None or row["state"] in FINAL or row["state"] == S.NEEDS_ATTENTION:
        return RunResult("noop")
    kind = k.kind_for(row["kind"])
    if kind.run is not None:
        return kind, None
    connection = XeroConnection.objects.filter(organisation_id=row["organisation_id"]).first()
    if not kind.requires_usable_connection:
        return connection if connection is not None else "The organisation's Xero connection no longer exists."
    if connection is not None and connection.tenant_id == row["tenant_id"]:
        if connection.is_usable:
            return connection
        if connection.status == XeroConnection.Status.NEEDS_RECONNECT:
            # It resumes after the reconnect (the sweep brings it back): nothing is counted meanwhile.
            return RunResult("waiting", detail="Waiting for Xero to be reconnected.")
    if connection is not None and connection.tenant_id and connection.tenant_id != row["tenant_id"]:
        return "The organisation is now connected to another Xero organisation."
    return "Xero is disconnected: reconnect, then retry."


# ---------------------------------------------------------------- the sweep


def operations_sweep(*, limit: int = 500) -> int:
    """Operations due and unclaimed (a lost message, a broker outage, a dead worker's lease): enqueue them again."""
    now = timezone.now()
    # A kind with its own runner has its own sweep (the push's chunks: invoices/services/push/sweep.py).
    operations = OutboundOperation.objects.exclude(kind__in=k.own_runner_kinds())
    due = list(operations.filter(state=S.PENDING, next_attempt_at__lte=now).values_list("pk", flat=True)[:limit])
    due += list(
        operations.filter(
            state=S.PENDING, next_attempt_at__isnull=True, created_at__lte=now - timedelta(seconds=30)
        ).values_list("pk", flat=True)[:limit]
    )
    due += list(operations.filter(state=S.SENDING, lease_until__lt=now).values_list("pk", flat=True)[:limit])
    for operation_id in dict.fromkeys(due):
        _publish_now(operation_id)
    return len(due)


def _publish_now(operation_id: int) -> None:
    from integrations.outbound.tasks import run_operation

    _publish(run_operation, operation_id, 0.0)
