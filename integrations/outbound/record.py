"""Record, the last half of the engine's loop (integrations/outbound/engine.py): one OutboundAttempt per call,
Xero's answer checked against what was sent (the kind's `confirm`), the verdict of a failure from
integrations/xero/errors.classify and every wait from its backoff; then the operation waits, is looked up again,
ends (done, refused) or stops in needs_attention, and its kind is told. `RunResult` says what a run did."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.states import operation_move
from integrations.xero.errors import (
    Failed,
    Refused,
    Retry,
    WaitForConnection,
    backoff_seconds,
    classify,
    key_remembered,
)
from integrations.xero.exceptions import XeroAuthError, XeroError, XeroNotConnected

logger = logging.getLogger("integrations.outbound")

S = OutboundOperation.State
ACT = OutboundAttempt.Action
OUT = OutboundAttempt.Outcome


@dataclass(frozen=True)
class RunResult:
    state: str
    retry_in: float | None = None  # the task should run again after this many seconds
    detail: str = ""


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


def record(operation, kind: k.Kind, action, verdict, response, started, clock) -> RunResult:
    status = response.status if response is not None else None
    correlation_id = response.correlation_id if response is not None else ""
    with transaction.atomic():
        operation = locked_for(operation)
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
            fresh = _resend_ready(operation)
            _attempt(
                operation, action, OUT.ABSENT, started, clock, status=status, correlation_id=correlation_id,
                detail=RENEWED if fresh.new_key else "",
            )  # fmt: skip
            return _later(operation, 0.0, "not in Xero: sending", fields=fresh.fields)
        # Unconfirmed: Xero answered, but not with what was sent.
        _attempt(
            operation, action, OUT.UNCONFIRMED, started, clock, status=status, correlation_id=correlation_id,
            detail=verdict.reason,
        )  # fmt: skip
        operation.last_answer = verdict.answer
        operation.correlation_id = correlation_id or operation.correlation_id
        return _look_again_or_stop(operation, kind, verdict.reason)


def record_failure(operation, kind: k.Kind, action, exc: XeroError, started, clock) -> RunResult:
    tries = {ACT.SEND: operation.sends, ACT.LOOKUP: operation.lookups, ACT.CHECK: operation.checks}[action]
    verdict = classify(exc, attempt=tries)
    with transaction.atomic():
        operation = locked_for(operation)
        if isinstance(operation, RunResult):
            return operation
        status = getattr(exc, "status", None)
        correlation_id = getattr(exc, "correlation_id", "")
        operation.correlation_id = correlation_id or operation.correlation_id
        if isinstance(exc, XeroNotConnected | XeroAuthError) and not kind.requires_usable_connection:
            # A kind that calls with the bare grant (the disconnect steps): nothing to wait or retry for, since no
            # reconnect revives that grant.
            _attempt(operation, action, OUT.REFUSED, started, clock, status=status, detail=str(exc))
            return _end(operation, kind, S.REFUSED, k.Outcome("refused", message=str(exc)))
        if isinstance(verdict, Retry) and verdict.answer_cached and action == ACT.SEND:
            # Xero keeps this answer under the key: a resend would replay it. Look the result up next (an answer
            # that did not confirm the write), with the lookups' backoff and bound.
            _attempt(
                operation, action, OUT.UNCONFIRMED, started, clock, status=status, correlation_id=correlation_id,
                detail=verdict.reason,
            )  # fmt: skip
            return _look_again_or_stop(operation, kind, verdict.reason)
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
            if tries >= settings.OUTBOUND_MAX_SENDS:
                # A send, or the check before it (nothing sent yet), that Xero keeps not answering or refusing.
                what = "" if action == ACT.SEND else " the check before sending (nothing was sent)"
                if verdict.refused:
                    return attention(operation, kind, f"Xero refused it{what} {tries} times: {exc}")
                return attention(operation, kind, f"Xero did not answer{what} after {tries} tries: {exc}")
            return _later(operation, verdict.after, verdict.reason)
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
        return attention(operation, kind, message)


def locked_for(operation: OutboundOperation) -> OutboundOperation | RunResult:
    """The row again under its lock; still ours only if our lease was not taken over meanwhile."""
    locked = OutboundOperation.objects.select_for_update().get(pk=operation.pk)
    if locked.state != S.SENDING or locked.leased_by != operation.leased_by:
        return RunResult("lost_lease", detail=locked.leased_by)
    return locked


def _release(operation: OutboundOperation) -> list[str]:
    operation.leased_by, operation.lease_until, operation.in_flight = "", None, ""
    return ["leased_by", "lease_until", "in_flight"]


def _later(operation, seconds: float, reason: str, *, enqueue: bool = True, fields: tuple[str, ...] = ()) -> RunResult:
    operation_move(operation, S.PENDING)
    operation.next_attempt_at = timezone.now() + timedelta(seconds=seconds)
    operation.last_error = reason[:2000]
    fields = ["state", "next_attempt_at", "last_error", "correlation_id", "last_answer", *_release(operation), *fields]
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


RENEWED = "Xero still holds its answer under the old key: sending under a new one"


@dataclass(frozen=True)
class _Resend:
    new_key: bool  # the key changed (Xero still remembers the old one); otherwise only its window starts afresh
    fields: tuple[str, ...]  # what changed on the operation, to save


def _resend_ready(operation: OutboundOperation) -> _Resend:
    """A lookup proved Xero holds nothing of this write: make the next send a first send. While Xero still remembers
    the key it would replay its answer (a 500, or one that did not match) to a send under it, so the next send goes
    under a new key, derived from the first (`<first key>~<claims so far>`, at most 128 characters; claims are never
    reset, so a renewal after a person's retry is new too, and `engine.operation_for_key` still finds the operation by
    its first key). Past the window Xero has forgotten the key and it is kept; the next send under it is a first send
    again, so its window starts afresh (that send's own 500 would be kept, and replayed, for six minutes from then)."""
    if operation.key_first_sent_at is None:
        return _Resend(new_key=False, fields=())
    remembered = key_remembered(operation.key_first_sent_at, timezone.now())
    operation.key_first_sent_at = None
    if not remembered:
        return _Resend(new_key=False, fields=("key_first_sent_at",))
    first = operation.idempotency_key.split("~", 1)[0]
    operation.idempotency_key = f"{first[:112]}~{operation.attempts}"
    return _Resend(new_key=True, fields=("idempotency_key", "key_first_sent_at"))


def _look_again_or_stop(operation, kind: k.Kind, reason: str) -> RunResult:
    if operation.lookups >= settings.OUTBOUND_MAX_LOOKUPS:
        return attention(
            operation, kind, f"Xero's answer could not be confirmed after {operation.lookups} lookups: {reason}"
        )
    return _later(operation, backoff_seconds(operation.lookups + 1), reason)


def attention(operation, kind: k.Kind, message: str) -> RunResult:
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
