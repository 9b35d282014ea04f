import io

import pytest
from django.core.management import call_command

from invoices.models import Invoice, InvoiceBatch, InvoiceEvent
from organisations.models import Membership

pytestmark = pytest.mark.django_db

EXPECTED_OUTPUT = """Demo data ready. Logins (password for all: demo):
  admin@acme.test              admin of Acme Care, accountant of Bolt Services
  accountant@acme.test         accountant of Acme Care
  admin@bolt.test              admin of Bolt Services
  accountant@bolt.test         accountant of Bolt Services
  support@coordinoter.test     Coordinoter support staff (two-step code: manage.py totp_code support@coordinoter.test)
"""


def test_demo_batches_are_not_synced_and_output_unchanged_when_seeded_twice():
    for _ in range(2):
        out = io.StringIO()
        call_command("seed_demo", stdout=out, no_color=True)
        assert out.getvalue() == EXPECTED_OUTPUT
    assert InvoiceBatch.objects.count() == 4
    both = Membership.objects.filter(user__email="admin@acme.test").order_by("organisation__name")
    assert [(m.organisation.name, m.role) for m in both] == [("Acme Care", "admin"), ("Bolt Services", "accountant")]
    assert set(InvoiceBatch.objects.values_list("eligibility", flat=True)) == {"before_connection"}
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {"not_synced"}
    assert InvoiceEvent.objects.filter(kind="created").count() == Invoice.objects.count() == 12
    invoice = Invoice.objects.first()
    assert (
        invoice.subtotal == invoice.total
        and sum(line.quantity * line.unit_amount for line in invoice.lines.all()) == invoice.total
    )


def test_support_login_has_the_demo_authenticator_and_totp_code_prints_it_when_debug(db, settings):
    import pyotp
    from django.core.management import CommandError

    from invoices.management.commands.seed_demo import DEMO_TOTP_SECRET
    from organisations.models import TotpDevice

    call_command("seed_demo", stdout=io.StringIO())
    device = TotpDevice.objects.get(user__email="support@coordinoter.test")
    assert device.secret == DEMO_TOTP_SECRET and device.confirmed_at is not None
    settings.DEBUG = True
    out = io.StringIO()
    call_command("totp_code", "Support@Coordinoter.test", stdout=out)
    assert pyotp.TOTP(DEMO_TOTP_SECRET).verify(out.getvalue().strip(), valid_window=1)
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("totp_code", "support@coordinoter.test", stdout=io.StringIO())
