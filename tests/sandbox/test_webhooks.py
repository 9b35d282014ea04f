"""Webhooks: signed batched deliveries, retries, duplicates, reordering, intent to receive."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from xero_sandbox.seed import AU_ID, sid

KEY = "test-webhook-key-0123456789"
BONDI = sid("contact", AU_ID, "Bondi Surf School")


class Receiver:
    """A tiny webhook receiver: verifies x-xero-signature on the raw body like Xero asks."""

    def __init__(self):
        self.key = KEY
        self.received: list = []
        self.fail_next = 0
        self.delay_next = 0.0
        self.always_200 = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = base64.b64encode(hmac.new(receiver.key.encode(), raw, hashlib.sha256).digest()).decode()
                valid = hmac.compare_digest(expected, self.headers.get("x-xero-signature", ""))
                receiver.received.append({"raw": raw, "valid": valid, "at": time.monotonic()})
                if receiver.delay_next:
                    delay, receiver.delay_next = receiver.delay_next, 0.0
                    time.sleep(delay)
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    status = 500
                else:
                    status = 200 if valid or receiver.always_200 else 401
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xero/webhooks/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self, valid_only=True):
        return [json.loads(r["raw"]) for r in self.received if r["valid"] or not valid_only]

    def events(self):
        return [event for payload in self.payloads() for event in payload["events"]]

    def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.received) >= count

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(sandbox):
    hook = Receiver()
    sandbox.set_webhook(url=hook.url, key=KEY)
    yield hook
    sandbox.set_webhook(url="")
    hook.close()


def new_invoice(**extra):
    data = {
        "Type": "ACCREC",
        "Contact": {"ContactID": BONDI},
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}],
    }
    data.update(extra)
    return data


def test_delivery_signature_verifies_and_payload_is_xero_shaped_when_invoice_created(api, sandbox, receiver):
    created = api.put("/Invoices", {"Invoices": [new_invoice()]}).json()["Invoices"][0]
    assert receiver.wait_for(1)
    delivery = receiver.received[0]
    assert delivery["valid"] is True
    payload = json.loads(delivery["raw"])
    assert set(payload) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
    assert payload["entropy"].isupper() and len(payload["entropy"]) == 20
    event = payload["events"][0]
    assert event == {
        "resourceUrl": f"{sandbox.url}/api.xro/2.0/Invoices/{created['InvoiceID']}",
        "resourceId": created["InvoiceID"],
        "tenantId": AU_ID,
        "tenantType": "ORGANISATION",
        "eventCategory": "INVOICE",
        "eventType": "CREATE",
        "eventDateUtc": event["eventDateUtc"],
    }
    assert len(event["eventDateUtc"]) == 23 and event["eventDateUtc"][10] == "T"
    assert payload["firstEventSequence"] == payload["lastEventSequence"] >= 1


def test_events_are_batched_with_sequence_numbers_when_changes_come_together(api, sandbox, receiver):
    sandbox.settings(webhook_batch_ms=300)
    body = {"Invoices": [new_invoice(Contact={"Name": "Brand New Customer"}), new_invoice()]}
    api.put("/Invoices", body)
    assert receiver.wait_for(1)
    time.sleep(0.2)
    assert len(receiver.received) == 1
    payload = receiver.payloads()[0]
    kinds = [(e["eventCategory"], e["eventType"]) for e in payload["events"]]
    assert kinds == [("CONTACT", "CREATE"), ("INVOICE", "CREATE"), ("INVOICE", "CREATE")]
    assert payload["lastEventSequence"] - payload["firstEventSequence"] == 2
    invoice_id = api.get("/Invoices", params={"Statuses": "DRAFT"}).json()["Invoices"][-1]["InvoiceID"]
    api.post(f"/Invoices/{invoice_id}", {"Status": "AUTHORISED"})
    assert receiver.wait_for(2)
    update = receiver.payloads()[1]
    assert update["events"][0]["eventType"] == "UPDATE"
    assert update["firstEventSequence"] == payload["lastEventSequence"] + 1


def test_delivery_is_retried_when_receiver_fails_or_answers_late(api, sandbox, receiver):
    sandbox.settings(time_scale=9000, webhook_timeout=0.5)  # retry interval 15 min -> 0.1 s
    receiver.fail_next = 2
    api.put("/Invoices", {"Invoices": [new_invoice()]})
    assert receiver.wait_for(3)
    assert len({r["raw"] for r in receiver.received}) == 1  # the same signed body each time
    deliveries = sandbox.webhook_deliveries()
    assert deliveries[0]["state"] == "delivered"
    assert [a["status"] for a in deliveries[0]["attempts"]] == [500, 500, 200]
    receiver.delay_next = 0.8
    api.put("/Invoices", {"Invoices": [new_invoice()]})
    assert receiver.wait_for(5)
    time.sleep(0.3)
    attempts = sandbox.webhook_deliveries()[1]["attempts"]
    assert attempts[0]["status"] is None and "time" in attempts[0]["error"]
    assert attempts[-1]["status"] == 200


def test_webhook_is_disabled_after_retry_period_when_receiver_keeps_failing(api, sandbox, receiver):
    sandbox.settings(time_scale=9000)  # 24 h of retries -> 9.6 s; make it shorter still
    sandbox.settings(webhook_retry_for=3600)  # 1 h -> 0.4 s
    receiver.fail_next = 1000
    api.put("/Invoices", {"Invoices": [new_invoice()]})
    deadline = time.monotonic() + 5
    while sandbox.admin("GET", "/webhooks")["enabled"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.admin("GET", "/webhooks")["enabled"] is False
    receiver.fail_next = 0
    sandbox.admin("POST", "/webhooks/enable")
    assert sandbox.flush_webhooks()["idle"] is True
    assert sandbox.webhook_deliveries()[0]["state"] == "delivered"


def test_duplicate_switch_sends_each_delivery_twice_when_enabled(api, sandbox, receiver):
    sandbox.settings(webhook_duplicate=1)
    api.put("/Invoices", {"Invoices": [new_invoice()]})
    assert receiver.wait_for(2)
    assert receiver.received[0]["raw"] == receiver.received[1]["raw"]


def test_out_of_order_switch_lets_newer_delivery_overtake_when_enabled(api, sandbox, receiver):
    sandbox.settings(webhook_out_of_order=True, webhook_batch_ms=50)
    api.put("/Invoices", {"Invoices": [new_invoice()]})
    time.sleep(0.15)
    api.put("/Invoices", {"Invoices": [new_invoice()]})
    assert receiver.wait_for(2)
    sequences = [p["firstEventSequence"] for p in receiver.payloads()]
    assert sequences == sorted(sequences, reverse=True)


def test_intent_to_receive_passes_when_receiver_checks_signatures(sandbox, receiver):
    result = sandbox.intent_to_receive()
    assert result["ok"] is True and result["status"] == "OK"
    assert {c["correctly_signed"] for c in result["checks"]} == {True, False}
    assert all(c["status"] == c["expected"] for c in result["checks"])
    assert all(json.loads(r["raw"])["events"] == [] for r in receiver.received)


def test_intent_to_receive_fails_when_receiver_accepts_bad_signatures(sandbox, receiver):
    receiver.always_200 = True
    result = sandbox.intent_to_receive()
    assert result["ok"] is False
    assert any(c["expected"] == 401 and c["status"] == 200 for c in result["checks"])


def test_webhook_key_change_is_used_when_set_at_runtime(api, sandbox, receiver):
    receiver.key = "rotated-key"
    sandbox.set_webhook(key="rotated-key")
    api.put("/Contacts", {"Contacts": [{"Name": "Rotated Key Pty"}]})
    assert receiver.wait_for(1)
    assert receiver.received[0]["valid"] and receiver.events()[0]["eventCategory"] == "CONTACT"
