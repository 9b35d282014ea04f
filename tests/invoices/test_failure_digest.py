"""One digest email to the admins when invoices fail or need attention, not one per invoice; an opt-out."""

import datetime as dt

import pytest
from django.utils import timezone

from invoices import tasks
from invoices.models import Invoice
from invoices.services.digest import failure_digest_organisation_ids, failure_digest_send
from organisations.models import Membership, Organisation
from tests.factories import make_batch, make_membership, make_user

pytestmark = pytest.mark.django_db


def _fail(batch, count: int, state: str = "failed", errors=("Contact “Café Müller” is archived",)) -> list[int]:
    ids = list(batch.invoices.order_by("pk").values_list("pk", flat=True)[:count])
    Invoice.objects.filter(pk__in=ids).update(sync_state=state, sync_errors=list(errors), updated_at=timezone.now())
    return ids


def test_one_digest_lists_every_new_failure_when_several_invoices_fail(org_a, admin_a, accountant_a, mailoutbox):
    batch = make_batch(organisation=org_a, name="Dezember – Straße", invoices=5, eligibility="eligible")
    _fail(batch, 3)
    Invoice.objects.filter(pk=batch.invoices.order_by("pk").last().pk).update(
        sync_state="needs_attention", updated_at=timezone.now()
    )
    assert tasks.failure_digest_all.run() == 1
    [mail] = mailoutbox
    assert mail.to == ["admin@a.test"]  # admins only
    assert mail.subject == "Org A: 4 invoices failed or need attention"
    assert "3 failed and 1 need attention" in mail.body and "Contact “Café Müller” is archived" in mail.body
    assert mail.body.count("batch “Dezember – Straße”") == 4


def test_nothing_is_sent_again_when_no_invoice_failed_since_the_last_digest(org_a, admin_a, mailoutbox):
    batch = make_batch(organisation=org_a, invoices=3, eligibility="eligible")
    _fail(batch, 1)
    assert tasks.failure_digest_all.run() == 1
    assert tasks.failure_digest_all.run() == 0
    assert len(mailoutbox) == 1
    later = timezone.now() + dt.timedelta(seconds=1)
    Invoice.objects.filter(pk=batch.invoices.order_by("pk").last().pk).update(sync_state="failed", updated_at=later)
    assert failure_digest_send(organisation_id=org_a.pk, now=later + dt.timedelta(seconds=1)) == 1
    assert len(mailoutbox) == 2 and "1 failed" in mailoutbox[1].body


def test_admin_who_opted_out_gets_no_digest_when_invoices_fail(org_a, admin_a, mailoutbox):
    other = make_user(email="second.admin@a.test")
    make_membership(user=other, organisation=org_a, role="admin")
    Membership.objects.filter(user=admin_a).update(failure_emails=False)
    _fail(make_batch(organisation=org_a, invoices=1, eligibility="eligible"), 1)
    tasks.failure_digest_all.run()
    assert [m.to for m in mailoutbox] == [["second.admin@a.test"]]


def test_each_organisation_gets_its_own_digest_when_both_have_failures(org_a, org_b, admin_a, admin_b, mailoutbox):
    _fail(make_batch(organisation=org_a, invoices=1, eligibility="eligible"), 1)
    _fail(make_batch(organisation=org_b, invoices=2, eligibility="eligible"), 2)
    assert sorted(failure_digest_organisation_ids()) == sorted([org_a.pk, org_b.pk])
    tasks.failure_digest_all.run()
    by_recipient = {m.to[0]: m for m in mailoutbox}
    assert set(by_recipient) == {"admin@a.test", "admin@b.test"}
    assert "Org B" not in by_recipient["admin@a.test"].body


def test_old_failures_are_not_mailed_when_the_first_digest_runs(org_a, admin_a, mailoutbox):
    batch = make_batch(organisation=org_a, invoices=1, eligibility="eligible")
    Invoice.objects.filter(batch=batch).update(sync_state="failed", updated_at=timezone.now() - dt.timedelta(days=3))
    assert tasks.failure_digest_all.run() == 0
    assert mailoutbox == []


def test_digest_is_in_the_audit_trail_when_sent(org_a, admin_a, mailoutbox):
    from organisations.audit import audit_trail

    _fail(make_batch(organisation=org_a, invoices=2, eligibility="eligible"), 2)
    tasks.failure_digest_all.run()
    assert (
        audit_trail(Organisation.objects.get(pk=org_a.pk))[0].text
        == "Emailed the failure digest (2 invoices) to 1 admins"
    )
