"""One way to classify a failed Xero call, and one backoff policy.

Every background writer and reader turns the front door's exceptions into one of four verdicts instead of keeping
its own ladder of `except` clauses:

    Retry(after)          try again later, under the same Idempotency-Key (5xx, timeout, lost answer, 429)
    WaitForConnection     nothing can be sent until someone reconnects (needs reconnect, revoked, disconnected)
                          (a refusal that leaves the connection connected, the tenant's 403 included, is a Retry)
    Refused(message)      Xero said no to this request: sending it again would get the same answer
    Failed(message)       anything else: stop and show it

and every wait between attempts comes from `backoff_seconds`; whether Xero still remembers an Idempotency-Key (and
would replay its first answer to a send under it) from `key_remembered`. What a person reads about a failed call made
while they wait (the mapping page's reads, Connect) comes from `describe`, which tells the same verdict as a sentence.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from integrations.xero.exceptions import (
    XeroAuthError,
    XeroError,
    XeroNeedsReconnect,
    XeroNotConnected,
    XeroRateLimited,
    XeroRequestError,
    XeroServerError,
    XeroTimeout,
    XeroValidationError,
)


@dataclass(frozen=True)
class Retry:
    after: float
    reason: str
    # True when a write may have reached Xero (its answer was lost): the next attempt must reuse the key, or past
    # the key's window look the result up first.
    outcome_unknown: bool = False
    rate_limited: bool = False
    # True when Xero answered with an error it keeps under the Idempotency-Key (a 500: docs/xero-facts 2.4): a resend
    # under that key inside its window only replays it. Look the result up instead; absent, send under a new key.
    answer_cached: bool = False
    # True when Xero answered no in a way that leaves the connection connected (a permission, a scope, the tenant's
    # 403): nothing reached Xero, and trying again helps only if someone fixes the cause, so the tries are bounded
    # even where an outage's are not (a chunk's: integrations/outbound/record.record_failure bounds every send).
    refused: bool = False


@dataclass(frozen=True)
class WaitForConnection:
    reason: str


@dataclass(frozen=True)
class Refused:
    message: str
    elements: list[dict[str, Any]] = field(default_factory=list)
    correlation_id: str = ""


@dataclass(frozen=True)
class Failed:
    message: str
    correlation_id: str = ""


Verdict = Retry | WaitForConnection | Refused | Failed


def backoff_seconds(attempt: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, then a random 50-100% of it."""
    base = settings.XERO_RETRY_BASE_SECONDS if base is None else base
    cap = settings.XERO_RETRY_MAX_SECONDS if cap is None else cap
    return min(cap, base * (2 ** max(0, min(attempt, 32) - 1))) * random.uniform(0.5, 1.0)


def key_remembered(first_sent_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Does Xero still remember a key first sent at `first_sent_at` (docs/xero-facts 2.4: six minutes from the first
    call)? Measured from our send, which is before Xero saw it, with a twelfth to spare. Never sent: nothing to
    remember, so a send under it is a first send."""
    if first_sent_at is None:
        return True
    window = settings.XERO_IDEMPOTENCY_WINDOW_SECONDS * 11 / 12
    return now < first_sent_at + dt.timedelta(seconds=window)


def validation_messages(elements: list[dict[str, Any]]) -> list[str]:
    """Xero's ValidationErrors messages of every element, in order."""
    return [
        str(m.get("Message") or "")
        for element in elements
        for m in (element.get("ValidationErrors") or [])
        if m.get("Message")
    ]


def classify(exc: XeroError, *, attempt: int) -> Verdict:
    """The verdict on one failed call; `attempt` counts this one (1 for the first)."""
    if isinstance(exc, XeroRateLimited):
        # A concurrency refusal clears as soon as a call in flight ends; the others name their wait.
        # Our own limiter's refusal (RateLimitWait) names its wait to the millisecond in `seconds`.
        if hasattr(exc, "seconds"):
            wait = float(exc.seconds)
        elif exc.problem == "concurrent":
            wait = settings.XERO_RATE_MINUTE_SECONDS / 60
        else:
            wait = float(exc.retry_after)
        return Retry(after=max(0.0, wait), reason=str(exc), rate_limited=True)
    if isinstance(exc, XeroTimeout):
        return Retry(after=backoff_seconds(attempt), reason=str(exc), outcome_unknown=exc.outcome_unknown)
    if isinstance(exc, XeroServerError):
        # A 5xx to a write may still have been applied (Xero answers 503 after committing, at times).
        after = max(backoff_seconds(attempt), float(exc.retry_after or 0))
        return Retry(after=after, reason=str(exc), outcome_unknown=True, answer_cached=exc.keyed and exc.status == 500)
    if isinstance(exc, XeroNotConnected | XeroNeedsReconnect):
        # The connection is marked (a dead grant is marked at once): the reconnect brings the work back.
        return WaitForConnection(reason=str(exc))
    if isinstance(exc, XeroAuthError):
        # Refused in a way that leaves the connection connected: a permission the user's role lacks, a missing
        # scope, a 401 a refresh did not cure, or the tenant's 403 AuthenticationUnsuccessful (XeroTenantDisconnected),
        # which only queues a check of Xero's connections that may find the tenant still there. Nothing would mark the
        # connection, so waiting for a reconnect would retry at every sweep for ever. Nothing reached Xero: retried
        # with the backoff, bounded like any refused try; once the check marks the connection, the caller's next
        # claim finds it unusable (XeroNotConnected) and waits for the reconnect.
        return Retry(after=backoff_seconds(attempt), reason=str(exc), refused=True)
    if isinstance(exc, XeroValidationError):
        message = "; ".join(validation_messages(exc.elements)) or str(exc)
        return Refused(message=message, elements=list(exc.elements), correlation_id=exc.correlation_id)
    if isinstance(exc, XeroRequestError):
        return Refused(message=str(exc), correlation_id=exc.correlation_id)
    return Failed(message=str(exc), correlation_id=exc.correlation_id)


def unjudged(exc: XeroError) -> bool:
    """Xero never judged the request (an outage, a lost answer, a slow-down: a Retry that is not a refusal), so a
    page must not blame what was sent (a sign-in code, say) and says what `describe` says instead."""
    verdict = classify(exc, attempt=1)
    return isinstance(verdict, Retry) and not verdict.refused


def describe(exc: XeroError, *, doing: str) -> str:
    """What a person reads about a call made to `doing` ("read your currencies") that failed with `exc`: what happened
    and what to do, told from the verdict the background acts on, so a page never says "reconnect" where the
    background retries, nor "try again" where it stops. Interactive: one try, so the first attempt's verdict."""
    verdict = classify(exc, attempt=1)
    if isinstance(verdict, WaitForConnection):
        if isinstance(exc, XeroNeedsReconnect):
            return (
                f"Xero needs reconnecting before we can {doing}. "
                "An admin can reconnect on the Manage Integrations page."
            )
        return f"Connect Xero first: we need the connection to {doing}."
    if isinstance(verdict, Retry):
        if verdict.rate_limited:
            seconds = max(1, math.ceil(verdict.after))
            return f"Xero asked us to slow down. Try again in {seconds} second{'' if seconds == 1 else 's'}."
        if verdict.refused:
            # The words of the push's notice for the same verdict (templates/invoices/_batch_progress.html).
            return (
                f"Xero refused our access when we tried to {doing}: Xero says the connected Xero user or app may not "
                "do this. An admin can check the Xero user's role, or reconnect Xero on the Manage Integrations page."
            )
        minutes = max(1, math.ceil(verdict.after / 60))
        when = "a minute" if minutes == 1 else f"{minutes} minutes"
        return f"We couldn't reach Xero just now to {doing}. Please try again in {when}."
    if isinstance(verdict, Refused):
        words = "; ".join(m.rstrip(".") for m in validation_messages(verdict.elements)) or exc.detail or verdict.message
        return f"Xero refused our request to {doing}: {words.rstrip('.')}. Sending it again would get the same answer."
    return f"We couldn't {doing}: {verdict.message.rstrip('.')}. Please tell support if this keeps happening."
