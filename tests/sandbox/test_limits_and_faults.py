"""Rate limits (time-scaled fixed windows), latency model and fault injection, over real HTTP."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from xero_sandbox.seed import AU_ID, UK_ID, sid

BONDI = sid("contact", AU_ID, "Bondi Surf School")


def new_invoice(reference="r"):
    return {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": BONDI},
                "Reference": reference,
                "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}],
            }
        ]
    }


def test_rate_limit_headers_count_down_when_calls_are_made(api):
    first = api.get("/Organisation")
    second = api.get("/Organisation")
    assert int(first.headers["X-MinLimit-Remaining"]) == 59 and int(second.headers["X-MinLimit-Remaining"]) == 58
    assert int(second.headers["X-DayLimit-Remaining"]) == 4998
    assert int(second.headers["X-AppMinLimit-Remaining"]) == 9998


def test_minute_limit_answers_429_then_recovers_when_scaled_window_passes(api, sandbox):
    sandbox.settings(time_scale=30)  # a minute lasts 2 s
    statuses = [api.get("/Organisation").status_code for _ in range(60)]
    assert statuses == [200] * 60
    limited = api.get("/Organisation")
    assert limited.status_code == 429
    assert limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert int(limited.headers["Retry-After"]) >= 1
    wait_ms = int(limited.headers["X-Sandbox-Retry-After-Ms"])
    assert 0 < wait_ms <= 2000
    assert limited.headers["X-MinLimit-Remaining"] == "0"
    time.sleep(wait_ms / 1000 + 0.05)
    again = api.get("/Organisation")
    assert again.status_code == 200 and again.headers["X-MinLimit-Remaining"] == "59"


def test_minute_limit_is_per_tenant_when_two_orgs_are_called(api, uk_api, sandbox):
    sandbox.settings(limits={"minute": 2})
    assert [api.get("/Organisation").status_code for _ in range(3)] == [200, 200, 429]
    assert uk_api.get("/Organisation").status_code == 200


def test_day_and_app_limits_answer_429_with_their_problem_when_exhausted(api, uk_api, sandbox):
    sandbox.settings(limits={"day": 2})
    assert [api.get("/Organisation").status_code for _ in range(2)] == [200, 200]
    day = api.get("/Organisation")
    assert day.status_code == 429 and day.headers["X-Rate-Limit-Problem"] == "day"
    sandbox.settings(limits={"day": 5000, "app_minute": 3})
    sandbox.admin("POST", "/ratelimits/reset")
    assert [uk_api.get("/Organisation").status_code for _ in range(2)] == [200, 200]
    assert api.get("/Organisation").status_code == 200
    app_limited = api.get("/Organisation")
    assert app_limited.status_code == 429 and app_limited.headers["X-Rate-Limit-Problem"] == "appminute"


def test_concurrent_limit_answers_429_when_more_than_five_calls_in_flight(api, sandbox):
    sandbox.settings(latency_ms=600)
    results = []

    def call():
        results.append(api.get("/Organisation"))

    threads = [threading.Thread(target=call) for _ in range(7)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    limited = [r for r in results if r.status_code == 429]
    assert len([r for r in results if r.status_code == 200]) == 5 and len(limited) == 2
    assert all(r.headers["X-Rate-Limit-Problem"] == "concurrent" for r in limited)


def test_latency_model_delays_calls_by_fixed_plus_per_invoice_when_scaled(api, sandbox):
    sandbox.settings(latency_ms=200, latency_per_invoice_ms=100, time_scale=2)
    body = {"Invoices": new_invoice()["Invoices"] * 4}
    started = time.monotonic()
    assert api.put("/Invoices", body).status_code == 200
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5  # (200 + 4 x 100) ms / 2


def test_rate_limit_is_checked_before_idempotency_when_429_is_forced(api, sandbox):
    sandbox.inject_fault("429", count=1, path="/api.xro/2.0/Invoices")
    headers = {"Idempotency-Key": "after-429"}
    limited = api.put("/Invoices", new_invoice(), headers=headers)
    assert limited.status_code == 429 and limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert len(sandbox.invoices(AU_ID)) == 2
    created = api.put("/Invoices", new_invoice(), headers=headers)
    assert created.status_code == 200 and len(sandbox.invoices(AU_ID)) == 3


def test_injected_500_is_cached_under_idempotency_key_when_retried(api, sandbox):
    sandbox.inject_fault("500", count=1, method="PUT")
    headers = {"Idempotency-Key": "five-hundred"}
    assert api.put("/Invoices", new_invoice(), headers=headers).status_code == 500
    assert api.put("/Invoices", new_invoice(), headers=headers).status_code == 500
    assert api.put("/Invoices", new_invoice(), headers={"Idempotency-Key": "fresh"}).status_code == 200
    assert len(sandbox.invoices(AU_ID)) == 3


def test_503_fault_hits_only_matching_path_for_n_calls_when_filtered(api, sandbox):
    sandbox.inject_fault("503", count=2, path="/api.xro/2.0/Invoices")
    assert api.get("/Contacts").status_code == 200
    assert [api.get("/Invoices").status_code for _ in range(3)] == [503, 503, 200]
    assert sandbox.faults() == []


def test_share_of_calls_fail_when_fault_has_probability(api, sandbox):
    sandbox.settings(limits={"minute": 1000})
    sandbox.inject_fault("503", share=0.5)
    statuses = [api.get("/Organisation").status_code for _ in range(60)]
    assert 10 <= statuses.count(503) <= 50 and statuses.count(200) == 60 - statuses.count(503)
    sandbox.clear_faults()
    assert api.get("/Organisation").status_code == 200


def test_timeout_fault_holds_then_drops_without_writing_when_injected(api, sandbox):
    sandbox.inject_fault("timeout", count=1, hold=0.5)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        api.put("/Invoices", new_invoice())
    assert time.monotonic() - started >= 0.45
    assert len(sandbox.invoices(AU_ID)) == 2
    sandbox.inject_fault("timeout", count=1, hold=5)
    with pytest.raises(requests.Timeout):
        api.http.put(api.base + "/Invoices", json=new_invoice(), timeout=0.3)


def test_drop_after_write_applies_change_and_key_replays_it_when_retried(api, sandbox):
    sandbox.inject_fault("drop_after_write", count=1, method="PUT")
    headers = {"Idempotency-Key": "lost-response"}
    with pytest.raises(requests.ConnectionError):
        api.put("/Invoices", new_invoice("dropped"), headers=headers)
    assert [i["Reference"] for i in sandbox.invoices(AU_ID)].count("dropped") == 1
    retry = api.put("/Invoices", new_invoice("dropped"), headers=headers)
    assert retry.status_code == 200 and retry.headers["X-Sandbox-Idempotent-Replay"] == "true"
    assert [i["Reference"] for i in sandbox.invoices(AU_ID)].count("dropped") == 1


def test_timeout_after_write_applies_change_when_injected(api, sandbox):
    sandbox.inject_fault("timeout_after_write", count=1, hold=0.2)
    with pytest.raises(requests.ConnectionError):
        api.put("/Invoices", new_invoice("slow"))
    assert [i["Reference"] for i in sandbox.invoices(AU_ID)].count("slow") == 1


def test_fault_can_target_one_tenant_when_tenant_given(api, uk_api, sandbox):
    sandbox.inject_fault("503", count=5, tenant=UK_ID)
    assert api.get("/Organisation").status_code == 200
    assert uk_api.get("/Organisation").status_code == 503


def test_request_log_records_calls_when_api_is_used(api, sandbox):
    api.get("/Organisation", headers={})
    entries = sandbox.requests_log()
    assert entries[-1]["path"] == "/api.xro/2.0/Organisation" and entries[-1]["status"] == 200
    assert entries[-1]["tenant_id"] == AU_ID and entries[-1]["correlation_id"]
