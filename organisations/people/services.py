"""People of an organisation: invitations by email, roles, removal. Every change is in the organisation's audit
trail (organisations.audit), and an organisation always keeps at least one admin.

Invitations are single-use links that expire (`INVITATION_TTL_HOURS`). The link carries a random token; only its
SHA-256 is stored, so a copy of the database joins nobody. Accepting is atomic: the invitation row is locked,
re-checked, and marked used in the same transaction that creates the membership.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from organisations.audit import organisation_audit_record
from organisations.identity import canonical_email
from organisations.models import Invitation, Membership, Organisation

logger = logging.getLogger(__name__)
Role = Membership.Role


class PeopleError(Exception):
    """A change to the organisation's people that cannot be made; the message says why, for the person."""


class LastAdmin(PeopleError):
    pass


class InvitationUnusable(PeopleError):
    pass


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("organisations:invitation", args=[token])


@dataclass(frozen=True)
class InvitationSent:
    invitation: Invitation
    url: str  # carries the token: emailed, never logged or stored


@transaction.atomic
def invitation_create(
    *, organisation: Organisation, email: str, role: str, invited_by: AbstractBaseUser
) -> InvitationSent:
    """Invite `email` as `role` and email them the link. A pending invitation to the same address is replaced."""
    email = email.strip()
    canonical = canonical_email(email)
    if role not in Role.values:
        raise PeopleError("Choose Admin or Accountant.")
    if Membership.objects.filter(organisation=organisation, user__sign_in_email__canonical=canonical).exists():
        raise PeopleError(f"{email} is already a member of {organisation.name}.")
    now = timezone.now()
    Invitation.objects.filter(
        organisation=organisation, email_canonical=canonical, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        email_canonical=canonical,
        role=role,
        token_hash=invitation_token_hash(token),
        invited_by=invited_by,
        expires_at=now + dt.timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    organisation_audit_record(
        organisation=organisation,
        actor=invited_by,
        action="invitation_sent",
        detail={"email": email, "role": role},
    )
    url = invitation_url(token)
    inviter = getattr(invited_by, "email", "") or "An admin"
    expires = timezone.localtime(invitation.expires_at)
    subject = f"{inviter} invited you to {organisation.name} on Coordinoter"
    body = (
        f"{inviter} invited you to join {organisation.name} on Coordinoter as {Role(role).label}.\n\n"
        f"Open this link to accept (it works once, until {expires:%d %B %Y %H:%M %Z}):\n{url}\n\n"
        "If you already have a Coordinoter account with this address, you'll sign in with it; otherwise you'll "
        "choose a password. If you weren't expecting this, ignore this email.\n"
    )
    transaction.on_commit(lambda: send_mail(subject, body, None, [email]))
    return InvitationSent(invitation=invitation, url=url)


def invitation_revoke(*, organisation: Organisation, pk: int, actor: AbstractBaseUser) -> Invitation:
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().filter(organisation=organisation, pk=pk).first()
        )  # another organisation's id: not found
        if invitation is None:
            raise Invitation.DoesNotExist
        if invitation.accepted_at is None and invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
            organisation_audit_record(
                organisation=organisation, actor=actor, action="invitation_revoked", detail={"email": invitation.email}
            )
    return invitation


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation this link names, whatever its state (the page says why one cannot be used)."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("organisation", "invited_by")
        .filter(token_hash=invitation_token_hash(token))
        .first()
    )


def invitation_problem(invitation: Invitation | None, *, now: dt.datetime | None = None) -> str:
    """Why this invitation cannot be accepted, in words; empty when it can."""
    now = now or timezone.now()
    if invitation is None:
        return "This invitation link isn't valid. Check that you opened the whole link from the email."
    if invitation.accepted_at is not None:
        return "This invitation has already been used. Sign in to reach the organisation."
    if invitation.revoked_at is not None:
        return "This invitation was withdrawn by an admin. Ask them for a new one if you still need access."
    if invitation.expires_at <= now:
        return "This invitation has expired. Ask an admin of the organisation to invite you again."
    return ""


def account_for_email(email: str) -> AbstractBaseUser | None:
    return get_user_model().objects.filter(sign_in_email__canonical=canonical_email(email), is_active=True).first()


def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """Join the organisation with `user`, whose address must be the invited one. Single use, even when two
    accepts race: the row is locked and re-checked."""
    token_hash = invitation_token_hash(token)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(token_hash=token_hash).first()
        problem = invitation_problem(invitation)
        if problem:
            raise InvitationUnusable(problem)
        if canonical_email(user.email) != invitation.email_canonical:
            raise InvitationUnusable(
                f"This invitation is for {invitation.email}, and you're signed in as {user.email}. Sign out, then "
                "open the link again."
            )
        membership, created = Membership.objects.get_or_create(
            organisation_id=invitation.organisation_id, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        organisation_audit_record(
            organisation=invitation.organisation_id,
            actor=user,
            action="invitation_accepted",
            detail={"email": user.email, "role": membership.role, "already_member": not created},
        )
    return membership


@transaction.atomic
def invitation_sign_up(*, token: str, password: str, first_name: str = "", last_name: str = "") -> Membership:
    """A new account for the invited address, then accept. The address is the invitation's: the link reached it."""
    invitation = invitation_for_token(token)
    problem = invitation_problem(invitation)
    if problem:
        raise InvitationUnusable(problem)
    if account_for_email(invitation.email) is not None:
        raise InvitationUnusable("An account with this address exists already: sign in with it to accept.")
    user = get_user_model().objects.create_user(
        username=invitation.email,
        email=invitation.email,
        password=password,
        first_name=first_name[:150],
        last_name=last_name[:150],
    )
    return invitation_accept(token=token, user=user)


# ---------------------------------------------------------------- roles and removal


def _locked_admins(organisation: Organisation) -> list[int]:
    """Lock the organisation's admin rows: two admins demoting each other at once cannot both succeed."""
    return list(
        Membership.objects.select_for_update()
        .filter(organisation=organisation, role=Role.ADMIN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _membership_locked(organisation: Organisation, pk: int) -> Membership:
    membership = (
        Membership.objects.select_for_update().select_related("user").filter(organisation=organisation, pk=pk).first()
    )
    if membership is None:
        raise Membership.DoesNotExist
    return membership


LAST_ADMIN = (
    "{email} is the only admin of {organisation}. Make someone else an admin first, so the organisation always has one."
)


@transaction.atomic
def membership_role_change(*, organisation: Organisation, pk: int, role: str, actor: AbstractBaseUser) -> Membership:
    if role not in Role.values:
        raise PeopleError("Choose Admin or Accountant.")
    admins = _locked_admins(organisation)
    membership = _membership_locked(organisation, pk)
    if membership.role == role:
        return membership
    if membership.role == Role.ADMIN and admins == [membership.pk]:
        raise LastAdmin(LAST_ADMIN.format(email=membership.user.email, organisation=organisation.name))
    previous, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    organisation_audit_record(
        organisation=organisation,
        actor=actor,
        action="role_changed",
        detail={"email": membership.user.email, "from": previous, "to": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, organisation: Organisation, pk: int, actor: AbstractBaseUser) -> Membership:
    admins = _locked_admins(organisation)
    membership = _membership_locked(organisation, pk)
    if membership.role == Role.ADMIN and admins == [membership.pk]:
        raise LastAdmin(LAST_ADMIN.format(email=membership.user.email, organisation=organisation.name))
    organisation_audit_record(
        organisation=organisation,
        actor=actor,
        action="member_removed",
        detail={"email": membership.user.email, "role": membership.role},
    )
    membership.delete()
    return membership


def membership_failure_emails_set(*, membership: Membership, enabled: bool) -> Membership:
    if membership.failure_emails != enabled:
        membership.failure_emails = enabled
        membership.save(update_fields=["failure_emails"])
        organisation_audit_record(
            organisation=membership.organisation_id,
            actor=membership.user,
            action="failure_emails_changed",
            detail={"email": membership.user.email, "enabled": enabled},
        )
    return membership
