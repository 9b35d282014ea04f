"""People: invitations (single use, expiry, hashed token), roles, removal, the last admin, and the audit trail."""

import datetime as dt
import hashlib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from organisations.audit import audit_trail
from organisations.models import Invitation, Membership, OrganisationAuditEvent
from organisations.people.services import LastAdmin, invitation_accept, membership_remove, membership_role_change
from tests.factories import PASSWORD, make_membership, make_user

pytestmark = pytest.mark.django_db


def _invite(client, email="Zoe.Unal@bäckerei.test", role="accountant"):
    response = client.post(reverse("organisations:people_invite"), {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()


def _link(mailoutbox) -> str:
    body = mailoutbox[-1].body
    return re.search(r"http://\S+/invitations/(\S+)/", body).group(0)


def test_invitation_stores_only_the_token_hash_and_emails_the_link_when_an_admin_invites(
    login_as, admin_a, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    client = login_as(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client)
    invitation = Invitation.objects.get()
    link = _link(mailoutbox)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert mailoutbox[-1].to == ["Zoe.Unal@bäckerei.test"]
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.values().get())
    assert invitation.expires_at > timezone.now() + dt.timedelta(days=6)
    event = OrganisationAuditEvent.objects.get(organisation=org_a)
    assert event.action == "invitation_sent" and token not in str(event.detail)


def test_invitee_signs_up_and_joins_when_the_address_has_no_account(
    client, login_as, admin_a, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(login_as(admin_a))
    link = _link(mailoutbox)
    client.logout()
    page = client.get(link)
    assert page.status_code == 200 and "Create account and join" in page.content.decode()
    response = client.post(
        link,
        {"first_name": "Zoë", "last_name": "Ünal", "password1": "grüne Äpfel 2026", "password2": "grüne Äpfel 2026"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("invoices:dashboard")
    membership = Membership.objects.get(organisation=org_a, user__email="Zoe.Unal@bäckerei.test")
    assert membership.role == "accountant"
    assert client.get(reverse("invoices:dashboard")).status_code == 200  # signed in
    assert Invitation.objects.get().accepted_by == membership.user


def test_invitation_link_is_refused_when_used_a_second_time(
    client, login_as, admin_a, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(login_as(admin_a))
    link = _link(mailoutbox)
    client.logout()
    client.post(link, {"password1": "grüne Äpfel 2026", "password2": "grüne Äpfel 2026"})
    client.logout()
    again = client.get(link)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    token = link.rstrip("/").rsplit("/", 1)[1]
    other = make_user(email="other@example.test")
    with pytest.raises(Exception, match="already been used"):
        invitation_accept(token=token, user=other)


def test_invitation_link_is_refused_when_expired(
    client, login_as, admin_a, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(login_as(admin_a))
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    client.logout()
    response = client.post(_link(mailoutbox), {"password1": "grüne Äpfel 2026", "password2": "grüne Äpfel 2026"})
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert not Membership.objects.filter(user__email="Zoe.Unal@bäckerei.test").exists()


def test_unknown_invitation_link_is_404_when_the_token_is_wrong(client, db):
    assert client.get("/invitations/not-a-real-token-at-all-000000000000/").status_code == 404


def test_existing_account_signs_in_with_its_password_when_invited(
    client, login_as, admin_a, admin_b, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(login_as(admin_a), email="ADMIN@B.TEST", role="admin")
    link = _link(mailoutbox)
    client.logout()
    assert "Sign in and join" in client.get(link).content.decode()
    wrong = client.post(link, {"password": "not it"})
    assert wrong.status_code == 422 and not Membership.objects.filter(organisation=org_a, user=admin_b).exists()
    response = client.post(link, {"password": PASSWORD})
    assert response.status_code == 302
    assert Membership.objects.get(organisation=org_a, user=admin_b).role == "admin"


def test_signed_in_person_cannot_accept_when_the_invitation_names_another_address(
    client, login_as, admin_a, admin_b, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(login_as(admin_a), email="someone.else@example.test")
    link = _link(mailoutbox)
    client.logout()
    login_as(admin_b)
    response = client.post(link)
    assert response.status_code == 409 and "is for someone.else@example.test" in response.content.decode()
    assert not Membership.objects.filter(organisation=org_a, user=admin_b).exists()


def test_inviting_is_refused_when_the_address_is_already_a_member(login_as, admin_a, accountant_a, org_a):
    response = login_as(admin_a).post(
        reverse("organisations:people_invite"), {"email": "ACCOUNTANT@a.test", "role": "admin"}
    )
    assert response.status_code == 422 and "already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_accountant_cannot_invite_change_roles_or_remove_when_not_admin(login_as, accountant_a, admin_a, org_a):
    client = login_as(accountant_a)
    admin_membership = Membership.objects.get(user=admin_a)
    assert client.get(reverse("organisations:people")).status_code == 403
    assert (
        client.post(reverse("organisations:people_invite"), {"email": "x@y.test", "role": "admin"}).status_code == 403
    )
    assert client.post(reverse("organisations:people_remove", args=[admin_membership.pk])).status_code == 403
    assert Membership.objects.filter(pk=admin_membership.pk).exists()


def test_last_admin_cannot_be_removed_or_demoted_when_alone(login_as, admin_a, accountant_a, org_a):
    mine = Membership.objects.get(user=admin_a)
    client = login_as(admin_a)
    response = client.post(reverse("organisations:people_remove", args=[mine.pk]), follow=True)
    assert "the only admin of Org A" in response.content.decode()
    client.post(reverse("organisations:people_role", args=[mine.pk]), {"role": "accountant"})
    mine.refresh_from_db()
    assert mine.role == "admin"
    with pytest.raises(LastAdmin):
        membership_role_change(organisation=org_a, pk=mine.pk, role="accountant", actor=admin_a)
    with pytest.raises(LastAdmin):
        membership_remove(organisation=org_a, pk=mine.pk, actor=admin_a)


def test_admin_can_step_down_when_another_admin_remains(login_as, admin_a, accountant_a, org_a):
    other = Membership.objects.get(user=accountant_a)
    client = login_as(admin_a)
    client.post(reverse("organisations:people_role", args=[other.pk]), {"role": "admin"})
    mine = Membership.objects.get(user=admin_a)
    response = client.post(reverse("organisations:people_role", args=[mine.pk]), {"role": "accountant"})
    assert response["Location"] == reverse("invoices:dashboard")
    assert Membership.objects.get(user=admin_a).role == "accountant"
    with pytest.raises(LastAdmin):
        membership_remove(organisation=org_a, pk=other.pk, actor=accountant_a)


def test_another_organisations_member_id_is_404_when_changing_roles_or_removing(login_as, admin_a, admin_b, org_a):
    theirs = Membership.objects.get(user=admin_b)
    client = login_as(admin_a)
    assert client.post(reverse("organisations:people_remove", args=[theirs.pk])).status_code == 404
    assert (
        client.post(reverse("organisations:people_role", args=[theirs.pk]), {"role": "accountant"}).status_code == 404
    )
    assert Membership.objects.filter(pk=theirs.pk, role="admin").exists()


def test_every_people_change_is_in_the_audit_trail_in_words_when_admins_read_it(
    login_as, admin_a, accountant_a, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    client = login_as(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, email="new@example.test", role="admin")
    other = Membership.objects.get(user=accountant_a)
    client.post(reverse("organisations:people_role", args=[other.pk]), {"role": "admin"})
    client.post(reverse("organisations:people_remove", args=[other.pk]))
    client.post(reverse("organisations:people_invitation_revoke", args=[Invitation.objects.get().pk]))
    texts = [entry.text for entry in audit_trail(org_a)[:10]]
    assert texts == [
        "Withdrew the invitation of new@example.test",
        "Removed accountant@a.test (Admin) from the organisation",
        "Changed accountant@a.test's role from Accountant to Admin",
        "Invited new@example.test as Admin",
    ]
    body = client.get(reverse("organisations:audit")).content.decode()
    assert "Changed accountant@a.test&#x27;s role from Accountant to Admin" in body
    assert "role_changed" not in body and "invitation_sent" not in body


def test_audit_trail_merges_xero_events_in_words_when_the_connection_changed(login_as, admin_a, org_a):
    from integrations.audit import audit_event_record

    audit_event_record(
        organisation=org_a, action="disconnect_requested", actor=admin_a, detail={"tenant_name": "Ma Boulangerie"}
    )
    make_membership(user=make_user(email="x@a.test"), organisation=org_a, role="accountant")
    body = login_as(admin_a).get(reverse("organisations:audit")).content.decode()
    assert "Disconnected from Xero (“Ma Boulangerie”)" in body
    assert "disconnect_requested" not in body


def test_failure_emails_opt_out_is_saved_and_audited_when_an_admin_unticks_it(login_as, admin_a, org_a):
    client = login_as(admin_a)
    client.post(reverse("organisations:failure_emails"), {})
    assert Membership.objects.get(user=admin_a).failure_emails is False
    assert "Turned off the failure digest emails" in [e.text for e in audit_trail(org_a)[:5]]
    client.post(reverse("organisations:failure_emails"), {"enabled": "on"})
    assert Membership.objects.get(user=admin_a).failure_emails is True
