import pytest
from django.urls import reverse

from organisations.middleware import SESSION_KEY
from tests.factories import PASSWORD, make_batch, make_membership, mfa_verify_client

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def test_batch_detail_is_404_when_batch_belongs_to_another_organisation(client, admin_a, org_b):
    foreign = make_batch(organisation=org_b)
    response = login(client, admin_a).get(reverse("invoices:batch_detail", args=[foreign.pk]))
    assert response.status_code == 404


def test_batch_list_shows_only_own_rows_when_other_organisation_has_batches(client, admin_a, org_a, org_b):
    make_batch(organisation=org_a, name="Ours in A")
    make_batch(organisation=org_b, name="Theirs in B")
    body = login(client, admin_a).get(reverse("invoices:batch_list")).content.decode()
    assert "Ours in A" in body
    assert "Theirs in B" not in body


def test_dashboard_counts_only_own_invoices_when_other_organisation_has_failures(client, admin_a, org_b):
    make_batch(organisation=org_b, invoices=3, eligibility="eligible", sync_state="failed")
    response = login(client, admin_a).get(reverse("invoices:dashboard"))
    assert response.context["counts"]["failed"] == 0


def test_switch_is_refused_when_user_is_not_a_member(client, admin_a, org_a, org_b):
    login(client, admin_a).post(reverse("organisations:switch"), {"organisation": org_b.pk})
    assert client.session[SESSION_KEY] == org_a.pk


def test_switch_changes_current_organisation_when_user_is_member_of_both(client, admin_a, org_a, org_b):
    make_membership(user=admin_a, organisation=org_b, role="accountant")
    make_batch(organisation=org_b, name="Only in B")
    login(client, admin_a).post(reverse("organisations:switch"), {"organisation": org_b.pk})
    assert client.session[SESSION_KEY] == org_b.pk
    assert "Only in B" in client.get(reverse("invoices:batch_list")).content.decode()
    # The role follows the organisation: an accountant in B cannot reach B's settings.
    assert client.get(reverse("organisations:settings")).status_code == 403


def test_stale_session_organisation_falls_back_when_membership_was_removed(client, admin_a, org_a, org_b):
    membership = make_membership(user=admin_a, organisation=org_b)
    login(client, admin_a).post(reverse("organisations:switch"), {"organisation": org_b.pk})
    membership.delete()
    response = client.get(reverse("invoices:dashboard"))
    assert response.status_code == 200
    assert response.context["current_organisation"] == org_a


@pytest.mark.parametrize(
    "name",
    [
        "invoices:dashboard",
        "invoices:batch_list",
        "integrations:manage",
        "organisations:settings",
        "integrations:support_console",
    ],
)
def test_page_redirects_to_login_when_anonymous(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_settings_is_403_when_user_is_accountant(client, accountant_a):
    assert login(client, accountant_a).get(reverse("organisations:settings")).status_code == 403


def test_settings_saves_name_when_user_is_admin(client, admin_a, org_a):
    response = login(client, admin_a).post(reverse("organisations:settings"), {"name": "Renamed Ltd"})
    assert response.status_code == 302
    org_a.refresh_from_db()
    assert org_a.name == "Renamed Ltd"


def test_support_console_is_403_when_user_is_an_org_admin(client, admin_a):
    assert login(client, admin_a).get(reverse("integrations:support_console")).status_code == 403


def test_support_staff_land_on_console_when_they_belong_to_no_organisation(client, support_user):
    response = login(client, support_user).get(reverse("invoices:dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("integrations:support_console")


def test_staff_without_support_role_are_refused_console_when_only_is_staff(client, db):
    from tests.factories import make_user

    staff = make_user(email="staff@coordinoter.test")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    login(client, staff)
    mfa_verify_client(client, staff)  # past the second factor: the role check itself refuses
    assert client.get(reverse("integrations:support_console")).status_code == 403


def test_user_without_membership_sees_explanation_when_opening_portal(client, db):
    from tests.factories import make_user

    loner = make_user()
    response = login(client, loner).get(reverse("invoices:dashboard"), follow=True)
    assert b"not in an organisation yet" in response.content


def test_rename_shows_an_error_when_another_organisation_has_the_name(client, admin_a, org_a, org_b):
    response = login(client, admin_a).post(reverse("organisations:settings"), {"name": "org b"})
    assert response.status_code == 422
    assert b"Another organisation already uses that name" in response.content
    org_a.refresh_from_db()
    assert org_a.name == "Org A"
