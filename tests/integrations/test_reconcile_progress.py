"""Every reconciliation pass gets further while a tenant stays busy: through a burst of our own push longer than a
pass, with invoices of that push edited in Xero meanwhile and more than a page of other changes arriving during each
pass. An earlier attempt at reading the record a page number could skip in a burst (8cbafed: remember what was passed
by number, go back or claim less when one of those moved) stopped every pass short in both cases here; paging by id
(tests/integrations/test_reconcile_paging.py) goes on at the page the last pass reached."""

import datetime as dt

import responses
from django.utils import timezone

from integrations.models import ReconciliationState
from integrations.services import reconciliation
from invoices.created_in_xero.models import XeroCreatedInvoice
from tests.integrations import test_webhooks_processing as processing
from tests.integrations.test_webhooks_processing import API, HELD, ChangingXeroInvoices, xero_invoice

no_limiter, org = processing.no_limiter, processing.org  # that module's fixtures (the limiter off; an organisation)


def polled(xero: ChangingXeroInvoices) -> ChangingXeroInvoices:
    """Xero's invoices as `xero` pages them, and no contacts, for the reconciliation's GETs."""
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    return xero


def dense_burst(count: int, *, per_second: int) -> list[dict]:
    """`count` invoices changed in Xero `per_second` a second (our own push), five minutes after HELD."""
    at = int((HELD + dt.timedelta(minutes=5)).timestamp() * 1000)
    return [
        xero_invoice(f"aaaaaaaa-0000-4000-8000-{i:012d}", InvoiceNumber=f"X-{i}")
        | {"UpdatedDateUTC": f"/Date({at + i * 1000 // per_second}+0000)/"}
        for i in range(count)
    ]


def _ms(at: dt.datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)}+0000)/"


def burst_then_trickle(trickle: int) -> list[dict]:
    """Our push (X-0..X-249, 100 a second from 09:05) and then, from 09:10, one other change every 10 seconds."""
    start = HELD + dt.timedelta(minutes=10)
    return dense_burst(250, per_second=100) + [
        xero_invoice(f"cccccccc-0000-4000-8000-{i:012d}", InvoiceNumber=f"T-{i}")
        | {"UpdatedDateUTC": _ms(start + dt.timedelta(seconds=10 * i))}
        for i in range(trickle)
    ]


class PerPass:
    """`between` that runs `act(xero, n)` once in each pass, after that pass's `after`-th answer."""

    def __init__(self, after: int, act):
        self.after, self.act, self.start, self.n, self.done = after, act, 0, 0, True

    def next_pass(self, xero):
        self.start, self.done = len(xero.asked), False

    def __call__(self, xero):
        if not self.done and len(xero.asked) - self.start == self.after:
            self.done = True
            self.act(xero, self.n)
            self.n += 1


def reached_over_passes(org, xero, per_pass: PerPass, passes: int) -> list[str]:
    """After each pass, the category and page the next one goes on at, or "done" when the window was read to its
    end."""
    reached: list[str] = []
    for _ in range(passes):
        per_pass.next_pass(xero)
        reconciliation.reconciliation_run(organisation_id=org.pk)
        state = ReconciliationState.objects.get(organisation=org)
        reached.append(f"{state.resume_category} {state.resume_page}" if state.resume_since is not None else "done")
    return reached


@responses.activate
def test_a_pushed_invoice_paid_after_the_pass_left_the_burst_does_not_stop_every_pass_short(org, monkeypatch):
    """Our push and a trickle of changes after it, 13 pages: once in each pass, someone pays one of the pushed
    invoices in Xero. Each pass goes on at the page the last reached (8cbafed claimed up to the second before the paid
    invoice, before the push, every time), and the next window reads the invoices paid meanwhile."""
    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 6)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = burst_then_trickle(1000)

    def paid_in_xero(xero, n):
        number = 10 + n  # a different pushed invoice each pass
        invoices[number] = invoices[number] | {
            "Status": "PAID",
            "AmountPaid": 110.0,
            "AmountDue": 0.0,
            "UpdatedDateUTC": _ms(timezone.now()),
        }

    per_pass = PerPass(after=4, act=paid_in_xero)  # after the pass's 4th answer: the 2nd page asked by date
    xero = polled(ChangingXeroInvoices(invoices, between=per_pass))
    reached = reached_over_passes(org, xero, per_pass, passes=4)
    assert reached == ["INVOICE 7", "INVOICE 13", "done", "done"]
    assert [page for _, page in xero.asked[:13]] == list(range(1, 14))  # no page asked twice in the window
    read = set(XeroCreatedInvoice.objects.filter(organisation=org).values_list("number", flat=True))
    assert {f"X-{i}" for i in range(250)} | {f"T-{i}" for i in range(1000)} <= read
    paid = XeroCreatedInvoice.objects.filter(organisation=org, number__in=["X-10", "X-11"])
    assert set(paid.values_list("status", flat=True)) == {"PAID"}  # paid during passes 1 and 2, read by the 4th


@responses.activate
def test_a_busy_tenant_gets_past_a_burst_longer_than_a_pass(org, monkeypatch):
    """A burst longer than a pass (1000 of our invoices at 100 a second), and a tenant busy enough that more than a
    page of other changes land in Xero while each pass runs. The last call's page was full every time under 8cbafed,
    so every pass claimed only up to the second before its first page (09:04:59) and X-300 onwards were never read;
    paged by id, each pass reads four pages further than the last, and the window ends."""
    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 4)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = dense_burst(1000, per_second=100)

    def busy_in_xero(xero, n):
        now = int(timezone.now().timestamp() * 1000)
        invoices.extend(
            xero_invoice(f"bbbbbbbb-0000-4000-8{n:03d}-{i:012d}", InvoiceNumber=f"N-{n}-{i}")
            | {"UpdatedDateUTC": f"/Date({now + i}+0000)/"}
            for i in range(150)
        )

    per_pass = PerPass(after=1, act=busy_in_xero)
    xero = polled(ChangingXeroInvoices(invoices, between=per_pass))
    reached = reached_over_passes(org, xero, per_pass, passes=4)
    read = set(XeroCreatedInvoice.objects.filter(organisation=org).values_list("number", flat=True))
    assert reached == ["INVOICE 5", "INVOICE 9", "INVOICE 13", "CONTACT 1"]  # invoices read to their end
    assert {f"X-{i}" for i in range(1000)} <= read
