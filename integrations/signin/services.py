"""Sign up, sign in and link with Xero (OpenID Connect).

- Sign up: one consent for the identity and the accounting scopes; creates the user, an organisation named after
  the chosen Xero organisation, the admin membership and the Xero connection (bound as Connect binds).
- Sign in: the identity scopes only; signs in the user linked to that Xero user, throttled like every sign-in.
- Link: a user signed in with their password links their Xero login (then signs in with it); unlink in Settings.

Users are found by Xero's user id, never by email. An email that already belongs to an account is never taken
over: a sign-up with it is refused, and that person links Xero after signing in with their password.
The views sign the user in (django.contrib.auth.login); these services decide and write.
"""

import contextlib
import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.bind import xero_tenant_bind
from integrations.connections.connect import xero_consent_organisations
from integrations.models import XeroPendingTenantChoice
from integrations.selectors import xero_connection_ids_in_use, xero_user_has_live_connection
from integrations.signin.models import XeroIdentity, XeroSignInState
from integrations.xero import client, oauth, openid, tokens
from integrations.xero.exceptions import XeroError
from integrations.xero.types import TokenSet, XeroTenantConnection
from organisations.auth import user_for_email
from organisations.identity import canonical_email
from organisations.models import Organisation
from organisations.names import name_skeleton
from organisations.services import organisation_create
from organisations.throttle import Gate, throttle_clear, throttle_locked, throttle_record

logger = logging.getLogger("organisations.auth")
Intent = XeroSignInState.Intent

LOCKED = "Too many sign-in attempts. Wait 15 minutes and try again."
START_AGAIN = "Nothing was changed. Try again from the sign-in page."
EMAIL_TAKEN = (
    "An account with this email address already exists. Sign in with your password, then link Xero in "
    "Settings, Sign in with Xero. Nothing was created."
)
_UNVERIFIED = "-"  # the throttle identity of a Xero round trip whose id_token could not be trusted


@dataclass(frozen=True)
class SignInOutcome:
    kind: Literal["signed_in", "signed_up", "linked", "choose", "refused", "cancelled", "failed", "locked"]
    message: str
    user: AbstractBaseUser | None = None
    pending_id: uuid.UUID | None = None


def _digest(value: str) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()


def _scope(intent: str) -> str:
    if intent != Intent.SIGN_UP:
        return settings.XERO_SIGNIN_SCOPES
    wanted = settings.XERO_SCOPES.split()
    missing = [s for s in settings.XERO_SIGNIN_SCOPES.split() if s not in wanted]
    return " ".join([*wanted, *missing])  # the identity and the accounting scopes in one consent


# ---------------------------------------------------------------- start


def xero_signin_start(*, intent: str, session_key: str, user: AbstractBaseUser | None = None) -> str:
    """Record a single-use state and nonce bound to this browser session (and the user, to link); return Xero's
    authorize URL."""
    if intent == Intent.LINK and user is None:
        raise ValueError("Linking needs the signed-in user.")
    state, nonce = oauth.state_new(), oauth.nonce_new()
    verifier = oauth.code_verifier_new() if settings.XERO_USE_PKCE else ""
    now = timezone.now()
    XeroSignInState.objects.create(
        state_digest=_digest(state),
        intent=intent,
        user=user if intent == Intent.LINK else None,
        session_digest=_digest(session_key),
        nonce=nonce,
        code_verifier=verifier,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.XERO_OAUTH_STATE_TTL_SECONDS),
    )
    return oauth.authorization_url(
        state=state,
        code_verifier=verifier or None,
        scope=_scope(intent),
        redirect_uri=settings.XERO_SIGNIN_REDIRECT_URI,
        nonce=nonce,
    )


def _state_consume(state: str, *, session_key: str) -> tuple[XeroSignInState | None, str]:
    if not state:
        return None, "missing_state"
    with transaction.atomic():
        record = XeroSignInState.objects.select_for_update().filter(state_digest=_digest(state)).first()
        if record is None:
            return None, "unknown_state"
        if record.consumed_at is not None:
            return None, "state_already_used"
        record.consumed_at = timezone.now()
        verifier = record.code_verifier
        record.code_verifier = ""  # keep no secret longer than its use
        record.save(update_fields=["consumed_at", "code_verifier"])
    record.code_verifier = verifier
    if record.expires_at <= record.consumed_at:
        return None, "state_expired"
    if record.session_digest != _digest(session_key):
        return None, "state_bound_to_another_session"
    return record, ""


# ---------------------------------------------------------------- callback


def xero_signin_callback(
    *,
    session_key: str,
    state: str,
    code: str,
    error: str = "",
    client_address: str,
    signed_in_user: AbstractBaseUser | None = None,
) -> SignInOutcome:
    record, refusal = _state_consume(state, session_key=session_key)
    if refusal:
        _log("auth.xero.refused", reason=refusal)
        throttle_record(gate=Gate.XERO, identity=_UNVERIFIED, address=client_address)
        return SignInOutcome(
            "refused",
            "That Xero sign-in can't be used here: it expired, was already used, or was started elsewhere. "
            + START_AGAIN,
        )
    assert record is not None
    if error:
        safe_error = "".join(ch for ch in error if ch.isalnum() or ch in "_-")[:50]
        _log("auth.xero.cancelled", reason=safe_error, intent=record.intent)
        if safe_error == "access_denied":
            return SignInOutcome("cancelled", "You cancelled on Xero's screen, so nothing was changed.")
        return SignInOutcome("failed", f"Xero could not complete the sign-in ({safe_error}). {START_AGAIN}")
    if record.intent == Intent.LINK and (signed_in_user is None or signed_in_user.pk != record.user_id):
        _log("auth.xero.refused", reason="link_started_by_another_user")
        return SignInOutcome("refused", f"That Xero link was started by someone else. {START_AGAIN}")
    if not code:
        return SignInOutcome("refused", f"Xero sent no authorisation code. {START_AGAIN}")
    try:
        token_set = oauth.code_exchange(
            code=code, code_verifier=record.code_verifier or None, redirect_uri=settings.XERO_SIGNIN_REDIRECT_URI
        )
    except XeroError as exc:
        _log("auth.xero.failed", reason="code_exchange_failed", error=type(exc).__name__)
        return SignInOutcome("failed", f"Xero did not accept the sign-in (the code may have expired). {START_AGAIN}")
    try:
        claims = openid.id_token_validate(
            id_token=token_set.id_token, nonce=record.nonce, access_token=token_set.access_token
        )
    except openid.IdTokenInvalid as exc:
        _log("auth.xero.refused", reason=f"id_token_{exc.reason}", intent=record.intent)
        throttle_record(gate=Gate.XERO, identity=_UNVERIFIED, address=client_address)
        _grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome("refused", f"Coordinoter could not verify who signed in at Xero. {START_AGAIN}")
    xero_user_id = claims.xero_user_id or token_set.xero_user_id
    if not xero_user_id:
        _grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome("refused", f"Xero did not say which Xero user signed in. {START_AGAIN}")

    if record.intent == Intent.LINK:
        return _link(user=signed_in_user, claims=claims, xero_user_id=xero_user_id, token_set=token_set)
    identity = canonical_email(claims.email)
    if throttle_locked(gate=Gate.XERO, identity=identity, address=client_address):
        _log("auth.xero.locked", identity=identity, address=client_address)
        _grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome("locked", LOCKED)
    if record.intent == Intent.SIGN_IN:
        return _sign_in(claims=claims, xero_user_id=xero_user_id, identity=identity, address=client_address)
    return _sign_up(
        claims=claims, xero_user_id=xero_user_id, identity=identity, address=client_address, token_set=token_set
    )


def _linked_user(xero_user_id: str) -> AbstractBaseUser | None:
    link = XeroIdentity.objects.select_related("user").filter(xero_user_id=xero_user_id).first()
    if link is None or not link.user.is_active:
        return None
    XeroIdentity.objects.filter(pk=link.pk).update(last_sign_in_at=timezone.now())
    return link.user


def _sign_in(*, claims: openid.XeroIdentityClaims, xero_user_id: str, identity: str, address: str) -> SignInOutcome:
    user = _linked_user(xero_user_id)
    if user is None:
        throttle_record(gate=Gate.XERO, identity=identity, address=address)
        _log("auth.xero.sign_in_failed", identity=identity, address=address, reason="not_linked")
        if user_for_email(claims.email) is not None:
            return SignInOutcome(
                "refused",
                "This Xero login isn't linked to your Coordinoter account yet. Sign in with your password, then "
                "link Xero in Settings, Sign in with Xero.",
            )
        return SignInOutcome(
            "refused", "No Coordinoter account uses this Xero login yet. Choose Sign up with Xero to create one."
        )
    throttle_clear(gate=Gate.XERO, identity=identity)
    _log("auth.xero.signed_in", identity=identity, address=address, user_id=user.pk)
    return SignInOutcome("signed_in", "Signed in with Xero.", user=user)


def _link(
    *, user: AbstractBaseUser, claims: openid.XeroIdentityClaims, xero_user_id: str, token_set: TokenSet
) -> SignInOutcome:
    _grant_give_back(token_set=token_set, consent=None)  # the identity scopes only: nothing to keep
    existing = XeroIdentity.objects.filter(xero_user_id=xero_user_id).first()
    if existing is not None and existing.user_id != user.pk:
        _log("auth.xero.link_refused", user_id=user.pk, reason="linked_to_another_account")
        return SignInOutcome("refused", "This Xero login is already linked to another Coordinoter account.")
    if existing is not None:
        return SignInOutcome("linked", "Your Xero login was already linked to this account.", user=user)
    try:
        with transaction.atomic():
            XeroIdentity.objects.create(
                user=user,
                xero_user_id=xero_user_id,
                subject=claims.subject,
                email_at_link=claims.email[:254],
                linked_at=timezone.now(),
            )
    except IntegrityError:
        return SignInOutcome("refused", "Unlink the Xero login this account already uses first, then link this one.")
    _log("auth.xero.linked", user_id=user.pk)
    return SignInOutcome("linked", "Xero linked: you can now sign in with Xero.", user=user)


def _sign_up(
    *,
    claims: openid.XeroIdentityClaims,
    xero_user_id: str,
    identity: str,
    address: str,
    token_set: TokenSet,
) -> SignInOutcome:
    user = _linked_user(xero_user_id)
    if user is not None:
        # Already a customer: sign in, and leave nothing of this second consent authorised at Xero.
        _grant_give_back(token_set=token_set, consent=_consent(token_set))
        throttle_clear(gate=Gate.XERO, identity=identity)
        _log("auth.xero.signed_in", identity=identity, address=address, user_id=user.pk, via="sign_up")
        return SignInOutcome(
            "signed_in",
            "You already have a Coordinoter account for this Xero login, so you're signed in. "
            "To connect another Xero organisation, use Manage Integrations.",
            user=user,
        )
    if XeroIdentity.objects.filter(xero_user_id=xero_user_id).exists():  # linked to a deactivated account
        _log("auth.xero.sign_up_refused", identity=identity, address=address, reason="linked_account_inactive")
        _grant_give_back(token_set=token_set, consent=_consent(token_set))
        return SignInOutcome(
            "refused", "This Xero login belongs to a Coordinoter account that was closed. Contact support."
        )
    if not claims.email or user_for_email(claims.email) is not None:
        # No account takeover: that address belongs to someone who proves it with their password first.
        throttle_record(gate=Gate.XERO, identity=identity, address=address)
        _log("auth.xero.sign_up_refused", identity=identity, address=address, reason="email_belongs_to_an_account")
        _grant_give_back(token_set=token_set, consent=_consent(token_set))
        return SignInOutcome("refused", EMAIL_TAKEN if claims.email else "Xero did not share an email address.")
    try:
        connections = client.connections_list(access_token=token_set.access_token)
    except XeroError as exc:
        _log("auth.xero.sign_up_failed", reason="connections_unreadable", error=type(exc).__name__)
        _grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome(
            "failed", f"Xero let you in, but Coordinoter couldn't read which organisation you chose. {START_AGAIN}"
        )
    consent, free, known = xero_consent_organisations(connections=connections, token_set=token_set, organisation=None)
    if not free:
        _grant_give_back(token_set=token_set, consent=consent if known else [])
        return SignInOutcome(
            "refused",
            "Choose a Xero organisation that isn't connected to Coordinoter yet. The ones you chose already feed "
            f"another Coordinoter organisation (an admin there can invite you). {START_AGAIN}",
        )
    try:
        user = _user_create(claims=claims, xero_user_id=xero_user_id)
    except IntegrityError:
        # The same Xero login signing up twice at once: the other attempt won. Nothing is given back: revoking
        # this grant would remove the winner's connections too (revocation is per Xero user, xero-facts 1.5).
        _log("auth.xero.sign_up_refused", identity=identity, address=address, reason="concurrent_sign_up")
        return SignInOutcome("refused", f"This Xero login is already signing up. {START_AGAIN}")
    throttle_clear(gate=Gate.XERO, identity=identity)
    _log("auth.xero.signed_up", identity=identity, address=address, user_id=user.pk)
    if known and len(free) == 1:
        others = [c.as_json() for c in consent if c.id != free[0].id]
        return _organisation_found(user=user, token_set=token_set, chosen=free[0].as_json(), others=others)
    now = timezone.now()
    pending = XeroPendingTenantChoice.objects.create(
        organisation=None,
        user=user,
        session_digest="",  # bound to the new session once the view has signed the user in
        auth_event_id=token_set.authentication_event_id,
        xero_user_id=token_set.xero_user_id,
        candidates=[c.as_json() for c in free],
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.XERO_OAUTH_STATE_TTL_SECONDS),
    )
    tokens.pending_tokens_save(pending=pending, token_set=token_set)
    return SignInOutcome("choose", "Choose the Xero organisation your business uses.", user=user, pending_id=pending.pk)


def _user_create(*, claims: openid.XeroIdentityClaims, xero_user_id: str) -> AbstractBaseUser:
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=f"xero-{xero_user_id}"[:150],
            email=claims.email[:254],
            first_name=claims.given_name[:150],
            last_name=claims.family_name[:150],
        )  # no password: this person signs in with Xero (a reset link can add one later)
        XeroIdentity.objects.create(
            user=user,
            xero_user_id=xero_user_id,
            subject=claims.subject,
            email_at_link=claims.email[:254],
            linked_at=timezone.now(),
            last_sign_in_at=timezone.now(),
        )
    return user


def _organisation_found(
    *, user: AbstractBaseUser, token_set: TokenSet, chosen: dict, others: list[dict]
) -> SignInOutcome:
    organisation = _organisation_create(name=chosen["tenant_name"] or "My business", admin=user)
    audit_event_record(
        organisation=organisation,
        actor=user,
        action="signed_up_with_xero",
        detail={"tenant_id": chosen["tenant_id"], "tenant_name": chosen["tenant_name"]},
    )
    outcome = xero_tenant_bind(organisation=organisation, actor=user, token_set=token_set, chosen=chosen, others=others)
    if outcome.kind == "connected":
        return SignInOutcome(
            "signed_up", f"Welcome to Coordinoter. {organisation.name} is connected to Xero.", user=user
        )
    return SignInOutcome(
        "signed_up",
        f"Welcome to Coordinoter. Your organisation {organisation.name} was created, but Xero wasn't connected: "
        f"{outcome.message}",
        user=user,
    )


def _organisation_create(*, name: str, admin: AbstractBaseUser) -> Organisation:
    """An organisation named after the Xero organisation; "(2)", "(3)" when that name, or one that looks the same,
    is taken (organisation names are unique and look-alikes are refused)."""
    base = name.strip()[:190] or "My business"
    for n in range(1, 100):
        candidate = base if n == 1 else f"{base} ({n})"
        if Organisation.objects.filter(name__iexact=candidate).exists():
            continue
        if Organisation.objects.filter(name_skeleton=name_skeleton(candidate)).exists():
            continue
        try:
            with transaction.atomic():
                return organisation_create(name=candidate, admin=admin)
        except IntegrityError:
            continue  # taken a moment ago
    return organisation_create(name=f"{base} ({uuid.uuid4().hex[:6]})", admin=admin)


# ---------------------------------------------------------------- choosing the Xero organisation at sign-up


def xero_signup_pending_bind(*, user: AbstractBaseUser, pending_id: uuid.UUID, session_key: str) -> None:
    """After the view signed the new user in (a new session key), bind the open choice to that session."""
    XeroPendingTenantChoice.objects.filter(
        pk=pending_id, user=user, organisation__isnull=True, consumed_at__isnull=True, session_digest=""
    ).update(session_digest=_digest(session_key))


def xero_signup_choose(
    *, user: AbstractBaseUser, session_key: str, pending_id: uuid.UUID, tenant_id: str
) -> SignInOutcome:
    with transaction.atomic():
        pending = (
            XeroPendingTenantChoice.objects.select_for_update()
            .filter(pk=pending_id, user=user, organisation__isnull=True)
            .first()
        )
        if pending is None or pending.consumed_at is not None or pending.expires_at <= timezone.now():
            return SignInOutcome("refused", "That choice is no longer open. Connect Xero from Manage Integrations.")
        if pending.session_digest != _digest(session_key):
            return SignInOutcome("refused", "That choice was started in another browser session.")
        chosen = next((c for c in pending.candidates if c["tenant_id"] == (tenant_id or "").lower()), None)
        if chosen is None:
            return SignInOutcome("choose", "Choose one of the Xero organisations listed.", pending_id=pending.pk)
        pending.consumed_at = timezone.now()
        pending.save(update_fields=["consumed_at"])
        token_set = tokens.pending_tokens_take(pending=pending)
    others = [c for c in pending.candidates if c["id"] != chosen["id"]]
    return _organisation_found(user=user, token_set=token_set, chosen=chosen, others=others)


def xero_signup_choice_cancel(*, user: AbstractBaseUser, pending_id: uuid.UUID) -> SignInOutcome:
    if not _signup_choice_abandon(pending_id=pending_id, user=user):
        return SignInOutcome("refused", "That choice is no longer open.")
    return SignInOutcome(
        "cancelled",
        "Cancelled: no organisation was created, and the Xero organisations you authorised were disconnected again.",
        user=user,
    )


def xero_signup_choice_expire(*, pending_id: uuid.UUID) -> None:
    """Housekeeping: a sign-up's choice nobody made leaves nothing authorised in Xero."""
    if _signup_choice_abandon(pending_id=pending_id, user=None):
        _log("auth.xero.sign_up_choice_expired")


def _signup_choice_abandon(*, pending_id: uuid.UUID, user: AbstractBaseUser | None) -> bool:
    # Refreshed if it expired meanwhile (disconnecting needs a live access token); a dead grant is erased below.
    with contextlib.suppress(XeroError):
        tokens.pending_access_token(pending_id=pending_id)
    with transaction.atomic():
        found = XeroPendingTenantChoice.objects.select_for_update().filter(
            pk=pending_id, organisation__isnull=True, consumed_at__isnull=True
        )
        pending = (found.filter(user=user) if user is not None else found).first()
        if pending is None:
            return False
        pending.consumed_at = timezone.now()
        pending.save(update_fields=["consumed_at"])
        token_set = tokens.pending_tokens_take(pending=pending)
    consent = [XeroTenantConnection.from_json(_as_wire(c)) for c in pending.candidates]
    _grant_give_back(token_set=token_set, consent=consent)
    return True


def _as_wire(candidate: dict) -> dict:
    return {
        "id": candidate["id"],
        "tenantId": candidate["tenant_id"],
        "tenantType": candidate["tenant_type"],
        "tenantName": candidate["tenant_name"],
        "authEventId": candidate.get("auth_event_id", ""),
    }


# ---------------------------------------------------------------- unlink


def xero_identity_unlink(*, user: AbstractBaseUser) -> bool:
    """Remove the user's Xero sign-in link. Refused (False) while it is their only way to sign in: set a password
    first (a reset link sets one)."""
    link = XeroIdentity.objects.filter(user=user).first()
    if link is None:
        return True
    if not user.has_usable_password():
        return False
    link.delete()
    _log("auth.xero.unlinked", user_id=user.pk)
    return True


# ---------------------------------------------------------------- leaving nothing authorised by accident


def _consent(token_set: TokenSet) -> list[XeroTenantConnection]:
    """This consent's connections, when Xero says which they are (else none: never guess which to disconnect)."""
    if not token_set.authentication_event_id:
        return []
    try:
        connections = client.connections_list(access_token=token_set.access_token)
    except XeroError:
        return []
    return [c for c in connections if c.auth_event_id == token_set.authentication_event_id]


def _grant_give_back(*, token_set: TokenSet, consent: list[XeroTenantConnection] | None) -> None:
    """A sign-in or sign-up that keeps nothing: disconnect this consent's organisations that no Coordinoter
    connection uses, then revoke the grant unless the same Xero user's grant feeds a live connection (revoking
    removes all that user's connections to the app, xero-facts 1.5). Never raises; logged."""
    items = consent or []
    in_use = xero_connection_ids_in_use(None, connection_ids=[c.id for c in items])
    for item in items:
        if item.id in in_use:
            continue
        try:
            client.connection_delete(access_token=token_set.access_token, connection_id=item.id)
        except XeroError as exc:
            _log("auth.xero.give_back_failed", step="connection_delete", error=type(exc).__name__)
    if not token_set.refresh_token:
        return  # the identity scopes only (no offline_access): nothing lasting was granted
    if not token_set.xero_user_id or xero_user_has_live_connection(xero_user_id=token_set.xero_user_id):
        return
    try:
        oauth.token_revoke(refresh_token=token_set.refresh_token)
    except XeroError as exc:
        _log("auth.xero.give_back_failed", step="revoke", error=type(exc).__name__)


def _log(event: str, *, identity: str = "", address: str = "", level: int = logging.INFO, **extra) -> None:
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
