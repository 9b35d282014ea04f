from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404

from organisations.models import Membership, Organisation, SupportRequest


def membership_list_for_user(*, user: AbstractBaseUser) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("organisation").order_by("organisation__name"))


def membership_list_for_organisation(*, organisation: Organisation) -> QuerySet[Membership]:
    return Membership.objects.filter(organisation=organisation).select_related("user").order_by("role", "user__email")


def organisation_admin_emails(*, organisation: Organisation) -> list[str]:
    return list(
        Membership.objects.filter(organisation=organisation, role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def support_request_list(*, status: str | None = None, query: str = "") -> QuerySet[SupportRequest]:
    """Support requests, newest first; `query` searches subject, message, sender, organisation name and id."""
    qs = SupportRequest.objects.select_related("organisation", "organisation__xero_connection", "user")
    if status:
        qs = qs.filter(status=status)
    if query:
        match = (
            Q(subject__icontains=query)
            | Q(message__icontains=query)
            | Q(user__email__icontains=query)
            | Q(organisation__name__icontains=query)
        )
        if query.isascii() and query.isdigit() and len(query) < 19:
            match |= Q(organisation_id=int(query))
        qs = qs.filter(match)
    return qs.order_by("-created_at", "-pk")


def invitation_list_pending(*, organisation: Organisation) -> list:
    """Invitations not yet accepted nor withdrawn (expired ones too: an admin may send them again)."""
    from organisations.models import Invitation

    return list(
        Invitation.objects.filter(organisation=organisation, accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def membership_get(*, organisation: Organisation, pk: int) -> Membership:
    """The organisation's member by id; another organisation's id is a 404."""
    membership = Membership.objects.select_related("user").filter(organisation=organisation, pk=pk).first()
    if membership is None:
        raise Http404("No such member.")
    return membership
