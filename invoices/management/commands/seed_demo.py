"""Demo data for `make run`: two organisations, their people, customers and a few invoice batches.

Safe to run again: it finds what it made before instead of making it twice.
"""

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceEvent, InvoiceLine
from invoices.services.batches import NOT_SYNCED_REASONS
from invoices.sync_states import sync_state_begin
from organisations.mfa.services import totp_device_set
from organisations.models import Membership, Organisation, TotpDevice
from organisations.roles import SUPPORT_GROUP

PASSWORD = "demo"  # noqa: S105 - the documented demo password, for local demo accounts only
# The support login's TOTP secret (organisations.mfa): fixed so `manage.py totp_code support@coordinoter.test` and
# the browser tests can compute its code; a demo account only, like the password above.
DEMO_TOTP_SECRET = "COORDINOTERDEMOSUPPORTSTAFFTOTP2"  # noqa: S105

# One login belongs to both organisations, so the organisation switcher (top bar) can be tried: admin of the first,
# accountant of the second.
BOTH = ("admin@acme.test", "Bolt Services", Membership.Role.ACCOUNTANT)

ORGANISATIONS = [
    ("Acme Care", "acme", "AUD", ["Harbour View Aged Care", "Wattle Street Clinic", "Blue Gum Family Practice"]),
    ("Bolt Services", "bolt", "GBP", ["Thames Facilities Ltd", "Northgate Logistics", "Kestrel Property Group"]),
]


class Command(BaseCommand):
    help = "Create the demo organisations, logins, customers and invoice batches (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        logins: list[tuple[str, str]] = []
        for org_name, slug, currency, customers in ORGANISATIONS:
            organisation, _ = Organisation.objects.get_or_create(name=org_name)
            for role in (Membership.Role.ADMIN, Membership.Role.ACCOUNTANT):
                email = f"{role}@{slug}.test"
                user = users.filter(email=email).first()
                if user is None:
                    user = users.create_user(
                        username=email,
                        email=email,
                        password=PASSWORD,
                        first_name=role.title(),
                        last_name=org_name.split()[0],
                    )
                Membership.objects.get_or_create(user=user, organisation=organisation, defaults={"role": role})
                logins.append((email, f"{role} of {org_name}"))
            self._seed_batches(organisation, currency, customers)

        email, org_name, role = BOTH
        Membership.objects.get_or_create(
            user=users.get(email=email), organisation=Organisation.objects.get(name=org_name), defaults={"role": role}
        )
        logins = [(e, f"{what}, {role} of {org_name}" if e == email else what) for e, what in logins]

        support = users.filter(email="support@coordinoter.test").first()
        if support is None:
            support = users.create_user(
                username="support@coordinoter.test",
                email="support@coordinoter.test",
                password=PASSWORD,
                first_name="Sam",
                last_name="Support",
                is_staff=True,
            )
        group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
        support.groups.add(group)
        if not TotpDevice.objects.filter(user=support).exists():
            totp_device_set(user=support, secret=DEMO_TOTP_SECRET)
        logins.append(
            (
                "support@coordinoter.test",
                "Coordinoter support staff (two-step code: manage.py totp_code support@coordinoter.test)",
            )
        )

        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (password for all: demo):"))
        for email, what in logins:
            self.stdout.write(f"  {email:<28} {what}")

    def _seed_batches(self, organisation: Organisation, currency: str, names: list[str]) -> None:
        if InvoiceBatch.objects.filter(organisation=organisation).exists():
            return
        customers = [
            Customer.objects.get_or_create(
                organisation=organisation, name=name, defaults={"email": f"accounts@{i}.example"}
            )[0]
            for i, name in enumerate(names, start=1)
        ]
        today = timezone.localdate()
        prefix = organisation.name.split()[0][:4].upper()
        number = 1
        for month_offset, label in ((2, "September"), (1, "October")):
            batch = InvoiceBatch.objects.create(
                organisation=organisation,
                name=f"{label} services",
                source=InvoiceBatch.Source.DEMO,
                eligibility=InvoiceBatch.Eligibility.BEFORE_CONNECTION,
            )
            issue = today - datetime.timedelta(days=30 * month_offset)
            for customer in customers:
                amount = Decimal(180 + 45 * number)
                invoice = Invoice.objects.create(
                    organisation=organisation,
                    batch=batch,
                    customer=customer,
                    number=f"{prefix}-{number:04d}",
                    reference=f"{label} {issue.year}",
                    currency=currency,
                    issue_date=issue,
                    due_date=issue + datetime.timedelta(days=14),
                    line_amount_types=Invoice.LineAmountTypes.NO_TAX,
                    subtotal=amount,
                    total=amount,
                    amount_due=amount,
                    sync_state=sync_state_begin(eligible=False),
                )
                InvoiceLine.objects.create(
                    invoice=invoice,
                    position=1,
                    description=f"{label} support hours",
                    quantity=Decimal("4"),
                    unit_amount=amount / 4,
                )
                # Made before any Xero connection, like a customer's first batches: they stay in Coordinoter.
                InvoiceEvent.objects.create(
                    invoice=invoice,
                    organisation=organisation,
                    source=InvoiceEvent.Source.COORDINOTER,
                    kind="created",
                    message=NOT_SYNCED_REASONS[InvoiceBatch.Eligibility.BEFORE_CONNECTION],
                    changes={"batch": batch.pk, "source": InvoiceBatch.Source.DEMO},
                )
                number += 1
