"""Sign in and link with Xero (OpenID Connect): start the round trip and take Xero's answer; a sign-up goes on in
signup.py. Unlink in Settings."""

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.connections.connect import state_digest
from integrations.signin.models import XeroIdentity, XeroSignInState
from integrations.signin.services.common import (
    LOCKED,
    START_AGAIN,
    UNVERIFIED,
    SignInOutcome,
    grant_give_back,
    linked_user,
    log_event,
    xero_identity_create,
)
from integrations.signin.services.signup import sign_up
from integrations.xero import oauth, openid
from integrations.xero.errors import describe, unjudged
from integrations.xero.exceptions import XeroError
from integrations.xero.types import TokenSet
from organisations.auth import user_for_email
from organisations.identity import canonical_email
from organisations.throttle import Gate, throttle_clear, throttle_locked, throttle_record

Intent = XeroSignInState.Intent


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
        state_digest=state_digest(state),
        intent=intent,
        user=user if intent == Intent.LINK else None,
        session_digest=state_digest(session_key),
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
        record = XeroSignInState.objects.select_for_update().filter(state_digest=state_digest(state)).first()
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
    if record.session_digest != state_digest(session_key):
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
        log_event("auth.xero.refused", reason=refusal)
        throttle_record(gate=Gate.XERO, identity=UNVERIFIED, address=client_address)
        return SignInOutcome(
            "refused",
            "That Xero sign-in can't be used here: it expired, was already used, or was started elsewhere. "
            + START_AGAIN,
        )
    assert record is not None
    if error:
        safe_error = "".join(ch for ch in error if ch.isalnum() or ch in "_-")[:50]
        log_event("auth.xero.cancelled", reason=safe_error, intent=record.intent)
        if safe_error == "access_denied":
            return SignInOutcome("cancelled", "You cancelled on Xero's screen, so nothing was changed.")
        return SignInOutcome("failed", f"Xero could not complete the sign-in ({safe_error}). {START_AGAIN}")
    if record.intent == Intent.LINK and (signed_in_user is None or signed_in_user.pk != record.user_id):
        log_event("auth.xero.refused", reason="link_started_by_another_user")
        return SignInOutcome("refused", f"That Xero link was started by someone else. {START_AGAIN}")
    if not code:
        return SignInOutcome("refused", f"Xero sent no authorisation code. {START_AGAIN}")
    try:
        token_set = oauth.code_exchange(
            code=code, code_verifier=record.code_verifier or None, redirect_uri=settings.XERO_SIGNIN_REDIRECT_URI
        )
    except XeroError as exc:
        log_event("auth.xero.failed", reason="code_exchange_failed", error=type(exc).__name__)
        if unjudged(exc):  # Xero did not answer: the code was never judged, so don't blame it
            return SignInOutcome("failed", f"{describe(exc, doing='finish signing you in')} {START_AGAIN}")
        return SignInOutcome("failed", f"Xero did not accept the sign-in (the code may have expired). {START_AGAIN}")
    try:
        claims = openid.id_token_validate(
            id_token=token_set.id_token, nonce=record.nonce, access_token=token_set.access_token
        )
    except openid.IdTokenInvalid as exc:
        log_event("auth.xero.refused", reason=f"id_token_{exc.reason}", intent=record.intent)
        throttle_record(gate=Gate.XERO, identity=UNVERIFIED, address=client_address)
        grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome("refused", f"Coordinoter could not verify who signed in at Xero. {START_AGAIN}")
    xero_user_id = claims.xero_user_id or token_set.xero_user_id
    if not xero_user_id:
        grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome("refused", f"Xero did not say which Xero user signed in. {START_AGAIN}")

    if record.intent == Intent.LINK:
        return _link(user=signed_in_user, claims=claims, xero_user_id=xero_user_id, token_set=token_set)
    identity = canonical_email(claims.email)
    if throttle_locked(gate=Gate.XERO, identity=identity, address=client_address):
        log_event("auth.xero.locked", identity=identity, address=client_address)
        grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome("locked", LOCKED)
    if record.intent == Intent.SIGN_IN:
        return _sign_in(claims=claims, xero_user_id=xero_user_id, identity=identity, address=client_address)
    return sign_up(
        claims=claims, xero_user_id=xero_user_id, identity=identity, address=client_address, token_set=token_set
    )


def _sign_in(*, claims: openid.XeroIdentityClaims, xero_user_id: str, identity: str, address: str) -> SignInOutcome:
    user = linked_user(xero_user_id)
    if user is None:
        throttle_record(gate=Gate.XERO, identity=identity, address=address)
        log_event("auth.xero.sign_in_failed", identity=identity, address=address, reason="not_linked")
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
    log_event("auth.xero.signed_in", identity=identity, address=address, user_id=user.pk)
    return SignInOutcome("signed_in", "Signed in with Xero.", user=user)


def _link(
    *, user: AbstractBaseUser, claims: openid.XeroIdentityClaims, xero_user_id: str, token_set: TokenSet
) -> SignInOutcome:
    grant_give_back(token_set=token_set, consent=None)  # the identity scopes only: nothing to keep
    existing = XeroIdentity.objects.filter(xero_user_id=xero_user_id).first()
    if existing is not None and existing.user_id != user.pk:
        log_event("auth.xero.link_refused", user_id=user.pk, reason="linked_to_another_account")
        return SignInOutcome("refused", "This Xero login is already linked to another Coordinoter account.")
    if existing is not None:
        return SignInOutcome("linked", "Your Xero login was already linked to this account.", user=user)
    try:
        with transaction.atomic():
            xero_identity_create(user=user, claims=claims, xero_user_id=xero_user_id, signed_in=False)
    except IntegrityError:
        return SignInOutcome("refused", "Unlink the Xero login this account already uses first, then link this one.")
    log_event("auth.xero.linked", user_id=user.pk)
    return SignInOutcome("linked", "Xero linked: you can now sign in with Xero.", user=user)


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
    log_event("auth.xero.unlinked", user_id=user.pk)
    return True
