"""Property-based tests (Hypothesis, issue 13): whatever a client sends to the webhook receiver, the CSV parser or
any list page's query parameters, the answer is never a 5xx (and the parser never raises). Each property has a
fixed example budget and a fixed seed, so `make test` stays fast and repeatable; a failure prints the smallest
input that breaks it."""

import json
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.xero.signatures import webhook_signature
from invoices.csv_import.columns import COLUMNS
from invoices.csv_import.parse import parse_batch_csv
from tests.factories import (
    PASSWORD,
    TENANT_ID,
    make_batch,
    make_connection,
    make_membership,
    make_organisation,
    make_user,
    make_xero_event,
    mfa_verify_client,
)

pytestmark = pytest.mark.django_db(transaction=False)

BUDGET = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEY = "property-webhook-key"

# Text as hostile as Unicode allows: controls, NUL, lone surrogates, look-alikes, right-to-left marks, digits of
# other scripts, and the names of real customers.
HOSTILE = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),
    max_size=40,
) | st.sampled_from(
    [
        "",
        "\x00",
        "\ud800",
        "²",
        "٣",
        "-1",
        "0",
        "99999999999999999999",
        "1" * 300,
        "İ",
        "ß",
        "Σ",
        "株式会社",
        "'; --",
        "%",
    ]
)
JSON_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40) | st.floats() | HOSTILE
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(HOSTILE, children, max_size=4),
    max_leaves=20,
)
EVENT_FIELDS = ["tenantId", "resourceId", "eventCategory", "eventType", "eventDateUtc", "tenantType", "resourceUrl"]


@st.composite
def deliveries(draw) -> bytes:
    """A body Xero might sign: mostly the right shape, with any field replaced by anything."""
    events = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        event = make_xero_event(tenant_id=TENANT_ID)
        for name in draw(st.lists(st.sampled_from(EVENT_FIELDS), max_size=3, unique=True)):
            if draw(st.booleans()):
                event.pop(name)
            else:
                event[name] = draw(JSON_VALUES)
        events.append(event if draw(st.integers(0, 9)) else draw(JSON_VALUES))
    payload = {"events": events, "firstEventSequence": draw(JSON_SCALARS), "lastEventSequence": 1}
    if draw(st.integers(0, 9)) == 0:
        payload = draw(JSON_VALUES)
    text = json.dumps(payload, ensure_ascii=draw(st.booleans()))
    body = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.binary(max_size=200))
    if draw(st.integers(0, 19)) == 0:
        depth = draw(st.integers(min_value=500, max_value=5000))
        body = b'{"events": [' + b"[" * depth + b"]" * depth + b"]}"
    return body


@pytest.fixture
def receiver(settings):
    settings.XERO_WEBHOOK_KEY = KEY
    settings.XERO_WEBHOOK_KEY_PREVIOUS = ""
    make_connection(organisation=make_organisation(name="Maple Florists"))
    return Client()


@BUDGET
@given(body=deliveries())
def test_webhook_receiver_never_answers_5xx_when_any_signed_body_arrives(receiver, body):
    response = receiver.post(
        "/integrations/xero/webhooks/",
        data=body,
        content_type="application/json",
        HTTP_X_XERO_SIGNATURE=webhook_signature(body=body, key=KEY),
    )
    assert response.status_code == 200  # signed: always acknowledged, so Xero never retries it forever


@BUDGET
@given(body=st.binary(max_size=300), signature=HOSTILE)
def test_webhook_receiver_never_answers_5xx_when_the_signature_is_anything(receiver, body, signature):
    response = receiver.post(
        "/integrations/xero/webhooks/", data=body, content_type="application/json", HTTP_X_XERO_SIGNATURE=signature
    )
    assert response.status_code in (200, 401)


# ---------------------------------------------------------------- the CSV parser

HEADER = [name for name, _required, _help in COLUMNS]
CELL = HOSTILE | st.sampled_from(["2026-11-01", "2026-02-30", "AUD", "1e400", "NaN", "-0", "1,5", "12.34567", "Inf"])


@st.composite
def csv_files(draw) -> bytes:
    columns = draw(st.permutations(HEADER).map(lambda c: c[: draw(st.integers(1, len(HEADER)))]))
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=6))
    lines = [",".join(columns)] + [",".join(json.dumps(cell, ensure_ascii=False) for cell in row) for row in rows]
    text = "\r\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    body = text.encode(encoding, "replace") if encoding != "utf-8" else text.encode("utf-8", "surrogatepass")
    return draw(st.just(body) | st.binary(max_size=300))


@BUDGET
@given(raw=csv_files())
def test_csv_parser_reports_errors_instead_of_raising_when_the_file_is_anything(raw):
    result = parse_batch_csv(raw)
    assert result.ok or all(error.message for error in result.errors)


# ---------------------------------------------------------------- every list page's query parameters

PARAMS = st.dictionaries(
    st.sampled_from(["q", "state", "page", "ids", "rq", "rpage", "next", "sort"]) | HOSTILE,
    HOSTILE | st.integers(min_value=-(10**30), max_value=10**30).map(str),
    max_size=4,
)


@pytest.fixture
def world(db):
    organisation = make_organisation(name="Acme Care")
    make_connection(organisation=organisation)
    admin = make_user(email="admin@acme.test")
    make_membership(user=admin, organisation=organisation, role="admin")
    support = make_user(email="support@coordinoter.test", support=True)
    batch = make_batch(organisation=organisation, invoices=3)
    member, staff = Client(), Client()
    member.login(username=admin.email, password=PASSWORD)
    staff.login(username=support.email, password=PASSWORD)
    mfa_verify_client(staff, support)  # past the second factor, so the support pages' own parsing is what is tried
    member_urls = [
        "/portal/",
        "/batches/",
        f"/batches/{batch.pk}/",
        f"/batches/{batch.pk}/progress/",
        "/invoices/created-in-xero/",
        "/invoices/xero-states/",
        "/integrations/",
        "/settings/",
        "/settings/xero-mapping/",
    ]
    support_urls = [
        "/support/",
        f"/support/organisations/{organisation.pk}/",
        "/support/webhooks/",
        f"/support/organisations/{organisation.pk}/webhooks/",
    ]
    return [(member, url) for url in member_urls] + [(staff, url) for url in support_urls]


PAGES = 13


@pytest.mark.parametrize("which", range(PAGES))
@settings(BUDGET, max_examples=40)
@given(params=PARAMS)
def test_list_pages_never_answer_5xx_when_query_parameters_are_anything(world, which, params):
    assert len(world) == PAGES
    client, url = world[which]
    # The exact bytes on the wire, lone surrogates and all (the test client would refuse to encode those itself).
    query = "&".join(
        f"{quote(key.encode('utf-8', 'surrogatepass'))}={quote(value.encode('utf-8', 'surrogatepass'))}"
        for key, value in params.items()
    )
    response = client.get(f"{url}?{query}")
    assert response.status_code < 500, (url, params)


def test_property_budget_is_fixed_when_make_test_runs():
    assert BUDGET.max_examples <= 100 and BUDGET.derandomize and BUDGET.deadline is None
