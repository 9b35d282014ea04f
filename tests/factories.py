"""Small `make_*` factories: the data a test needs, said in the test."""

import datetime
import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceLine
from organisations.models import Membership, Organisation
from organisations.roles import SUPPORT_GROUP

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_organisation(*, name: str | None = None) -> Organisation:
    return Organisation.objects.create(name=name or f"Organisation {next(_seq)}")


def make_user(*, email: str | None = None, password: str = PASSWORD, support: bool = False):
    email = email or f"user{next(_seq)}@example.test"
    user = get_user_model().objects.create_user(username=email, email=email, password=password, is_staff=support)
    if support:
        user.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
    return user


def make_membership(*, user, organisation: Organisation, role: str = "admin") -> Membership:
    return Membership.objects.create(user=user, organisation=organisation, role=role)


def make_customer(*, organisation: Organisation, name: str | None = None) -> Customer:
    return Customer.objects.create(organisation=organisation, name=name or f"Customer {next(_seq)}")


def make_batch(*, organisation: Organisation, name: str | None = None, invoices: int = 1,
               eligibility: str = InvoiceBatch.Eligibility.BEFORE_CONNECTION,
               sync_state: str = Invoice.SyncState.NOT_SYNCED) -> InvoiceBatch:
    batch = InvoiceBatch.objects.create(organisation=organisation, name=name or f"Batch {next(_seq)}",
                                        eligibility=eligibility)
    customer = make_customer(organisation=organisation)
    for _ in range(invoices):
        n = next(_seq)
        invoice = Invoice.objects.create(
            organisation=organisation, batch=batch, customer=customer, number=f"INV-{n:05d}",
            issue_date=datetime.date(2026, 11, 1), due_date=datetime.date(2026, 11, 15),
            total=Decimal("110.00"), amount_due=Decimal("110.00"), sync_state=sync_state,
        )
        InvoiceLine.objects.create(invoice=invoice, description="Service", quantity=Decimal("1"),
                                   unit_amount=Decimal("100.00"))
    return batch
