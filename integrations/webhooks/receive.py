"""The Xero webhook receiver: one URL for the whole app. Verify -> record -> enqueue on commit -> empty 200.

The checks run in a fixed order, each with its own test (tests/integrations/test_webhooks.py):
POST only (405) -> body size (413) -> signature over the raw bytes (401, empty body) -> parse -> store -> 200.
A correctly signed delivery is always answered 200, even one we cannot use (Xero would otherwise retry it for
days): its unusable events are stored as ignored with the reason, and a body that is not a webhook payload at all
(not JSON, nested too deeply, no events list) is logged as xero.webhook.unusable. Tests of hostile bodies:
tests/integrations/test_webhooks_hostile.py.
Xero wants an answer within 5 seconds, a 200 with an empty body and no cookies, and 401 for a bad signature;
intent-to-receive checks are ordinary deliveries with no events.
https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/
"""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from integrations.services.reconcile_cadence import webhook_sequence_seen
from integrations.webhooks.parse import MalformedDelivery, webhook_delivery_parse
from integrations.webhooks.record import webhook_events_record
from integrations.xero.signatures import webhook_signature_valid

logger = logging.getLogger("integrations.webhooks")


def webhook_keys() -> list[str]:
    return [key for key in (settings.XERO_WEBHOOK_KEY, settings.XERO_WEBHOOK_KEY_PREVIOUS) if key]


def _reject(request: HttpRequest, status: int, reason: str, size: int | None = None) -> HttpResponse:
    logger.warning(
        "xero.webhook.rejected",
        extra={
            "event": "xero.webhook.rejected",
            "status": status,
            "reason": reason,
            "bytes": size,
            "remote_addr": request.META.get("REMOTE_ADDR", ""),
        },
    )
    response = HttpResponse(b"", status=status)
    if status == 405:
        response["Allow"] = "POST"
    return response


@csrf_exempt
def xero_webhook_receive(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _reject(request, 405, "method_not_allowed")
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _reject(request, 413, "body_too_large", declared)
    # Read the raw bytes ourselves (at most one byte past the cap): the signature is over exactly these bytes.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _reject(request, 413, "body_too_large", len(body))
    signature = request.headers.get("x-xero-signature", "")
    if not signature:
        return _reject(request, 401, "signature_missing", len(body))
    if not webhook_signature_valid(body=body, signature=signature, keys=webhook_keys()):
        return _reject(request, 401, "signature_invalid", len(body))
    try:
        events = webhook_delivery_parse(body=body)
    except MalformedDelivery as exc:
        logger.warning(
            "xero.webhook.unusable",
            extra={"event": "xero.webhook.unusable", "reason": str(exc), "bytes": len(body)},
        )
        return HttpResponse(b"", status=200)
    result = webhook_events_record(events=events)
    if events:
        # The app-wide sequence: a skipped range that no late delivery fills makes reconciliation come soon.
        webhook_sequence_seen(first=events[0].sequence, last=events[-1].sequence)
    unusable = [event.problem for event in events if event.problem]
    logger.log(
        logging.WARNING if unusable else logging.INFO,
        "xero.webhook.received",
        extra={
            "event": "xero.webhook.received" if events else "xero.webhook.intent_to_receive",
            "events": result.events,
            "ignored": result.ignored,
            "unusable": unusable[:5],
            "organisation_ids": list(result.organisation_ids),
        },
    )
    return HttpResponse(b"", status=200)
