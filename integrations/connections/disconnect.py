"""Disconnect: at once in Coordinoter (new batches stop syncing), then in Xero. The two Xero calls are outbound
operations run by the one engine (integrations/outbound/), so they get attempt rows, the one error classifier and
backoff, and bounded retries that end in needs_attention (the support console shows them, with a retry):

    disconnect_step: delete_connection -> revoke_token -> clear_tokens -> ""     (the progress people see)
    kinds:           disconnect_delete_connection    DELETE /connections/{id}     (404: already gone = confirmed)
                     disconnect_revoke_token         POST the revocation endpoint (idempotent: a resend is its lookup)

Each step's operation is created in the transaction that enters the step, and its `finish` enters the next step in
the transaction that ends it, so the step and its operation never disagree. A step with nothing to do in Xero (no
connection id, a connection id or a Xero user another organisation relies on, no refresh token) is skipped with an
audit event; clear_tokens needs no call and is done on entry.

`xero_connection_disconnect_continue` drives the steps inline (the request's first attempt, a person's retry):
while it drives, `finish` leaves the next step to it; run by the engine's task, `finish` queues the next step's
operation. Tokens are read through tokens.py when each call is made and are never stored in a payload.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.states import connection_move
from integrations.connections.types import DISCONNECT_DELETE_CONNECTION, DISCONNECT_REVOKE_TOKEN, ActionResult
from integrations.models import IntegrationAuditEvent, XeroConnection
from integrations.outbound import engine
from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundOperation
from integrations.outbound.selectors import operation_latest
from integrations.registry import connection_event_emit
from integrations.selectors import xero_connection_ids_in_use, xero_user_connected_elsewhere
from integrations.xero import client as xero_http
from integrations.xero import oauth, tokens
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroOAuthError, XeroRequestError
from integrations.xero.types import XeroResponse
from organisations.models import Organisation

S = XeroConnection.Status
Step = XeroConnection.DisconnectStep
OP = OutboundOperation.State
Outcome = IntegrationAuditEvent.Outcome

DELETE_CONNECTION = DISCONNECT_DELETE_CONNECTION
REVOKE_TOKEN = DISCONNECT_REVOKE_TOKEN
KIND_OF_STEP = {Step.DELETE_CONNECTION: DELETE_CONNECTION, Step.REVOKE_TOKEN: REVOKE_TOKEN}
STEP_OF_KIND = {kind: step for step, kind in KIND_OF_STEP.items()}
NEXT_STEP = {Step.DELETE_CONNECTION: Step.REVOKE_TOKEN, Step.REVOKE_TOKEN: Step.CLEAR_TOKENS}


@dataclass(frozen=True)
class _Driver:
    """Who is driving the steps inline in this thread (their audit events name them)."""

    actor: AbstractBaseUser | None
    as_support: bool


_driving: contextvars.ContextVar[_Driver | None] = contextvars.ContextVar("disconnect_driving", default=None)


# ---------------------------------------------------------------- the service


def xero_connection_disconnect(
    *, organisation: Organisation, actor: AbstractBaseUser | None, as_support: bool = False, reason: str = ""
) -> ActionResult:
    """Disconnect at once in Coordinoter, then in Xero: the first attempt is made in the request, later ones by the
    engine after its backoff. Asked again while a step is pending, it tries that step now (a person's retry)."""
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().filter(organisation=organisation).first()
        if connection is None or (
            connection.status in (S.NOT_CONNECTED, S.DISCONNECTED) and not connection.disconnect_step
        ):
            return ActionResult(False, "Xero is not connected, so there is nothing to disconnect.")
        if not connection.disconnect_step:
            previous = connection.status
            now = timezone.now()
            moved = connection_move(connection, S.DISCONNECTED, at=now)
            connection.disconnected_at = now
            connection.disconnected_by = actor
            connection.needs_reconnect_reason = ""
            connection.reconnect_requested_at = None
            connection.reconnect_requested_reason = ""
            connection.save(
                update_fields=[
                    *moved,
                    "disconnected_at",
                    "disconnected_by",
                    "needs_reconnect_reason",
                    "reconnect_requested_at",
                    "reconnect_requested_reason",
                    "updated_at",
                ]
            )
            audit = {"actor": actor, "as_support": as_support}
            audit_event_record(
                organisation=organisation,
                **audit,
                action="disconnect_requested",
                detail={
                    "previous_status": previous,
                    "tenant_id": connection.tenant_id,
                    "tenant_name": connection.tenant_name,
                    "reason": reason[:255],
                },
            )
            connection_event_emit(organisation_id=organisation.pk, event="disconnected")
            if as_support:  # the admins learn it from us, with support's reason
                from integrations.services.connection import _enqueue_notify

                connection_id = connection.pk
                transaction.on_commit(lambda: _enqueue_notify(connection_id, "support_disconnected"))
            first = Step.DELETE_CONNECTION if connection.has_tokens else Step.CLEAR_TOKENS
            _step_enter(connection, first, audit=audit)
    connection = xero_connection_disconnect_continue(connection_id=connection.pk, actor=actor, as_support=as_support)
    if connection.disconnect_step:
        return ActionResult(
            True,
            f"Disconnected from {connection.tenant_name} in Coordinoter. Xero didn't answer "
            "in time, so Coordinoter finishes removing the connection in Xero shortly.",
        )
    return ActionResult(True, f"Disconnected from {connection.tenant_name}.")


def xero_connection_disconnect_continue(
    *,
    connection_id: int,
    actor: AbstractBaseUser | None = None,
    as_support: bool = False,
    background: bool = False,
) -> XeroConnection:
    """Run the pending steps in order, inline, until done or until Xero must be asked again later.

    A person (the default) tries the current step now: its backoff is cut short, and an operation that needed
    attention is retried. `background=True` (housekeeping) runs only what is due and leaves needs_attention alone:
    the engine's retries are bounded, and only a person starts them again.
    """
    token = _driving.set(_Driver(actor, as_support))
    try:
        for _ in range(len(Step.values) + 1):
            connection = XeroConnection.objects.get(pk=connection_id)
            if not connection.disconnect_step:
                return connection
            operation = _step_operation(connection)
            if operation is None:
                # A step stored without its operation (before the engine ran disconnects): enter it again.
                with transaction.atomic():
                    locked = XeroConnection.objects.select_for_update().get(pk=connection_id)
                    if locked.disconnect_step and _step_operation(locked) is None:
                        _step_enter(locked, locked.disconnect_step, audit={"actor": actor, "as_support": as_support})
                continue
            if operation.state == OP.NEEDS_ATTENTION and background:
                return connection
            if not background:
                _due_now(operation)
            result = engine.operation_run(operation_id=operation.pk)
            if result.state in (OP.DONE, OP.REFUSED):
                continue  # its finish entered the next step
            if result.state == OP.PENDING and result.retry_in is not None:
                # As the engine's task would: the same operation again after the backoff, never inline.
                engine.operation_enqueue(operation_id=operation.pk, countdown=result.retry_in)
            break
    finally:
        _driving.reset(token)
    return XeroConnection.objects.get(pk=connection_id)


def _step_operation(connection: XeroConnection) -> OutboundOperation | None:
    kind = KIND_OF_STEP.get(connection.disconnect_step)
    if kind is None:
        return None
    return operation_latest(
        organisation_id=connection.organisation_id, kind=kind, subject_id=connection.pk, unfinished=True
    )


def _due_now(operation: OutboundOperation) -> None:
    """A person asked: the step is tried now rather than after its backoff, or again after it needed attention."""
    if operation.state == OP.NEEDS_ATTENTION:
        engine.operation_retry(organisation_id=operation.organisation_id, operation_id=operation.pk)
    elif operation.state == OP.PENDING:
        OutboundOperation.objects.filter(pk=operation.pk, state=OP.PENDING).update(next_attempt_at=timezone.now())


def _step_enter(connection: XeroConnection, step: str, *, audit: dict[str, Any]) -> OutboundOperation | None:
    """Move the locked connection to `step`, skipping steps with nothing to do in Xero, and store the step's
    operation in the same transaction. Returns that operation, or None when the disconnect is finished."""
    record = {"organisation": connection.organisation_id, **audit}
    detail = {"tenant_id": connection.tenant_id, "connection_id": connection.connection_id}
    operation = None
    while step and operation is None:
        if step == Step.DELETE_CONNECTION:
            if connection.connection_id and connection.connection_id in xero_connection_ids_in_use(
                connection.organisation, connection_ids=[connection.connection_id]
            ):
                audit_event_record(
                    **record,
                    action="xero_connection_kept",
                    detail={**detail, "reason": "used_by_another_coordinoter_organisation"},
                )
            elif connection.connection_id:
                operation = _operation_create(
                    connection, DELETE_CONNECTION, {"connection_id": connection.connection_id}
                )
                break
            step = NEXT_STEP[step]
        elif step == Step.REVOKE_TOKEN:
            if connection.refresh_token and xero_user_connected_elsewhere(
                connection.organisation, xero_user_id=connection.xero_user_id
            ):
                # Revoking removes every connection of this Xero user to our app, including another organisation's.
                audit_event_record(
                    **record,
                    action="token_revoke_skipped",
                    detail={"reason": "same_xero_user_connects_another_organisation"},
                )
            elif connection.refresh_token:
                operation = _operation_create(connection, REVOKE_TOKEN, {"token_type_hint": "refresh_token"})
                break
            step = NEXT_STEP[step]
        else:  # clear_tokens: no call to make
            tokens.connection_tokens_clear(connection=connection)
            connection.last_error = ""
            audit_event_record(
                **record,
                action="disconnected",
                detail={"tenant_id": connection.tenant_id, "tenant_name": connection.tenant_name},
            )
            step = Step.NONE
    connection.disconnect_step = step
    connection.save(update_fields=["disconnect_step", "last_error", "updated_at"])
    return operation


def _operation_create(connection: XeroConnection, kind: str, payload: dict[str, Any]) -> OutboundOperation:
    driver = _driving.get()
    actor = driver.actor if driver else None
    return engine.operation_create(
        organisation_id=connection.organisation_id,
        tenant_id=connection.tenant_id,
        kind=kind,
        payload=payload,
        subject_id=connection.pk,
        requested_by=actor if getattr(actor, "pk", None) else None,
    )


# ---------------------------------------------------------------- the kinds


def _log_context(operation: OutboundOperation) -> dict[str, Any]:
    return {"organisation_id": operation.organisation_id, "tenant_id": operation.tenant_id}


def _access_token(client: XeroClient) -> str:
    try:
        return tokens.access_token_get(connection_id=client.connection_id, for_disconnect=True).access_token
    except XeroOAuthError as exc:
        raise _refusal(exc) from None


def _refusal(exc: XeroOAuthError) -> XeroRequestError:
    # An OAuth error other than invalid_grant (which tokens.py reports as a dead grant), e.g. invalid_client: asking
    # again would get the same answer, so it is Xero saying no to this request.
    return XeroRequestError(f"{exc} ({exc.error})", status=exc.status)


def _answer(status: int, method: str, path: str) -> XeroResponse:
    return XeroResponse(
        status=status, body=None, headers={}, correlation_id="", duration_ms=0, method=method, path=path
    )


def _delete_send(client: XeroClient, operation: OutboundOperation) -> XeroResponse:
    connection_id = operation.payload["connection_id"]
    deleted = xero_http.connection_delete(
        access_token=_access_token(client), connection_id=connection_id, log_context=_log_context(operation)
    )
    return _answer(204 if deleted else 404, "DELETE", f"/connections/{connection_id}")


def _delete_confirm(operation: OutboundOperation, response: XeroResponse) -> k.Confirmation:
    return k.Confirmed({"already_gone": response.status == 404})


def _delete_look_up(client: XeroClient, operation: OutboundOperation) -> k.Lookup:
    """After a lost answer, past the window: is the connection still listed in /connections?"""
    listed = xero_http.connections_list(access_token=_access_token(client), log_context=_log_context(operation))
    if any(item.id == operation.payload["connection_id"] for item in listed):
        return k.Absent()
    return k.Confirmed({"already_gone": True})


def _revoke_send(client: XeroClient, operation: OutboundOperation) -> XeroResponse:
    refresh_token = tokens.refresh_token_for_revoke(connection_id=client.connection_id)
    try:
        oauth.token_revoke(refresh_token=refresh_token)
    except XeroOAuthError as exc:
        raise _refusal(exc) from None
    return _answer(200, "POST", "/connect/revocation")


def _revoke_confirm(operation: OutboundOperation, response: XeroResponse) -> k.Confirmation:
    return k.Confirmed({})


def _revoke_look_up(client: XeroClient, operation: OutboundOperation) -> k.Lookup:
    # Nothing can be read back about a revoked token, and revoking is idempotent (RFC 7009 answers 200 for a token
    # already revoked): sending again is safe, so that is the lookup's answer.
    return k.Absent()


_AUDIT = {
    DELETE_CONNECTION: "xero_connection_deleted",
    REVOKE_TOKEN: "token_revoked",
}


def _finish(operation: OutboundOperation, outcome: k.Outcome) -> None:
    """Runs inside the engine's transaction that ends the operation: the step moves on with it."""
    step = STEP_OF_KIND[operation.kind]
    driver = _driving.get()
    audit = {"actor": driver.actor, "as_support": driver.as_support} if driver else {"actor": None}
    connection = XeroConnection.objects.select_for_update().filter(pk=operation.subject_id).first()
    if connection is None or connection.disconnect_step != step:
        return  # moved on already (or the organisation is gone)
    record = {"organisation": connection.organisation_id, **audit}
    detail = {"operation_id": operation.pk}
    if operation.kind == DELETE_CONNECTION:
        detail.update(tenant_id=connection.tenant_id, connection_id=operation.payload["connection_id"])
    if outcome.state == "done":
        if operation.kind == DELETE_CONNECTION:
            detail["already_gone"] = bool(outcome.result.get("already_gone"))
        audit_event_record(**record, action=_AUDIT[operation.kind], detail=detail)
    elif outcome.state == "refused":
        # Our grant is dead or Xero refuses the request: nobody can use that grant any more, so the steps move on.
        audit_event_record(
            **record,
            action=_AUDIT[operation.kind],
            outcome=Outcome.FAILURE,
            detail={**detail, "error": outcome.message[:300], "gave_up": True},
        )
    else:
        if outcome.state == "needs_attention":
            connection.last_error = f"Disconnect step {step} needs attention: {outcome.message}"[:500]
            connection.last_error_at = timezone.now()
            connection.save(update_fields=["last_error", "last_error_at", "updated_at"])
            audit_event_record(
                **record,
                action=f"disconnect_step_{step}",
                outcome=Outcome.FAILURE,
                detail={**detail, "error": outcome.message[:300], "needs_attention": True},
            )
        return
    following = _step_enter(connection, NEXT_STEP[step], audit=audit)
    if following is not None and driver is None:
        engine.operation_enqueue(operation_id=following.pk)  # run by a task: nobody drives the steps inline


def register() -> None:
    for name, send, confirm, look_up in (
        (DELETE_CONNECTION, _delete_send, _delete_confirm, _delete_look_up),
        (REVOKE_TOKEN, _revoke_send, _revoke_confirm, _revoke_look_up),
    ):
        k.register_kind(
            k.Kind(
                name=name,
                send=send,
                confirm=confirm,
                look_up=look_up,
                finish=_finish,
                requires_usable_connection=False,
            )
        )
