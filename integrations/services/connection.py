"""A connection's life after connecting: the daily check and keep-alive, Xero-side disconnects, support's actions, and
the emails to the organisation's admins. Disconnecting lives in integrations/connections/disconnect.py (its Xero
calls are outbound operations)."""

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from coordinoter import queue
from integrations.audit import audit_event_record
from integrations.connections.disconnect import xero_connection_disconnect_continue  # noqa: F401 - connect.py's import
from integrations.connections.states import connection_move
from integrations.connections.types import ActionResult
from integrations.models import IntegrationAuditEvent, XeroConnection
from integrations.registry import connection_event_emit
from integrations.selectors import connection_needs_keepalive_refresh
from integrations.xero import tokens
from integrations.xero.client import XeroClient
from integrations.xero.errors import Retry, WaitForConnection, classify
from integrations.xero.exceptions import XeroError, XeroNeedsReconnect
from integrations.xero.ratelimit import Priority
from organisations.models import Organisation
from organisations.selectors import organisation_admin_emails

logger = logging.getLogger(__name__)
Outcome = IntegrationAuditEvent.Outcome
S = XeroConnection.Status


# ---------------------------------------------------------------- Xero-side disconnects, daily check, keep-alive


def xero_connection_verify(*, connection_id: int) -> str:
    """GET /connections: is our tenant still connected? Missing (or an empty list) means it was disconnected on
    Xero's side (https://github.com/XeroAPI/Xero-OpenAPI/issues/585). Returns connected | revoked_in_xero |
    needs_reconnect | skipped | error | rate_limited (a health check waits behind customers' calls: it queues itself
    again for when the limiter said)."""
    connection = XeroConnection.objects.get(pk=connection_id)
    if not connection.is_usable:
        return "skipped"
    xero = XeroClient(connection_id, check_on_forbidden=False, priority=Priority.HEALTH)
    try:
        tenants = xero.tenant_connections()
    except XeroError as exc:
        verdict = classify(exc, attempt=1)
        if isinstance(verdict, WaitForConnection):
            # A dead grant is marked needs-reconnect by the token store; a connection gone meanwhile is not ours.
            return "needs_reconnect" if isinstance(exc, XeroNeedsReconnect) else "skipped"
        if isinstance(verdict, Retry) and verdict.rate_limited:
            _verify_later(connection_id, seconds=verdict.after)
            return "rate_limited"
        # Anything else (an outage, a refusal that leaves the connection connected): tomorrow's check tries again.
        logger.warning(
            "xero.connection.check_failed",
            extra={
                "event": "xero.connection.check_failed",
                "organisation_id": connection.organisation_id,
                "tenant_id": connection.tenant_id,
                "error": type(exc).__name__,
            },
        )
        return "error"
    mine = next((t for t in tenants if t.tenant_id == connection.tenant_id), None)
    if mine is None:
        xero_connection_mark_revoked_in_xero(connection_id=connection_id, tenants_seen=len(tenants))
        return "revoked_in_xero"
    updates = {"last_verified_at": timezone.now(), "tenant_name": mine.tenant_name or connection.tenant_name}
    if not connection.tenant_short_code:
        try:
            details = xero.organisation()
        except XeroError:
            details = {}
        if details:
            from integrations.connections.bind import organisation_locale_fill

            organisation_locale_fill(organisation_id=connection.organisation_id, details=details)
        updates.update(
            tenant_short_code=details.get("ShortCode") or "",
            base_currency=details.get("BaseCurrency") or connection.base_currency,
        )
    XeroConnection.objects.usable().filter(pk=connection_id).update(**updates, updated_at=timezone.now())
    return "connected"


def xero_connection_verify_soon(*, organisation: Organisation) -> bool:
    """Support opened the tenant's page: check its connection in Xero now (a queued verify), at most once per
    SUPPORT_VERIFY_EVERY_SECONDS per tenant whoever looks, so a revocation made in Xero shows at once."""
    connection = XeroConnection.objects.usable().filter(organisation=organisation).only("pk").first()
    if connection is None:
        return False
    if not cache.add(f"integrations:support-verify:{connection.pk}", 1, timeout=settings.SUPPORT_VERIFY_EVERY_SECONDS):
        return False
    from integrations.tasks import xero_connection_verify_task

    queue.enqueue_on_commit(xero_connection_verify_task, args=(connection.pk,))
    return True


def xero_connection_mark_revoked_in_xero(*, connection_id: int, tenants_seen: int = 0) -> bool:
    """The tenant is gone from /connections: show it, email the admins, stop using the tokens."""
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().get(pk=connection_id)
        if connection.status not in XeroConnection.BOUND_STATUSES or connection.disconnect_step:
            return False
        now = timezone.now()
        moved = connection_move(connection, S.REVOKED_IN_XERO, at=now)
        connection.disconnected_at = now
        connection.disconnected_by = None
        connection.save(update_fields=[*moved, "disconnected_at", "disconnected_by", "updated_at"])
        # Dropped, not revoked: the grant may still serve this Xero user's other connections (xero-facts 1.5).
        tokens.connection_tokens_clear(connection=connection)
        audit_event_record(
            organisation=connection.organisation_id,
            action="revoked_in_xero",
            outcome=Outcome.FAILURE,
            detail={
                "tenant_id": connection.tenant_id,
                "tenant_name": connection.tenant_name,
                "tenants_still_connected_for_user": tenants_seen,
            },
        )
        connection_event_emit(organisation_id=connection.organisation_id, event="revoked_in_xero")
        transaction.on_commit(lambda: _enqueue_notify(connection_id, "revoked_in_xero"))
    logger.warning(
        "xero.connection.revoked_in_xero",
        extra={
            "event": "xero.connection.revoked_in_xero",
            "organisation_id": connection.organisation_id,
            "tenant_id": connection.tenant_id,
        },
    )
    return True


def xero_connection_keepalive(*, connection_id: int) -> str:
    """Daily: refresh a refresh token that has idled XERO_KEEPALIVE_AFTER_DAYS (Xero lets it die after 60
    unused days, https://developer.xero.com/faq/oauth2), then check the tenant is still connected."""
    connection = XeroConnection.objects.get(pk=connection_id)
    if not connection.is_usable:
        return "skipped"
    if connection_needs_keepalive_refresh(connection):
        try:
            tokens.access_token_get(connection_id=connection_id, force_refresh=True)
        except XeroNeedsReconnect:
            return "needs_reconnect"
        except XeroError as exc:
            audit_event_record(
                organisation=connection.organisation_id,
                action="keepalive_refresh",
                outcome=Outcome.FAILURE,
                detail={"error": type(exc).__name__},
            )
            return "error"
        audit_event_record(organisation=connection.organisation_id, action="keepalive_refresh")
    return xero_connection_verify(connection_id=connection_id)


# ---------------------------------------------------------------- support actions


def xero_connection_refresh(
    *, organisation: Organisation, actor: AbstractBaseUser | None, as_support: bool = False
) -> ActionResult:
    """Force a token refresh now (support console)."""
    connection = XeroConnection.objects.filter(organisation=organisation).first()
    if connection is None or not connection.is_usable:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            as_support=as_support,
            action="token_refreshed",
            outcome=Outcome.REFUSED,
            detail={"reason": "not_active"},
        )
        return ActionResult(False, "Only an active connection can be refreshed.")
    try:
        tokens.access_token_get(connection_id=connection.pk, force_refresh=True)
    except XeroNeedsReconnect:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            as_support=as_support,
            action="token_refreshed",
            outcome=Outcome.FAILURE,
            detail={"error": "invalid_grant"},
        )
        return ActionResult(
            False, "Xero refused the refresh token: the connection now needs a reconnect and the admins were emailed."
        )
    except XeroError as exc:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            as_support=as_support,
            action="token_refreshed",
            outcome=Outcome.FAILURE,
            detail={"error": type(exc).__name__},
        )
        return ActionResult(False, f"The refresh failed ({type(exc).__name__}); the current token is kept.")
    audit_event_record(organisation=organisation, actor=actor, as_support=as_support, action="token_refreshed")
    return ActionResult(True, "Token refreshed.")


def xero_connection_request_reconnect(
    *, organisation: Organisation, actor: AbstractBaseUser | None, reason: str, as_support: bool = True
) -> ActionResult:
    """Ask the organisation's admins to reconnect: an email now and a banner on every page until they do."""
    reason = (reason or "").strip()[:255] or "Coordinoter support needs you to reconnect Xero."
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().filter(organisation=organisation).first()
        if connection is None or not connection.tenant_id:
            return ActionResult(False, "This organisation has never connected Xero.")
        connection.reconnect_requested_at = timezone.now()
        connection.reconnect_requested_reason = reason
        connection.save(update_fields=["reconnect_requested_at", "reconnect_requested_reason", "updated_at"])
        audit_event_record(
            organisation=organisation,
            actor=actor,
            as_support=as_support,
            action="reconnect_requested",
            detail={"reason": reason},
        )
        connection_id = connection.pk
        transaction.on_commit(lambda: _enqueue_notify(connection_id, "reconnect_requested"))
    return ActionResult(True, "The admins were asked to reconnect (email and banner).")


def xero_connection_sync_recorded(*, organisation: Organisation, at=None) -> None:
    """For the invoices app: a sync with Xero succeeded (shown as "last successful sync" to support)."""
    XeroConnection.objects.filter(organisation=organisation).update(last_synced_at=at or timezone.now())


# ---------------------------------------------------------------- emails


def _verify_later(connection_id: int, *, seconds: float) -> None:
    from integrations.tasks import xero_connection_verify_task

    # Never sleep to throttle: the check comes back when the limiter said, a little spread so waiters do not herd.
    queue.enqueue(xero_connection_verify_task, args=(connection_id,), countdown=seconds + connection_id % 7)


def _enqueue_notify(connection_id: int, event: str) -> None:
    from integrations.tasks import xero_admins_notify_task

    queue.enqueue(xero_admins_notify_task, args=(connection_id, event))


def xero_admins_notify(*, connection_id: int, event: str) -> int:
    """Email the organisation's admins about a connection problem. Returns how many were emailed."""
    connection = XeroConnection.objects.select_related("organisation").get(pk=connection_id)
    organisation = connection.organisation
    recipients = organisation_admin_emails(organisation=organisation)
    url = settings.SITE_URL.rstrip("/") + reverse("integrations:manage")
    tenant = connection.tenant_name or "your Xero organisation"
    if event == "needs_reconnect":
        if connection.status != S.NEEDS_RECONNECT:
            return 0
        subject = f"Action needed: reconnect Xero for {organisation.name}"
        body = (
            f"Xero no longer accepts Coordinoter's access to “{tenant}” for {organisation.name}. This happens "
            "when access is revoked in Xero or when the connection stays unused for 60 days.\n\n"
            "New invoice batches wait and go to Xero as soon as an admin reconnects. To reconnect, open "
            f"Business Portal > Manage Integrations and click Reconnect:\n{url}\n"
        )
    elif event == "revoked_in_xero":
        if connection.status != S.REVOKED_IN_XERO:
            return 0
        subject = f"Xero was disconnected from {organisation.name}"
        body = (
            f"Coordinoter's connection to the Xero organisation “{tenant}” was removed in Xero, so invoice "
            f"batches of {organisation.name} no longer go to Xero. Batches created while disconnected are "
            "not synced.\n\nIf that was not intended, open Business Portal > Manage Integrations and click "
            f"Connect to Xero:\n{url}\n"
        )
    elif event == "reconnect_requested":
        if connection.reconnect_requested_at is None:
            return 0
        subject = f"Coordinoter support asks you to reconnect Xero for {organisation.name}"
        body = (
            f"{connection.reconnect_requested_reason}\n\nOpen Business Portal > Manage Integrations and click "
            f"Reconnect, then sign in to Xero and allow access to “{tenant}”:\n{url}\n"
        )
    elif event == "support_disconnected":
        requested = (
            IntegrationAuditEvent.objects.filter(
                organisation=organisation,
                action="disconnect_requested",
                actor_kind=IntegrationAuditEvent.ActorKind.SUPPORT,
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        if requested is None:
            return 0
        reason = requested.detail.get("reason") or "No reason was given."
        subject = f"Coordinoter support disconnected Xero from {organisation.name}"
        body = (
            f"Coordinoter support disconnected {organisation.name} from the Xero organisation “{tenant}”.\n\n"
            f"Their reason: {reason}\n\n"
            "Invoice batches created from now on stay in Coordinoter and are not sent to Xero. To connect again, "
            f"open Business Portal > Manage Integrations and click Connect to Xero:\n{url}\n\n"
            "Questions? Reply through the help icon at the bottom right of any page.\n"
        )
    else:
        raise ValueError(f"Unknown notification {event!r}")
    if recipients:
        send_mail(subject, body, None, recipients)
    audit_event_record(
        organisation=organisation,
        action="admins_emailed",
        outcome=Outcome.SUCCESS if recipients else Outcome.FAILURE,
        detail={"about": event, "recipients": len(recipients)},
    )
    return len(recipients)
