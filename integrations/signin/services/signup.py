"""Sign up with Xero: one consent for the identity and the accounting scopes creates the user, an organisation named
after the chosen Xero organisation, the admin membership and the Xero connection (bound as Connect binds, by
integrations.connections.bind.xero_tenant_bind); several organisations become a choice."""

import contextlib
import datetime as dt
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.bind import xero_tenant_bind
from integrations.connections.connect import state_digest, xero_consent_organisations
from integrations.models import XeroPendingTenantChoice
from integrations.signin.models import XeroIdentity
from integrations.signin.services.common import (
    EMAIL_TAKEN,
    START_AGAIN,
    SignInOutcome,
    consent_of,
    grant_give_back,
    linked_user,
    log_event,
    xero_identity_create,
)
from integrations.xero import client, openid, tokens
from integrations.xero.exceptions import XeroError
from integrations.xero.types import TokenSet
from organisations.auth import user_for_email
from organisations.models import Organisation
from organisations.names import name_skeleton
from organisations.services import organisation_create
from organisations.throttle import Gate, throttle_clear, throttle_record


def sign_up(
    *,
    claims: openid.XeroIdentityClaims,
    xero_user_id: str,
    identity: str,
    address: str,
    token_set: TokenSet,
) -> SignInOutcome:
    user = linked_user(xero_user_id)
    if user is not None:
        # Already a customer: sign in, and leave nothing of this second consent authorised at Xero.
        grant_give_back(token_set=token_set, consent=consent_of(token_set))
        throttle_clear(gate=Gate.XERO, identity=identity)
        log_event("auth.xero.signed_in", identity=identity, address=address, user_id=user.pk, via="sign_up")
        return SignInOutcome(
            "signed_in",
            "You already have a Coordinoter account for this Xero login, so you're signed in. "
            "To connect another Xero organisation, use Manage Integrations.",
            user=user,
        )
    if XeroIdentity.objects.filter(xero_user_id=xero_user_id).exists():  # linked to a deactivated account
        log_event("auth.xero.sign_up_refused", identity=identity, address=address, reason="linked_account_inactive")
        grant_give_back(token_set=token_set, consent=consent_of(token_set))
        return SignInOutcome(
            "refused", "This Xero login belongs to a Coordinoter account that was closed. Contact support."
        )
    if not claims.email or user_for_email(claims.email) is not None:
        # No account takeover: that address belongs to someone who proves it with their password first.
        throttle_record(gate=Gate.XERO, identity=identity, address=address)
        log_event("auth.xero.sign_up_refused", identity=identity, address=address, reason="email_belongs_to_an_account")
        grant_give_back(token_set=token_set, consent=consent_of(token_set))
        return SignInOutcome("refused", EMAIL_TAKEN if claims.email else "Xero did not share an email address.")
    try:
        connections = client.connections_list(access_token=token_set.access_token)
    except XeroError as exc:
        log_event("auth.xero.sign_up_failed", reason="connections_unreadable", error=type(exc).__name__)
        grant_give_back(token_set=token_set, consent=None)
        return SignInOutcome(
            "failed", f"Xero let you in, but Coordinoter couldn't read which organisation you chose. {START_AGAIN}"
        )
    consent, free, known = xero_consent_organisations(connections=connections, token_set=token_set, organisation=None)
    if not free:
        grant_give_back(token_set=token_set, consent=[c.as_json() for c in consent] if known else [])
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
        log_event("auth.xero.sign_up_refused", identity=identity, address=address, reason="concurrent_sign_up")
        return SignInOutcome("refused", f"This Xero login is already signing up. {START_AGAIN}")
    throttle_clear(gate=Gate.XERO, identity=identity)
    log_event("auth.xero.signed_up", identity=identity, address=address, user_id=user.pk)
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
        xero_identity_create(user=user, claims=claims, xero_user_id=xero_user_id, signed_in=True)
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
    ).update(session_digest=state_digest(session_key))


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
        if pending.session_digest != state_digest(session_key):
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
        log_event("auth.xero.sign_up_choice_expired")


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
    grant_give_back(token_set=token_set, consent=pending.candidates)
    return True
