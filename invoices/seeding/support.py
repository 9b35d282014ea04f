"""Support staff (support@scale.test, password `demo`) and open support requests from the first 50 organisations."""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from organisations.models import Membership, SupportRequest
from organisations.roles import SUPPORT_GROUP


def support_seed(*, orgs: list[tuple[int, str]]) -> None:
    user_model = get_user_model()
    support, _ = user_model.objects.get_or_create(
        username="support@scale.test",
        defaults={"email": "support@scale.test", "is_staff": True, "password": make_password("demo")},
    )
    support.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
    admins = dict(
        Membership.objects.filter(role="admin", organisation_id__in=[o for o, _ in orgs[:50]]).values_list(
            "organisation_id", "user_id"
        )
    )
    SupportRequest.objects.bulk_create(
        [
            SupportRequest(
                organisation_id=oid,
                user_id=admins[oid],
                subject=f"Invoices from {name} not in Xero",
                message="Some invoices of our last batch did not arrive in Xero.",
                page_url="/batches/",
            )
            for oid, name in orgs[:50]
            if oid in admins
        ]
    )
