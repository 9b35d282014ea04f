"""What a person reads when the mapping page's reads of Xero fail: the same verdict the background acts on
(integrations/xero/errors.classify), told as a sentence (what happened, what to do)."""

import math

import pytest
from django.conf import settings
from django.urls import reverse

from integrations.models import XeroConnection
from invoices.services.mapping import MappingUnavailable, currencies_enabled, mapping_choices
from tests.factories import PASSWORD, make_connection

pytestmark = pytest.mark.django_db

ACCOUNTS_URL = f"{settings.XERO_API_URL}/Accounts"
CURRENCIES_URL = f"{settings.XERO_API_URL}/Currencies"
READS = [(mapping_choices, ACCOUNTS_URL), (currencies_enabled, CURRENCIES_URL)]


def unavailable(read, organisation) -> str:
    with pytest.raises(MappingUnavailable) as caught:
        read(organisation=organisation)
    return str(caught.value)


@pytest.mark.parametrize(("read", "url"), READS)
def test_concurrency_limit_says_the_wait_the_background_uses_when_xero_answers_429_concurrent(
    read, url, org_a, xero, enqueued
):
    """Xero's concurrency 429 clears as soon as a call in flight ends: the classifier retries in about a second,
    whatever Retry-After says (none here: read as 60)."""
    make_connection(organisation=org_a)
    xero.get(url, status=429, headers={"X-Rate-Limit-Problem": "concurrent"})
    wait = max(1, math.ceil(settings.XERO_RATE_MINUTE_SECONDS / 60))
    message = unavailable(read, org_a)
    assert f"Try again in {wait} second" in message
    assert "60 seconds" not in message


@pytest.mark.parametrize(("read", "url"), READS)
@pytest.mark.parametrize(
    ("status", "answer", "headers"),
    [
        (403, {"Title": "Forbidden", "Detail": "AuthenticationUnsuccessful"}, {}),  # the tenant's 403
        (403, {"Title": "Forbidden", "Detail": "You don't have permission to access this resource."}, {}),
        (403, {"Title": "Forbidden"}, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}),
    ],
    ids=["tenant-403", "permission-403", "missing-scope"],
)
def test_a_refusal_that_leaves_the_connection_connected_reads_as_a_refusal_when_xero_answers_403(
    read, url, status, answer, headers, org_a, xero, enqueued
):
    """A bounded refusal for the classifier (Retry, refused): Xero was reached and said no, so neither "couldn't
    reach Xero, try again in a minute" (an outage) nor "Xero needs reconnecting" (the connection is not marked)."""
    connection = make_connection(organisation=org_a)
    xero.get(url, status=status, json=answer, headers=headers)
    message = unavailable(read, org_a)
    assert "Xero refused" in message
    assert "couldn't reach" not in message and "needs reconnecting" not in message
    assert XeroConnection.objects.get(pk=connection.pk).status == XeroConnection.Status.ACTIVE


@pytest.mark.parametrize(("read", "url"), READS)
@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        # Refused for the classifier: Xero's own words, and sending it again would get the same answer.
        (400, {"Title": "Bad request", "Detail": "Çalışma alanı kapalı: Σ ß"}, "Çalışma alanı kapalı: Σ ß"),
        # Failed: stop and show it.
        (404, None, "Xero found nothing"),
    ],
    ids=["400", "404"],
)
def test_what_xero_said_is_shown_and_no_retry_is_promised_when_xero_refuses_or_finds_nothing(
    read, url, status, body, words, org_a, xero, enqueued
):
    make_connection(organisation=org_a)
    xero.get(url, status=status, json=body)
    message = unavailable(read, org_a)
    assert words in message
    assert "try again in a minute" not in message.lower() and "couldn't reach" not in message


@pytest.mark.parametrize(("read", "url"), READS)
def test_an_outage_still_reads_as_try_again_when_xero_answers_503(read, url, org_a, xero, enqueued):
    make_connection(organisation=org_a)
    xero.get(url, status=503)
    message = unavailable(read, org_a)
    assert "couldn't reach Xero just now" in message and "try again in a minute" in message
    assert message.endswith(".")  # the line checks quote it as a sentence


@pytest.mark.parametrize("read", [mapping_choices, currencies_enabled])
def test_an_admin_is_told_where_to_reconnect_when_the_grant_is_dead(read, org_a, xero):
    make_connection(organisation=org_a, status="needs_reconnect")
    message = unavailable(read, org_a)
    assert message.startswith("Xero needs reconnecting before we can read your")
    assert "Manage Integrations" in message
    assert len(xero.calls) == 0


@pytest.mark.parametrize(
    ("status", "answer", "said"),
    [
        (403, {"Title": "Forbidden", "Detail": "You don't have permission to access this resource."}, "Xero refused"),
        (400, {"Title": "Bad request", "Detail": "Organisation archived"}, "Organisation archived"),
    ],
    ids=["403", "400"],
)
def test_the_mapping_page_promises_no_retry_where_the_classifier_says_it_would_not_help(
    status, answer, said, client, admin_a, org_a, xero
):
    """The page's empty state said "Try again in a minute" under every failure, beside the banner saying Xero refused:
    it defers to the banner's advice instead."""
    make_connection(organisation=org_a)
    xero.get(ACCOUNTS_URL, status=status, json=answer)
    assert client.login(username=admin_a.email, password=PASSWORD)
    page = client.get(reverse("invoices:mapping")).content.decode()
    assert said in page
    assert "try again in a minute" not in page.lower()
