"""The one loop every write to Xero goes through: claim -> decide -> call -> record.

claim   the operation row under select_for_update with a lease; the attempt is counted (and the call about to be
        made is written down) in the same commit, before any call: if the worker dies mid-call, the next claim
        knows that call's outcome is unknown.
decide  from the stored attempts: send (again under the same Idempotency-Key while Xero still remembers it), or,
        when a send's outcome is in doubt and the key's window has passed, look the result up first. A lookup that
        proves absence allows a send; one that cannot confirm is repeated with backoff and, after
        OUTBOUND_MAX_LOOKUPS, the operation stops in needs_attention. Never a resend under a new key.
call    through the kind's strategy and the endpoint layer (integrations/xero/accounting.py), with the shared
        rate limiter (a refusal is a wait, never a sleep).
record  one OutboundAttempt per call; Xero's answer is checked against what was sent (the kind's `confirm`); the
        verdict of a failure comes from integrations/xero/errors.classify, every wait from its backoff.

Running it twice is harmless: only the lease holder calls, and a finished operation is never claimed again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from coordinoter import queue
from integrations.models import XeroConnection
from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.states import FINAL, operation_move
from integrations.xero.client import XeroClient
from integrations.xero.errors import Failed, Refused, Retry, WaitForConnection, backoff_seconds, classify
from integrations.xero.exceptions import XeroError
from integrations.xero.ratelimit import rate_limiter
from integrations.xero.types import NoRateLimit

logger = logging.getLogger("integrations.outbound")

S = OutboundOperation.State
ACT = OutboundAttempt.Action
OUT = OutboundAttempt.Outcome
IN_DOUBT = (OUT.UNKNOWN, OUT.UNCONFIRMED)


@dataclass(frozen=True)
class RunResult:
    state: str
    retry_in: float | None = None  # the task should run again after this many seconds
    detail: str = ""


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
    operation.lookups, operation.sends, operation.next_attempt_at = 0, 0, timezone.now()
    operation.save(update_fields=["state", "lookups", "sends", "next_attempt_at"])
    retried = k.kind_for(operation.kind).retried
    if retried is not None:
        retried(operation, by)
    operation_enqueue(operation_id=operation.pk)
    return operation


# ---------------------------------------------------------------- running


def operation_run(*, operation_id: int, worker: str | None = None) -> RunResult:
    worker = worker or f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    connection = _usable_connection(operation_id)
    if isinstance(connection, RunResult):
        return connection
    claimed = _claim(operation_id, worker)
    if isinstance(claimed, RunResult):
        return claimed
    operation, action = claimed
    kind = k.kind_for(operation.kind)
    if isinstance(connection, str):
        with transaction.atomic():
            locked = _locked_for(operation)
            return locked if isinstance(locked, RunResult) else _attention(locked, kind, connection)
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
                _mark_sending(operation)
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
        return _record_failure(operation, kind, action, exc, started, clock)
    return _record(operation, kind, action, verdict, response, started, clock)


def _usable_connection(operation_id: int) -> XeroConnection | RunResult | str:
    """The connection to call through; a RunResult when there is nothing to do now; or, as a string, why the
    operation can never go through this connection (disconnected, revoked, another Xero organisation)."""
    row = (
        OutboundOperation.objects.filter(pk=operation_id)
        .values("organisation_id", "tenant_id", "state", "kind")
        .first()
    )
    if row is None or row["state"] in FINAL or row["state"] == S.NEEDS_ATTENTION:
        return RunResult("noop")
    connection = XeroConnection.objects.filter(organisation_id=row["organisation_id"]).first()
    if not k.kind_for(row["kind"]).requires_usable_connection:
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


def _claim(operation_id: int, worker: str) -> tuple[OutboundOperation, str] | RunResult:
    with transaction.atomic():
        operation = OutboundOperation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.state in FINAL or operation.state == S.NEEDS_ATTENTION:
            return RunResult("noop")
        now = timezone.now()
        if operation.state == S.SENDING:
            if operation.lease_until and operation.lease_until > now:
                return RunResult("busy", detail=operation.leased_by)
            if operation.in_flight:
                # The previous holder died mid-call: that call's outcome is unknown.
                OutboundAttempt.objects.create(
                    operation=operation,
                    action=operation.in_flight,
                    outcome=OUT.UNKNOWN,
                    started_at=now,
                    detail=f"lost: worker {operation.leased_by} stopped before recording its call",
                )
        elif operation.next_attempt_at and operation.next_attempt_at > now + timedelta(milliseconds=50):
            return RunResult("early", retry_in=(operation.next_attempt_at - now).total_seconds())
        action = _decide(operation, now)
        operation_move(operation, S.SENDING)
        operation.leased_by = worker[:100]
        operation.lease_until = now + timedelta(seconds=settings.OUTBOUND_LEASE_SECONDS)
        operation.attempts += 1
        operation.in_flight = action
        fields = ["state", "leased_by", "lease_until", "attempts", "in_flight"]
        if action == ACT.SEND:
            fields += _count_send(operation, now)
        elif action == ACT.LOOKUP:
            operation.lookups += 1
            fields.append("lookups")
        operation.save(update_fields=fields)
        return operation, action


def _count_send(operation: OutboundOperation, now) -> list[str]:
    operation.sends += 1
    fields = ["sends"]
    if operation.key_first_sent_at is None:
        operation.key_first_sent_at = now
        fields.append("key_first_sent_at")
    return fields


def _mark_sending(operation: OutboundOperation) -> None:
    """A check that found nothing against the write turns into its send: count it as one, before the call."""
    with transaction.atomic():
        locked = OutboundOperation.objects.select_for_update().get(pk=operation.pk)
        locked.in_flight = ACT.SEND
        fields = ["in_flight", *_count_send(locked, timezone.now())]
        locked.save(update_fields=fields)
        operation.in_flight, operation.sends, operation.key_first_sent_at = (
            locked.in_flight,
            locked.sends,
            locked.key_first_sent_at,
        )


def _decide(operation: OutboundOperation, now) -> str:
    """Which call this claim makes, from the stored attempts (newest first)."""
    history = list(
        operation.outbound_attempts.exclude(action=ACT.CHECK)
        .order_by("-started_at", "-pk")
        .values_list("action", "outcome")[:50]
    )
    in_doubt = False
    for action, outcome in history:
        if action == ACT.LOOKUP and outcome == OUT.ABSENT:
            break  # proved absent since: a send is safe
        if action == ACT.LOOKUP and outcome in (OUT.UNCONFIRMED, OUT.RETRY, OUT.UNKNOWN, OUT.FAILED):
            return ACT.LOOKUP  # still finding out
        if action == ACT.SEND and outcome == OUT.UNCONFIRMED:
            return ACT.LOOKUP  # a resend under the same key would only replay that answer
        if action == ACT.SEND and outcome == OUT.UNKNOWN:
            in_doubt = True
            break
    if in_doubt:
        return ACT.SEND if _window_open(operation, now) else ACT.LOOKUP
    if not history:
        return ACT.CHECK
    return ACT.SEND


def _window_open(operation: OutboundOperation, now) -> bool:
    """Does Xero still remember the key? Measured from our first send, which is before Xero saw it."""
    if operation.key_first_sent_at is None:
        return True
    window = settings.XERO_IDEMPOTENCY_WINDOW_SECONDS * 11 / 12
    return now < operation.key_first_sent_at + timedelta(seconds=window)


# ---------------------------------------------------------------- recording


def _attempt(operation, action, outcome, started, clock, *, status=None, correlation_id="", detail="") -> None:
    OutboundAttempt.objects.create(
        operation=operation,
        action=action,
        outcome=outcome,
        http_status=status,
        duration_ms=max(0, int((time.monotonic() - clock) * 1000)),
        correlation_id=(correlation_id or "")[:64],
        detail=str(detail)[:2000],
        started_at=started,
    )


def _record(operation, kind: k.Kind, action, verdict, response, started, clock) -> RunResult:
    status = response.status if response is not None else None
    correlation_id = response.correlation_id if response is not None else ""
    with transaction.atomic():
        operation = _locked_for(operation)
        if isinstance(operation, RunResult):
            return operation
        if isinstance(verdict, k.Confirmed):
            _attempt(operation, action, OUT.CONFIRMED, started, clock, status=status, correlation_id=correlation_id)
            outcome = k.Outcome("done", result=verdict.result, correlation_id=correlation_id)
            return _end(operation, kind, S.DONE, outcome)
        if isinstance(verdict, k.Declined):
            _attempt(
                operation, action, OUT.REFUSED, started, clock, status=status, correlation_id=correlation_id,
                detail=verdict.message,
            )  # fmt: skip
            outcome = k.Outcome(
                "refused",
                message=verdict.message,
                result=verdict.result,
                conflict=verdict.conflict,
                correlation_id=correlation_id,
            )
            return _end(operation, kind, S.REFUSED, outcome)
        if isinstance(verdict, k.Absent):
            _attempt(operation, action, OUT.ABSENT, started, clock, status=status, correlation_id=correlation_id)
            return _later(operation, 0.0, "not in Xero: sending")
        # Unconfirmed: Xero answered, but not with what was sent.
        _attempt(
            operation, action, OUT.UNCONFIRMED, started, clock, status=status, correlation_id=correlation_id,
            detail=verdict.reason,
        )  # fmt: skip
        operation.last_answer = verdict.answer
        operation.correlation_id = correlation_id or operation.correlation_id
        return _look_again_or_stop(operation, kind, verdict.reason)


def _record_failure(operation, kind: k.Kind, action, exc: XeroError, started, clock) -> RunResult:
    verdict = classify(exc, attempt=operation.sends if action == ACT.SEND else operation.lookups)
    with transaction.atomic():
        operation = _locked_for(operation)
        if isinstance(operation, RunResult):
            return operation
        status = getattr(exc, "status", None)
        correlation_id = getattr(exc, "correlation_id", "")
        operation.correlation_id = correlation_id or operation.correlation_id
        if isinstance(verdict, Retry):
            unknown = verdict.outcome_unknown and action == ACT.SEND
            outcome = OUT.UNKNOWN if unknown else OUT.RETRY
            _attempt(
                operation, action, outcome, started, clock, status=status, correlation_id=correlation_id,
                detail=verdict.reason,
            )  # fmt: skip
            if verdict.rate_limited:
                return _later(operation, verdict.after, "rate limited")
            if action == ACT.LOOKUP:
                return _look_again_or_stop(operation, kind, verdict.reason)
            if operation.sends >= settings.OUTBOUND_MAX_SENDS:
                return _attention(operation, kind, f"Xero did not answer after {operation.sends} tries: {exc}")
            return _later(operation, verdict.after, verdict.reason)
        if isinstance(verdict, WaitForConnection) and not kind.requires_usable_connection:
            # Nothing to wait for: no reconnect revives the grant such a kind works with.
            _attempt(operation, action, OUT.REFUSED, started, clock, status=status, detail=verdict.reason)
            return _end(operation, kind, S.REFUSED, k.Outcome("refused", message=verdict.reason))
        if isinstance(verdict, WaitForConnection):
            _attempt(operation, action, OUT.WAITING, started, clock, status=status, detail=verdict.reason)
            kind.finish(operation, k.Outcome("waiting", message=verdict.reason))
            return _later(operation, settings.OUTBOUND_SWEEP_SECONDS, verdict.reason, enqueue=False)
        if isinstance(verdict, Refused) and action == ACT.SEND:
            _attempt(
                operation, action, OUT.REFUSED, started, clock, status=status, correlation_id=correlation_id,
                detail=verdict.message,
            )  # fmt: skip
            result = verdict.elements[0] if verdict.elements else {}
            outcome = k.Outcome("refused", message=verdict.message, result=result, correlation_id=correlation_id)
            return _end(operation, kind, S.REFUSED, outcome)
        message = verdict.message if isinstance(verdict, Refused | Failed) else str(exc)
        _attempt(
            operation, action, OUT.FAILED, started, clock, status=status, correlation_id=correlation_id,
            detail=message,
        )  # fmt: skip
        return _attention(operation, kind, message)


def _locked_for(operation: OutboundOperation) -> OutboundOperation | RunResult:
    """The row again under its lock; still ours only if our lease was not taken over meanwhile."""
    locked = OutboundOperation.objects.select_for_update().get(pk=operation.pk)
    if locked.state != S.SENDING or locked.leased_by != operation.leased_by:
        return RunResult("lost_lease", detail=locked.leased_by)
    return locked


def _release(operation: OutboundOperation) -> list[str]:
    operation.leased_by, operation.lease_until, operation.in_flight = "", None, ""
    return ["leased_by", "lease_until", "in_flight"]


def _later(operation, seconds: float, reason: str, *, enqueue: bool = True) -> RunResult:
    operation_move(operation, S.PENDING)
    operation.next_attempt_at = timezone.now() + timedelta(seconds=seconds)
    operation.last_error = reason[:2000]
    fields = ["state", "next_attempt_at", "last_error", "correlation_id", "last_answer", *_release(operation)]
    operation.save(update_fields=fields)
    logger.info(
        "outbound.retry",
        extra={
            "event": "outbound.retry",
            "operation_id": operation.pk,
            "kind": operation.kind,
            "organisation_id": operation.organisation_id,
            "tenant_id": operation.tenant_id,
            "retry_in": round(seconds, 3),
            "reason": reason[:200],
        },
    )
    return RunResult(S.PENDING, retry_in=seconds if enqueue else None, detail=reason)


def _look_again_or_stop(operation, kind: k.Kind, reason: str) -> RunResult:
    if operation.lookups >= settings.OUTBOUND_MAX_LOOKUPS:
        return _attention(
            operation, kind, f"Xero's answer could not be confirmed after {operation.lookups} lookups: {reason}"
        )
    return _later(operation, backoff_seconds(operation.lookups + 1), reason)


def _attention(operation, kind: k.Kind, message: str) -> RunResult:
    outcome = k.Outcome("needs_attention", message=message, result=operation.last_answer)
    return _end(operation, kind, S.NEEDS_ATTENTION, outcome)


def _end(operation, kind: k.Kind, state: str, outcome: k.Outcome) -> RunResult:
    operation_move(operation, state)
    operation.last_error = outcome.message[:2000]
    operation.correlation_id = outcome.correlation_id or operation.correlation_id
    operation.completed_at = timezone.now()
    if state == S.NEEDS_ATTENTION and outcome.result:
        operation.last_answer = outcome.result
    fields = ["state", "last_error", "correlation_id", "completed_at", "last_answer", *_release(operation)]
    operation.save(update_fields=fields)
    kind.finish(operation, outcome)
    logger.info(
        f"outbound.{state}",
        extra={
            "event": f"outbound.{state}",
            "operation_id": operation.pk,
            "kind": operation.kind,
            "organisation_id": operation.organisation_id,
            "tenant_id": operation.tenant_id,
            "correlation_id": operation.correlation_id,
        },
    )
    return RunResult(state, detail=outcome.message)


# ---------------------------------------------------------------- the sweep


def operations_sweep(*, limit: int = 500) -> int:
    """Operations due and unclaimed (a lost message, a broker outage, a dead worker's lease): enqueue them again."""
    now = timezone.now()
    due = list(
        OutboundOperation.objects.filter(state=S.PENDING, next_attempt_at__lte=now).values_list("pk", flat=True)[:limit]
    )
    due += list(
        OutboundOperation.objects.filter(
            state=S.PENDING, next_attempt_at__isnull=True, created_at__lte=now - timedelta(seconds=30)
        ).values_list("pk", flat=True)[:limit]
    )
    due += list(
        OutboundOperation.objects.filter(state=S.SENDING, lease_until__lt=now).values_list("pk", flat=True)[:limit]
    )
    for operation_id in dict.fromkeys(due):
        _publish_now(operation_id)
    return len(due)


def _publish_now(operation_id: int) -> None:
    from integrations.outbound.tasks import run_operation

    _publish(run_operation, operation_id, 0.0)
