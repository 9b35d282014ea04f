"""The one classifier of failed Xero calls and the one backoff policy."""

import datetime as dt

import pytest

from integrations.xero.errors import (
    Failed,
    Refused,
    Retry,
    WaitForConnection,
    backoff_seconds,
    classify,
    describe,
    key_remembered,
)
from integrations.xero.exceptions import (
    XeroAuthError,
    XeroInsufficientScope,
    XeroNeedsReconnect,
    XeroNotConnected,
    XeroNotFound,
    XeroRateLimited,
    XeroRequestError,
    XeroServerError,
    XeroTenantDisconnected,
    XeroTimeout,
    XeroValidationError,
)
from integrations.xero.ratelimit import RateLimitWait


def test_rate_limits_wait_what_they_name():
    assert classify(XeroRateLimited("429", retry_after=37, problem="minute"), attempt=1) == Retry(
        after=37.0, reason="429", rate_limited=True
    )
    assert classify(RateLimitWait(1.25, problem="minute"), attempt=1).after == 1.25


def test_concurrency_refusal_waits_about_a_second(settings):
    verdict = classify(XeroRateLimited("429", retry_after=60, problem="concurrent"), attempt=1)
    assert verdict.after == pytest.approx(settings.XERO_RATE_MINUTE_SECONDS / 60)


def test_5xx_and_lost_answers_are_retried_as_outcome_unknown(settings):
    settings.XERO_RETRY_BASE_SECONDS, settings.XERO_RETRY_MAX_SECONDS = 2, 300
    server = classify(XeroServerError("503", status=503, retry_after=20), attempt=1)
    assert isinstance(server, Retry) and server.outcome_unknown and server.after >= 20
    lost = classify(XeroTimeout("timed out", outcome_unknown=True), attempt=3)
    assert lost.outcome_unknown and 4 <= lost.after <= 8
    never_sent = classify(XeroTimeout("refused", outcome_unknown=False), attempt=1)
    assert not never_sent.outcome_unknown


def test_connection_problems_wait_for_a_person():
    assert isinstance(classify(XeroNeedsReconnect("x"), attempt=1), WaitForConnection)
    assert isinstance(classify(XeroNotConnected("x"), attempt=1), WaitForConnection)


def test_refusals_that_leave_the_connection_connected_are_retried_with_backoff_not_waited_on(settings):
    """A 403 that is not the tenant's AuthenticationUnsuccessful, a missing scope or a 401 a refresh did not cure:
    nothing marks the connection, so waiting for a reconnect would retry at every sweep without end. The call was
    refused, so nothing reached Xero: retried with the backoff, bounded like any send."""
    settings.XERO_RETRY_BASE_SECONDS, settings.XERO_RETRY_MAX_SECONDS = 2, 300
    for exc in (
        XeroAuthError("403 permission", status=403),
        XeroInsufficientScope("scope", status=403),
        # The tenant's 403 AuthenticationUnsuccessful only queues a check of Xero's connections, which may find the
        # tenant still listed: nothing marks the connection then. Once the check marks it, calls raise
        # XeroNotConnected, which waits.
        XeroTenantDisconnected("tenant", status=403),
    ):
        verdict = classify(exc, attempt=3)
        assert isinstance(verdict, Retry) and verdict.refused and 4 <= verdict.after <= 8, exc
        assert not verdict.outcome_unknown, exc


def test_validation_is_refused_with_xeros_words():
    elements = [{"ValidationErrors": [{"Message": "Account code '999' is not a valid code"}]}]
    verdict = classify(XeroValidationError("400", elements=elements, error_number=10, correlation_id="c"), attempt=1)
    assert verdict == Refused(message="Account code '999' is not a valid code", elements=elements, correlation_id="c")
    assert isinstance(classify(XeroRequestError("400 bad", status=400), attempt=1), Refused)


def test_anything_else_fails():
    assert isinstance(classify(XeroNotFound("404", status=404), attempt=1), Failed)


def test_backoff_doubles_with_jitter_up_to_the_cap(settings):
    settings.XERO_RETRY_BASE_SECONDS, settings.XERO_RETRY_MAX_SECONDS = 2, 60
    for attempt, top in ((1, 2), (2, 4), (3, 8), (10, 60), (1000, 60)):
        waits = [backoff_seconds(attempt) for _ in range(50)]
        assert all(top / 2 <= w <= top for w in waits)


def test_a_500_to_a_keyed_write_is_an_answer_xero_keeps_under_the_key_and_nothing_else_is():
    """Xero caches a 500 under the Idempotency-Key (docs/xero-facts 2.4): a resend would replay it. A 503 from the
    gateway, or a 500 to a call without a key (the identity endpoints), is a lost answer to send again."""
    assert classify(XeroServerError("500", status=500, keyed=True), attempt=1).answer_cached
    assert not classify(XeroServerError("500", status=500), attempt=1).answer_cached
    assert not classify(XeroServerError("503", status=503, keyed=True), attempt=1).answer_cached


def test_the_push_and_the_engine_share_one_rule_for_how_long_xero_remembers_a_key(settings):
    """Six minutes from the first call (docs/xero-facts 2.4), measured from our send with a twelfth to spare; a key
    never sent is not remembered by anyone, so sending under it is a first send."""
    settings.XERO_IDEMPOTENCY_WINDOW_SECONDS = 360
    sent = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    assert key_remembered(None, sent)
    assert key_remembered(sent, sent + dt.timedelta(seconds=329))
    assert not key_remembered(sent, sent + dt.timedelta(seconds=330))


# ---------------------------------------------------------------- describe: the verdict as a person reads it

DOING = "read your currencies"


def test_a_dead_grant_names_who_reconnects_and_where_when_described():
    assert describe(XeroNeedsReconnect("invalid_grant"), doing=DOING) == (
        "Xero needs reconnecting before we can read your currencies. "
        "An admin can reconnect on the Manage Integrations page."
    )


def test_no_connection_asks_to_connect_first_when_described():
    assert describe(XeroNotConnected("gone"), doing=DOING).startswith("Connect Xero first")


def test_a_rate_limit_names_the_classifiers_wait_rounded_up_when_described(settings):
    assert describe(XeroRateLimited("429", retry_after=17, problem="minute"), doing=DOING).endswith(
        "Try again in 17 seconds."
    )
    assert describe(RateLimitWait(4.2, problem="minute"), doing=DOING).endswith("Try again in 5 seconds.")
    settings.XERO_RATE_MINUTE_SECONDS = 60
    assert describe(XeroRateLimited("429", retry_after=60, problem="concurrent"), doing=DOING).endswith(
        "Try again in 1 second."
    )


@pytest.mark.parametrize(
    "exc",
    [
        XeroTenantDisconnected("tenant", status=403),
        XeroAuthError("403 permission", status=403),
        XeroInsufficientScope("scope", status=403),
    ],
)
def test_a_refusal_that_leaves_the_connection_connected_never_says_it_needs_reconnecting_when_described(exc):
    message = describe(exc, doing=DOING)
    assert message.startswith("Xero refused our access when we tried to read your currencies")
    assert "needs reconnecting" not in message and "couldn't reach" not in message


def test_an_outage_asks_to_try_again_in_the_classifiers_wait_when_described(settings):
    settings.XERO_RETRY_BASE_SECONDS, settings.XERO_RETRY_MAX_SECONDS = 2, 300
    assert describe(XeroTimeout("timed out", outcome_unknown=False), doing=DOING) == (
        "We couldn't reach Xero just now to read your currencies. Please try again in a minute."
    )
    later = describe(XeroServerError("503", status=503, retry_after=290), doing=DOING)
    assert later.endswith("try again in 5 minutes.")


def test_xeros_validation_words_are_quoted_and_no_retry_promised_when_described():
    elements = [{"ValidationErrors": [{"Message": "Währung „ZZZ“ ist ungültig."}, {"Message": "日付が無効です"}]}]
    message = describe(XeroValidationError("400", elements=elements), doing="send the invoice")
    assert message == (
        "Xero refused our request to send the invoice: Währung „ZZZ“ ist ungültig; 日付が無効です. "
        "Sending it again would get the same answer."
    )
    request = describe(XeroRequestError("Xero answered 400 to GET /x: Bad", status=400, detail="Bad"), doing=DOING)
    assert request.startswith("Xero refused our request to read your currencies: Bad.")


def test_anything_else_is_shown_with_what_xero_said_when_described():
    message = describe(XeroNotFound("Xero found nothing at GET /Currencies.", status=404), doing=DOING)
    assert message == (
        "We couldn't read your currencies: Xero found nothing at GET /Currencies. "
        "Please tell support if this keeps happening."
    )
