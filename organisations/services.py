from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from organisations.audit import organisation_audit_record
from organisations.models import Membership, Organisation, SupportReply, SupportRequest
from organisations.names import name_skeleton


@transaction.atomic
def organisation_create(*, name: str, admin: AbstractBaseUser | None = None) -> Organisation:
    organisation = Organisation.objects.create(name=name)
    if admin is not None:
        Membership.objects.create(user=admin, organisation=organisation, role=Membership.Role.ADMIN)
    return organisation


def membership_add(*, organisation: Organisation, user: AbstractBaseUser, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(organisation=organisation, user=user, defaults={"role": role})
    return membership


class OrganisationNameTaken(Exception):
    """Another organisation already has this name (names are unique, ignoring case)."""


class OrganisationNameLookalike(OrganisationNameTaken):
    """Another organisation's name looks the same (equal confusables skeletons: "Acme Cаre" and "Acme Care")."""


def organisation_rename(
    *, organisation: Organisation, name: str, actor: AbstractBaseUser | None = None
) -> Organisation:
    name = name.strip()
    others = Organisation.objects.exclude(pk=organisation.pk)
    if others.filter(name__iexact=name).exists():
        raise OrganisationNameTaken(name)
    if others.filter(name_skeleton=name_skeleton(name)).exists():
        raise OrganisationNameLookalike(name)
    previous, organisation.name = organisation.name, name
    try:
        with transaction.atomic():  # a rename racing this one lands on the constraint: still not a 500
            organisation.save(update_fields=["name"])
    except IntegrityError as exc:
        organisation.name = previous
        raise OrganisationNameTaken(name) from exc
    if previous != name:
        organisation_audit_record(
            organisation=organisation, actor=actor, action="organisation_renamed", detail={"from": previous, "to": name}
        )
    return organisation


def organisation_locale_set(
    *, organisation: Organisation, time_zone: str, locale: str, actor: AbstractBaseUser | None = None
) -> Organisation:
    """An admin's choice in Settings: from then on it wins over what Xero's Organisation says."""
    if (organisation.time_zone, organisation.locale) == (time_zone, locale):
        return organisation  # saved unchanged (the name was edited): Xero may still fill them
    organisation.time_zone, organisation.locale, organisation.locale_source = time_zone, locale, "settings"
    organisation.save(update_fields=["time_zone", "locale", "locale_source"])
    organisation_audit_record(
        organisation=organisation,
        actor=actor,
        action="organisation_locale_changed",
        detail={"time_zone": time_zone, "locale": locale},
    )
    return organisation


def organisation_locale_from_xero(*, organisation_id: int, time_zone: str, locale: str) -> bool:
    """Xero's time zone and locale for the organisation, unless an admin chose them in Settings. Only what Xero
    told us is written (an empty value keeps the current one). True when something changed."""
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation_id)
        if organisation.locale_source == "settings":
            return False
        changed = []
        if time_zone and organisation.time_zone != time_zone:
            organisation.time_zone = time_zone
            changed.append("time_zone")
        if locale and organisation.locale != locale:
            organisation.locale = locale
            changed.append("locale")
        if changed or (time_zone or locale) and organisation.locale_source != "xero":
            organisation.locale_source = "xero"
            organisation.save(update_fields=[*changed, "locale_source"])
        return bool(changed)


def support_request_create(
    *, user: AbstractBaseUser, organisation: Organisation | None, subject: str, message: str, page_url: str = ""
) -> SupportRequest:
    return SupportRequest.objects.create(
        user=user, organisation=organisation, subject=subject, message=message, page_url=page_url[:500]
    )


def support_request_reply(*, support_request: SupportRequest, author: AbstractBaseUser, message: str) -> SupportReply:
    """Support's answer, emailed to the person who sent the request (after commit) and kept with it."""
    sender = support_request.user
    with transaction.atomic():
        reply = SupportReply.objects.create(
            support_request=support_request, author=author, message=message, emailed_to=sender.email
        )
        if support_request.organisation_id:
            organisation_audit_record(
                organisation=support_request.organisation_id,
                actor=author,
                as_support=True,
                action="support_request_replied",
                detail={"email": sender.email, "subject": support_request.subject},
            )
        subject = f"Re: {support_request.subject}"
        body = (
            f"{message}\n\n"
            "— Coordinoter support\n\n"
            f"You wrote on {support_request.created_at:%d %B %Y}:\n"
            + "\n".join(f"> {line}" for line in support_request.message.splitlines())
            + "\n\nTo answer, use the help icon at the bottom right of any Coordinoter page.\n"
        )
        transaction.on_commit(lambda: send_mail(subject, body, None, [sender.email]))
    return reply


def support_request_resolve(*, support_request: SupportRequest) -> SupportRequest:
    support_request.status = SupportRequest.Status.RESOLVED
    support_request.save(update_fields=["status"])
    return support_request
