"""Every request the endpoint layer puts on the wire, checked against Xero's official OpenAPI specs.

Our sandbox is ours and can agree with our client while both are wrong; these specs are Xero's
(../shared/xero-openapi/, copied unchanged from XeroAPI/Xero-OpenAPI). Each request is sent through the real
XeroClient with `responses` catching it, so what is validated is what `requests` encoded: path, query, headers and
body. openapi-core checks types, formats (RFC 3339 date-time, uuid) and body schemas; on top of it every query
parameter and every non-transport header must be one the operation declares (openapi-core lets unknown ones pass).
"""

import datetime as dt
import inspect
import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest

from integrations.xero import accounting, client
from integrations.xero.client import XeroClient
from invoices import mappers

pytestmark = pytest.mark.django_db

SPECS = Path(__file__).resolve().parents[3] / "shared" / "xero-openapi"
API_HOST, API_BASE = "https://api.xero.com", "/api.xro/2.0"
# Headers that belong to HTTP itself, not to an operation.
TRANSPORT_HEADERS = {
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "user-agent",
}
INVOICE_ID = "7f3a4c2e-1b5d-4e6f-8a9b-0c1d2e3f4a5b"
CONTACT_ID = "2b4d6f80-1a3c-4e5f-9a7b-8c9d0e1f2a3b"
CREDIT_NOTE_ID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
SINCE = dt.datetime(2026, 12, 3, 15, 56, 1, tzinfo=dt.timezone(dt.timedelta(hours=11)))


def _load(name: str) -> tuple[OpenAPI, dict]:
    # The files' own flaws (README beside them): 'false' strings as boolean defaults make a strict spec validator
    # refuse the document, so its validation is off; requests are still validated in full.
    document = yaml.load((SPECS / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return OpenAPI(SchemaPath.from_dict(document), config=Config(spec_validator_cls=None)), document


@pytest.fixture(scope="module")
def accounting_spec():
    return _load("xero_accounting.yaml")


@pytest.fixture(scope="module")
def identity_spec():
    return _load("xero-identity.yaml")


def _line(description: str, quantity: str, unit: str, account: str = "", tax: str = "") -> SimpleNamespace:
    return SimpleNamespace(
        description=description,
        quantity=Decimal(quantity),
        unit_amount=Decimal(unit),
        account_code=account,
        tax_type=tax,
    )


def _invoice_payload() -> dict:
    """What the push really sends: the mapper's output for an invoice with real users' data."""
    invoice = SimpleNamespace(
        number="İZM-0001",
        reference="Ωμέγα / Straße 5",
        issue_date=dt.date(2026, 12, 3),
        due_date=dt.date(2026, 12, 31),
        currency="AUD",
        line_amount_types="Exclusive",
        status="AUTHORISED",
    )
    lines = [_line("Kaffee — 4 Nachkommastellen", "3", "10.1234"), _line("配送", "1.5", "99.995", "260", "OUTPUT")]
    mapping = SimpleNamespace(revenue_account_code="200", tax_type="OUTPUT")
    return mappers.invoice_to_xero_payload(invoice, lines, mapping=mapping, contact_id=CONTACT_ID)


def _edit_payload() -> dict:
    return {
        "InvoiceID": INVOICE_ID,
        "Reference": "PO 77",
        "Date": "2026-12-03",
        "DueDate": "2026-12-31",
        "LineItems": [{"Description": "Émile's order", "Quantity": 2.0, "UnitAmount": 10.1234, "AccountCode": "200"}],
    }


def _credit_note_payload() -> dict:
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": CONTACT_ID},
        "CreditNoteNumber": "CN-ΣΟΦΙΑ-1",
        "Date": "2026-12-03",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 12.5, "AccountCode": "200"}],
    }


# Every public endpoint function of integrations.xero.accounting, called as the product calls it (the fullest
# form of each). A new function without an entry here fails test_every_endpoint_function_has_a_case.
CASES = {
    "invoices_put": [dict(invoices=[_invoice_payload()], idempotency_key="chunk-17-a1b2c3")],
    "invoices_get": [
        dict(ids=[INVOICE_ID, CONTACT_ID]),
        dict(invoice_numbers=["İZM-0001", "ACME 0002"], created_by_my_app=True, summary_only=True),
        dict(invoice_numbers=["ACME 1,2", 'QUOTE "7"'], created_by_my_app=True, summary_only=True),
        dict(modified_since=SINCE, in_id_order=True, page=3),
    ],
    "invoice_get": [dict(invoice_id=INVOICE_ID)],
    "invoice_post": [
        dict(invoice_id=INVOICE_ID, invoice=_edit_payload(), idempotency_key="change-5-x"),
        dict(invoice_id=INVOICE_ID, invoice={"InvoiceID": INVOICE_ID, "Status": "VOIDED"}, idempotency_key="k"),
    ],
    "credit_notes_put": [dict(credit_notes=[_credit_note_payload()], idempotency_key="cn-1")],
    "credit_notes_get": [
        dict(modified_since=SINCE, in_id_order=True, page=2),
        dict(where=accounting.credit_note_number_where('CN-ΣΟΦΙΑ "1"')),
    ],
    "credit_note_get": [dict(credit_note_id=CREDIT_NOTE_ID)],
    "credit_note_allocation_put": [
        dict(
            credit_note_id=CREDIT_NOTE_ID,
            invoice_id=INVOICE_ID,
            amount=Decimal("12.50"),
            date=dt.date(2026, 12, 3),
            idempotency_key="alloc-1",
        )
    ],
    "contacts_get": [
        dict(ids=[CONTACT_ID], include_archived=True, page=1),
        dict(where='ContactNumber=="COORD-7" OR Name=="Émile Care"', summary_only=True),
        dict(modified_since=SINCE, include_archived=True, in_id_order=True, page=1),
    ],
    "contacts_post": [
        dict(
            contacts=[{"Name": "İzmir Foods", "ContactNumber": "COORD-9", "EmailAddress": "a@b.test"}],
            idempotency_key="c",
        )
    ],
    "accounts_get": [{}],
    "tax_rates_get": [{}],
    "currencies_get": [{}],
    "organisation_get": [{}],
}


def _endpoint_functions() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(accounting, inspect.isfunction)
        if fn.__module__ == accounting.__name__
        and not name.startswith("_")
        and list(inspect.signature(fn).parameters)[:1] == ["client"]
    )


def _operation(document: dict, method: str, path: str) -> tuple[str, dict]:
    """The spec's path template and operation for a concrete path."""
    for template, item in document["paths"].items():
        pattern = template.split("/")
        parts = path.split("/")
        if (
            len(pattern) == len(parts)
            and all(p == q or (p.startswith("{") and p.endswith("}")) for p, q in zip(pattern, parts, strict=True))
            and method.lower() in item
        ):
            return template, item
    raise AssertionError(f"The spec has no operation {method} {path}.")


def _declared(document: dict, item: dict, method: str) -> dict[str, set[str]]:
    declared: dict[str, set[str]] = {"query": set(), "header": set(), "path": set()}
    for parameter in [*item.get("parameters", []), *item[method.lower()].get("parameters", [])]:
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        declared[parameter["in"]].add(parameter["name"] if parameter["in"] != "header" else parameter["name"].lower())
    return declared


def assert_conforms(spec: tuple[OpenAPI, dict], sent, *, base: str, path_alias=None) -> None:
    """Raises AssertionError when `sent` (a prepared requests request) is not a request the spec allows."""
    api, document = spec
    url = urlsplit(sent.url)
    assert url.path.startswith(base), url.path
    path = url.path[len(base) :]
    if path_alias:
        path = path_alias(path)
    template, item = _operation(document, sent.method, path)
    declared = _declared(document, item, sent.method)
    query = parse_qsl(url.query, keep_blank_values=True)
    undeclared = sorted({k for k, _ in query} - declared["query"])
    assert not undeclared, f"{sent.method} {template}: query parameters the spec does not declare: {undeclared}"
    headers = {k.lower() for k in sent.headers}
    undeclared = sorted(headers - TRANSPORT_HEADERS - declared["header"])
    assert not undeclared, f"{sent.method} {template}: headers the spec does not declare: {undeclared}"
    body = sent.body.decode() if isinstance(sent.body, bytes) else sent.body
    request = MockRequest(
        API_HOST,
        sent.method.lower(),
        base + path if not path_alias else path,
        headers=dict(sent.headers),
        args=dict(query),
        data=body,
        content_type=(sent.headers.get("Content-Type") or "application/json").split(";")[0],
    )
    try:
        api.validate_request(request)
    except Exception as exc:  # openapi-core's error family; the message names what failed
        causes = getattr(exc.__cause__, "schema_errors", None) or [exc.__cause__ or exc]
        raise AssertionError(f"{sent.method} {template}: {exc}: {[str(c).splitlines()[0] for c in causes]}") from exc


def test_every_endpoint_function_has_a_case():
    assert _endpoint_functions() == sorted(CASES)


@responses.activate
@pytest.mark.parametrize("name", sorted(CASES))
def test_endpoint_requests_conform_to_xeros_accounting_spec_when_built(name, connection, accounting_spec):
    for method in ("GET", "PUT", "POST"):
        responses.add(method, re.compile(r"https://api\.xero\.com/api\.xro/2\.0/.*"), json={})
    xero = XeroClient(connection.pk)
    for kwargs in CASES[name]:
        responses.calls.reset()
        getattr(accounting, name)(xero, **kwargs)
        assert len(responses.calls) == 1
        assert_conforms(accounting_spec, responses.calls[0].request, base=API_BASE)


@responses.activate
def test_invoice_reads_and_writes_all_carry_four_decimal_units_when_sent(connection):
    responses.add(responses.GET, re.compile(r".*"), json={})
    responses.add(responses.PUT, re.compile(r".*"), json={})
    responses.add(responses.POST, re.compile(r".*"), json={})
    xero = XeroClient(connection.pk)
    for name in (
        "invoices_put",
        "invoices_get",
        "invoice_get",
        "invoice_post",
        "credit_notes_put",
        "credit_notes_get",
        "credit_note_get",
    ):
        for kwargs in CASES[name]:
            getattr(accounting, name)(xero, **kwargs)
    for call in responses.calls:
        assert dict(parse_qsl(urlsplit(call.request.url).query))["unitdp"] == "4", call.request.url
    put = json.loads(responses.calls[0].request.body)
    assert put["Invoices"][0]["LineItems"][0]["UnitAmount"] == 10.1234


@responses.activate
def test_modified_since_is_sent_as_rfc3339_utc_when_reconciling(connection):
    responses.get(f"{API_HOST}{API_BASE}/Invoices", json={})
    accounting.invoices_get(XeroClient(connection.pk), modified_since=SINCE)
    assert responses.calls[0].request.headers["If-Modified-Since"] == "2026-12-03T04:56:01Z"


def test_rfc3339_refuses_a_naive_datetime():
    with pytest.raises(ValueError):
        accounting.rfc3339(dt.datetime(2026, 12, 3, 15, 56, 1))


def _prepared(method: str, url: str, headers: dict, body=None):
    import requests

    return requests.Request(method, url, headers=headers, json=body).prepare()


def test_conformance_check_fails_when_a_request_breaks_the_spec(accounting_spec):
    """The checker can fail: the defects it exists to catch are refused."""
    ok_headers = {"xero-tenant-id": CONTACT_ID, "Authorization": "Bearer x"}
    naive = _prepared(
        "GET",
        f"{API_HOST}{API_BASE}/Invoices?page=1",
        {**ok_headers, "If-Modified-Since": "2026-12-03T15:56:01"},
    )
    with pytest.raises(AssertionError, match="If-Modified-Since"):
        assert_conforms(accounting_spec, naive, base=API_BASE)
    unknown = _prepared("GET", f"{API_HOST}{API_BASE}/Invoices?unitdp=4&bogus=1", ok_headers)
    with pytest.raises(AssertionError, match="bogus"):
        assert_conforms(accounting_spec, unknown, base=API_BASE)
    no_summarize_on_single = _prepared(
        "GET", f"{API_HOST}{API_BASE}/Invoices/{INVOICE_ID}?summarizeErrors=false", ok_headers
    )
    with pytest.raises(AssertionError, match="summarizeErrors"):
        assert_conforms(accounting_spec, no_summarize_on_single, base=API_BASE)
    bad_body = _prepared(
        "PUT", f"{API_HOST}{API_BASE}/Invoices", ok_headers, {"Invoices": [{"Type": "SALE", "LineItems": "x"}]}
    )
    with pytest.raises(AssertionError, match="PUT /Invoices"):
        assert_conforms(accounting_spec, bad_body, base=API_BASE)
    bad_uuid = _prepared("GET", f"{API_HOST}{API_BASE}/Invoices?IDs=not-a-uuid", ok_headers)
    with pytest.raises(AssertionError, match="IDs"):
        assert_conforms(accounting_spec, bad_uuid, base=API_BASE)


def _identity_path(path: str) -> str:
    # The identity spec writes /Connections while Xero and every client call /connections (README beside it).
    return path.replace("/connections", "/Connections", 1)


@responses.activate
def test_identity_requests_conform_to_xeros_identity_spec_when_built(identity_spec, settings):
    settings.XERO_CONNECTIONS_URL = "https://api.xero.com/connections"
    responses.get("https://api.xero.com/connections", json=[])
    responses.delete(f"https://api.xero.com/connections/{CONNECTION_UUID}", status=204)
    client.connections_list(access_token="token", auth_event_id=CONTACT_ID)
    client.connections_list(access_token="token")
    client.connection_delete(access_token="token", connection_id=CONNECTION_UUID)
    assert len(responses.calls) == 3
    for call in responses.calls:
        assert_conforms(identity_spec, call.request, base="", path_alias=_identity_path)


CONNECTION_UUID = "5c3b1a29-8f7e-4d6c-9b5a-4f3e2d1c0b9a"


# ---------------------------------------------------------------- Sign in with Xero's identity calls (issue 14)
# Xero's identity spec describes /Connections only; the OpenID calls follow OpenID Connect Discovery 1.0 (section 4:
# GET {issuer}/.well-known/openid-configuration) and RFC 7517 (GET the key set at the document's jwks_uri).


@responses.activate
def test_openid_discovery_requests_follow_openid_connect_discovery_when_keys_are_fetched(settings):
    from integrations.xero import openid

    settings.XERO_OIDC_ISSUER = "https://identity.xero.com"
    responses.get(
        "https://identity.xero.com/.well-known/openid-configuration",
        json={
            "issuer": "https://identity.xero.com",
            "jwks_uri": "https://identity.xero.com/.well-known/openid-configuration/jwks",
        },
    )
    responses.get("https://identity.xero.com/.well-known/openid-configuration/jwks", json={"keys": []})
    openid.signing_keys()
    assert [(c.request.method, c.request.url) for c in responses.calls] == [
        ("GET", "https://identity.xero.com/.well-known/openid-configuration"),
        ("GET", "https://identity.xero.com/.well-known/openid-configuration/jwks"),
    ]
    for call in responses.calls:
        assert call.request.body is None
        assert "Authorization" not in call.request.headers  # public documents: no token ever goes with them
        assert call.request.headers["Accept"] == "application/json"


@responses.activate
def test_sign_in_authorize_and_code_exchange_carry_the_openid_parameters_when_built(settings):
    from urllib.parse import parse_qs

    from integrations.xero import oauth

    settings.XERO_SIGNIN_REDIRECT_URI = "https://portal.example/accounts/xero/callback/"
    url = oauth.authorization_url(
        state="s",
        code_verifier="v" * 64,
        scope="openid profile email",
        redirect_uri=settings.XERO_SIGNIN_REDIRECT_URI,
        nonce="n-1",
    )
    query = parse_qs(urlsplit(url).query)
    assert {k: v[0] for k, v in query.items() if k in ("response_type", "scope", "nonce", "redirect_uri")} == {
        "response_type": "code",
        "scope": "openid profile email",
        "nonce": "n-1",
        "redirect_uri": "https://portal.example/accounts/xero/callback/",
    }
    responses.post(settings.XERO_TOKEN_URL, json={"access_token": "a", "expires_in": 1800, "id_token": "x.y.z"})
    token_set = oauth.code_exchange(code="c", code_verifier="v" * 64, redirect_uri=settings.XERO_SIGNIN_REDIRECT_URI)
    form = parse_qs(responses.calls[0].request.body)
    assert form["redirect_uri"] == ["https://portal.example/accounts/xero/callback/"]  # the one the code was sent to
    assert form["grant_type"] == ["authorization_code"] and token_set.id_token == "x.y.z"
    assert "x.y.z" not in repr(token_set)
