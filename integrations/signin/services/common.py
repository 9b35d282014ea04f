"""What the sign-in services share: the outcome, the messages, the linked user, the one function that links a Xero
login to a user, giving back what a consent granted when nothing of it is kept, and the security log."""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from integrations.connections.give_back import consent_tenants_disconnect, grant_revoke
from integrations.signin.models import XeroIdentity
from integrations.xero import client, openid
from integrations.xero.exceptions import XeroError
from integrations.xero.types import TokenSet

logger = logging.getLogger("organisations.auth")

LOCKED = "Too many sign-in attempts. Wait 15 minutes and try again."
START_AGAIN = "Nothing was changed. Try again from the sign-in page."
EMAIL_TAKEN = (
    "An account with this email address already exists. Sign in with your password, then link Xero in "
    "Settings, Sign in with Xero. Nothing was created."
)
UNVERIFIED = "-"  # the throttle identity of a Xero round trip whose id_token could not be trusted


@dataclass(frozen=True)
class SignInOutcome:
    kind: Literal["signed_in", "signed_up", "linked", "choose", "refused", "cancelled", "failed", "locked"]
    message: str
    user: AbstractBaseUser | None = None
    pending_id: uuid.UUID | None = None


def linked_user(xero_user_id: str) -> AbstractBaseUser | None:
    link = XeroIdentity.objects.select_related("user").filter(xero_user_id=xero_user_id).first()
    if link is None or not link.user.is_active:
        return None
    XeroIdentity.objects.filter(pk=link.pk).update(last_sign_in_at=timezone.now())
    return link.user


def xero_identity_create(
    *, user: AbstractBaseUser, claims: openid.XeroIdentityClaims, xero_user_id: str, signed_in: bool
) -> XeroIdentity:
    """Link the Xero login to the user (a sign-up, which also signs in, or a link from Settings). The caller holds
    the transaction: the unique xero_user_id and user refuse a second link with IntegrityError."""
    now = timezone.now()
    return XeroIdentity.objects.create(
        user=user,
        xero_user_id=xero_user_id,
        subject=claims.subject,
        email_at_link=claims.email[:254],
        linked_at=now,
        last_sign_in_at=now if signed_in else None,
    )


# ---------------------------------------------------------------- leaving nothing authorised by accident


def consent_of(token_set: TokenSet) -> list[dict]:
    """This consent's connections, when Xero says which they are (else none: never guess which to disconnect)."""
    if not token_set.authentication_event_id:
        return []
    try:
        connections = client.connections_list(access_token=token_set.access_token)
    except XeroError:
        return []
    return [c.as_json() for c in connections if c.auth_event_id == token_set.authentication_event_id]


def grant_give_back(*, token_set: TokenSet, consent: list[dict] | None) -> None:
    """A sign-in or sign-up that keeps nothing: disconnect this consent's organisations (candidates as stored: id,
    tenant_id, tenant_name, ...) that no Coordinoter connection uses, then revoke the grant unless the same Xero
    user's grant feeds a live connection (integrations.connections.give_back). Never raises; logged."""
    for result in consent_tenants_disconnect(access_token=token_set.access_token, items=consent or []):
        if result.error:
            log_event("auth.xero.give_back_failed", step="connection_delete", error=result.error)
    revoked = grant_revoke(token_set=token_set)
    if revoked.error:
        log_event("auth.xero.give_back_failed", step="revoke", error=revoked.error)


def log_event(event: str, *, identity: str = "", address: str = "", level: int = logging.INFO, **extra) -> None:
    """Security events of Xero sign-ins, like the password backend's: the identity as a digest, never a token."""
    logger.log(
        logging.WARNING if "refused" in event or "failed" in event or "locked" in event else level,
        event,
        extra={
            "event": event,
            "identity": hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:16] if identity else "-",
            "client": address or "-",
            **extra,
        },
    )
