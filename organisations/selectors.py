from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

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


def support_request_list(*, status: str | None = None) -> QuerySet[SupportRequest]:
    qs = SupportRequest.objects.select_related("organisation", "user")
    if status:
        qs = qs.filter(status=status)
    return qs
