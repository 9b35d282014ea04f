"""Accounting API under /api.xro/2.0: the request pipeline and the endpoints.

Pipeline of every call: bearer token (401 TokenExpired / AuthenticationUnsuccessful) -> scope ->
xero-tenant-id (403 AuthenticationUnsuccessful) -> fault rule pick -> rate limits (429) ->
Idempotency-Key (replay / 400) -> latency (holding the concurrency slot) -> injected fault ->
handler -> rate-limit headers, Xero-Correlation-Id.
"""

from __future__ import annotations

import time
from decimal import Decimal

from . import credit_notes, ledger
from .identity import authenticate, require_scope, resolve_tenant
from .ledger import Invalid
from .query import QueryError, apply_order, compile_where, evaluate
from .server import Request, Response, json_response, not_found
from .util import is_uuid, loads, ms_datetime, new_id, parse_http_datetime, plain

BASE = "/api.xro/2.0"
INVOICES_READ = (
    "accounting.invoices",
    "accounting.invoices.read",
    "accounting.transactions",
    "accounting.transactions.read",
)
INVOICES_WRITE = ("accounting.invoices", "accounting.transactions")
PAYMENTS_READ = (
    "accounting.payments",
    "accounting.payments.read",
    "accounting.transactions",
    "accounting.transactions.read",
)
PAYMENTS_WRITE = ("accounting.payments", "accounting.transactions")
CONTACTS_READ = ("accounting.contacts", "accounting.contacts.read")
CONTACTS_WRITE = ("accounting.contacts",)
SETTINGS_READ = ("accounting.settings", "accounting.settings.read")


class BadRequest(Exception):
    def __init__(self, response: Response):
        super().__init__("bad request")
        self.response = response


# ---------------------------------------------------------------- response shapes


def envelope(app, key: str, items: list, pagination: dict | None = None, warnings: list | None = None) -> dict:
    out = {
        "Id": new_id(),
        "Status": "OK",
        "ProviderName": app.settings.s.app_name,
        "DateTimeUTC": ms_datetime(time.time(), offset=False),
    }
    if pagination is not None:
        out["pagination"] = pagination
    if warnings:
        out["Warnings"] = [{"Message": m} for m in warnings]
    out[key] = items
    return out


def validation_error(elements: list, message: str = "A validation exception occurred") -> Response:
    return json_response(
        {"ErrorNumber": 10, "Type": "ValidationException", "Message": message, "Elements": elements}, 400
    )


def simple_validation(message: str) -> Response:
    return validation_error([{"ValidationErrors": [{"Message": message}]}])


def bad_json() -> Response:
    return json_response({"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": "Invalid Json data"}, 400)


def query_error(message: str) -> Response:
    return json_response({"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}, 400)


# ---------------------------------------------------------------- pipeline


def count_elements(request: Request, key: str) -> int:
    if request.method not in ("PUT", "POST") or not request.body:
        return 0
    try:
        data = loads(request.body)
    except ValueError:
        return 1
    if isinstance(data, dict) and isinstance(data.get(key), list):
        return len(data[key])
    if isinstance(data, list):
        return len(data)
    return 1


def endpoint(app, scopes: tuple, write: bool = False, key: str = "Invoices"):
    """Wrap a handler(app, request, org, ctx, **params) with Xero's request pipeline."""

    def decorate(handler):
        def run(request: Request, **params) -> Response:
            started = time.time()
            response = pipeline(app, request, handler, scopes, write, key, params)
            app.log_request(request, response, started)
            return response

        return run

    return decorate


def pipeline(app, request: Request, handler, scopes, write, key, params) -> Response:
    ctx = authenticate(app, request)
    if isinstance(ctx, Response):
        return ctx
    denied = require_scope(request, ctx, scopes)
    if denied is not None:
        return denied
    org = resolve_tenant(app, request, ctx)
    if isinstance(org, Response):
        return org
    tenant = org["OrganisationID"]
    fault = app.faults.pick(request.method, request.path, tenant)
    forced = fault["problem"] if fault and fault["kind"] == "429" else None
    allowed, rl_headers, problem, _ = app.limiter.acquire(tenant, ctx["client_id"], forced)
    if not allowed:
        response = json_response(
            {"Title": "Too Many Requests", "Status": 429, "Detail": f"Rate limit exceeded: {problem}"}, 429
        )
        response.headers += rl_headers
        return response
    try:
        response = guarded(app, request, handler, ctx, org, fault, write, key, params)
    finally:
        app.limiter.release(tenant)
    response.headers += rl_headers
    return response


def simulate_latency(app, request: Request, key: str) -> None:
    s = app.settings.s
    ms = s.latency_ms + s.latency_per_invoice_ms * count_elements(request, key)
    if ms > 0:
        time.sleep(ms / 1000.0 / s.time_scale)


def guarded(app, request, handler, ctx, org, fault, write, key, params) -> Response:
    idem_key = request.header("Idempotency-Key")
    entry = scope = None
    if idem_key is not None and request.method in ("PUT", "POST", "PATCH"):
        if len(idem_key) > 128 or not idem_key.strip():
            return simple_validation("The Idempotency-Key header must be between 1 and 128 characters long.")
        scope = (ctx["client_id"], org["OrganisationID"], idem_key)
        fingerprint = app.idempotency.fingerprint(request.method, request.path, request.raw_query, request.body)
        while True:
            state, entry = app.idempotency.begin(scope, fingerprint)
            if state == "conflict":
                return json_response(
                    {
                        "Title": "Bad Request",
                        "Status": 400,
                        "Detail": "The Idempotency-Key has already been used with a different "
                        "request. Use a new key for a new request.",
                    },
                    400,
                )
            if state == "new":
                break
            if entry.response is not None:
                status, headers, body = entry.response
                replay = Response(status, body, None, list(headers))
                replay.set_header("X-Sandbox-Idempotent-Replay", "true")
                return replay
    simulate_latency(app, request, key)
    kind = fault["kind"] if fault else None
    if kind in ("500", "503", "timeout"):
        if kind == "timeout":
            response = Response(504)
            response.action, response.hold_seconds = "hold", fault["hold"]
        elif kind == "500":
            response = json_response(
                {
                    "Title": "An error occurred",
                    "Status": 500,
                    "Detail": "An error occurred in Xero. Check the API Status page "
                    "http://status.developer.xero.com for current service status.",
                },
                500,
            )
        else:
            response = json_response(
                {
                    "Title": "Service Unavailable",
                    "Status": 503,
                    "Detail": "The Xero API is temporarily unavailable.",
                },
                503,
            )
        if entry is not None:
            if kind == "500":
                app.idempotency.finish(scope, entry, (500, list(response.headers), response.body))
            else:
                app.idempotency.abandon(scope, entry)
        return response
    try:
        try:
            response = handler(app, request, org, ctx, **params)
        except BadRequest as exc:
            response = exc.response
    except Exception:
        if entry is not None:
            app.idempotency.abandon(scope, entry)
        raise
    if entry is not None:
        if response.status < 500 or response.status == 500:
            app.idempotency.finish(scope, entry, (response.status, list(response.headers), response.body))
        else:
            app.idempotency.abandon(scope, entry)
    if kind == "drop_after_write":
        response.action = "drop"
    elif kind == "timeout_after_write":
        response.action, response.hold_seconds = "hold", fault["hold"]
    return response


# ---------------------------------------------------------------- helpers


def body_items(request: Request, key: str) -> list:
    if not request.body.strip():
        raise BadRequest(bad_json())
    try:
        data = loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(bad_json()) from None
    if isinstance(data, dict) and key in data:
        data = data[key]
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise BadRequest(bad_json())


def summarize_errors(request: Request) -> bool:
    return (request.q("summarizeErrors") or "true").strip().lower() != "false"


def unitdp(request: Request) -> int:
    return 4 if (request.q("unitdp") or "").strip() == "4" else 2


def echo(item) -> dict:
    return dict(item) if isinstance(item, dict) else {"Value": plain(item)}


def batch(app, request: Request, key: str, items: list, save, render) -> Response:
    """Save each element on its own (valid ones are kept even when others fail), then answer like
    Xero: 400 listing only the failures, or with summarizeErrors=false 200 with every element."""
    results = []
    with app.store.tx():
        for item in items:
            try:
                with app.store.element():
                    doc, warnings = save(item)
                results.append((True, doc, warnings, item))
            except Invalid as exc:
                results.append((False, None, exc.messages, item))
    failures = [r for r in results if not r[0]]
    if failures and summarize_errors(request):
        elements = []
        for _, _, messages, item in failures:
            element = echo(item)
            element["ValidationErrors"] = [{"Message": m} for m in messages]
            elements.append(element)
        return validation_error(elements)
    out = []
    for ok, doc, messages, item in results:
        if ok:
            element = render(doc)
            element["StatusAttributeString"] = "WARNING" if messages else "OK"
            element["ValidationErrors"] = []
            if messages:
                element["Warnings"] = [{"Message": m} for m in messages]
        else:
            element = echo(item)
            element["HasErrors"] = True
            element["StatusAttributeString"] = "ERROR"
            element["ValidationErrors"] = [{"Message": m} for m in messages]
        out.append(element)
    return json_response(envelope(app, key, out))


def paging(request: Request, items: list):
    page = request.q("page")
    if page is None:
        return items, None
    try:
        page_number = max(1, int(page))
        size = int(request.q("pageSize") or 100)
    except ValueError:
        raise BadRequest(simple_validation("page and pageSize must be whole numbers.")) from None
    size = min(max(size, 1), 1000)
    count = len(items)
    pages = (count + size - 1) // size
    chunk = items[(page_number - 1) * size : page_number * size]
    return chunk, {"page": page_number, "pageSize": size, "pageCount": pages, "itemCount": count}


def list_param(request: Request, name: str) -> list | None:
    value = request.q(name)
    if value is None:
        return None
    return [part.strip().strip('"') for part in value.split(",") if part.strip()]


def modified_since(request: Request):
    value = request.header("If-Modified-Since")
    return parse_http_datetime(value) if value else None


def filter_docs(request: Request, rendered: list, default_order: str | None = None) -> list:
    try:
        where = compile_where(request.q("where"))
        if where is not None:
            rendered = [doc for doc in rendered if evaluate(where, doc)]
        return apply_order(rendered, request.q("order") or default_order)
    except QueryError as exc:
        raise BadRequest(query_error(str(exc))) from None


# ---------------------------------------------------------------- invoices


def get_invoices(app, request: Request, org: dict, ctx: dict) -> Response:
    tenant = org["OrganisationID"]
    where: dict = {}
    ids = list_param(request, "IDs")
    if ids is not None:
        where["ids"] = [i.lower() for i in ids]
    contact_ids = list_param(request, "ContactIDs")
    if contact_ids is not None:
        where["k2"] = [i.lower() for i in contact_ids]
    statuses = list_param(request, "Statuses")
    if statuses is not None:
        where["k3"] = [s.upper() for s in statuses]
    since = modified_since(request)
    if since is not None:
        where["updated__gt"] = since
    docs = app.store.find("invoice", tenant=tenant, **where)
    numbers = list_param(request, "InvoiceNumbers")
    if numbers is not None:
        wanted = {n.upper() for n in numbers}
        docs = [d for d in docs if (d.get("InvoiceNumber") or "").upper() in wanted]
    if (request.q("createdByMyApp") or "").lower() == "true":
        docs = [d for d in docs if d.get("created_by") == ctx["client_id"]]
    term = (request.q("searchTerm") or "").strip().lower()
    if term:
        docs = [
            d
            for d in docs
            if term in (d.get("InvoiceNumber") or "").lower() or term in (d.get("Reference") or "").lower()
        ]
    summary = (request.q("summaryOnly") or "").lower() == "true"
    with_lines = request.q("page") is not None and not summary
    dp = unitdp(request)
    if request.q("where") is None and request.q("order") is None:
        docs, pagination = paging(request, docs)  # page first: only render what is returned
        page = [ledger.render_invoice(app, d, lines=with_lines, unitdp=dp, summary=summary) for d in docs]
    else:
        rendered = [ledger.render_invoice(app, d, lines=with_lines, unitdp=dp, summary=summary) for d in docs]
        page, pagination = paging(request, filter_docs(request, rendered))
    return json_response(envelope(app, "Invoices", page, pagination))


def get_invoice(app, request: Request, org: dict, ctx: dict, invoice_id: str) -> Response:
    invoice = ledger.get_invoice(app, org["OrganisationID"], invoice_id)
    if invoice is None:
        return not_found()
    return json_response(envelope(app, "Invoices", [ledger.render_invoice(app, invoice, unitdp=unitdp(request))]))


def save_invoices(app, request: Request, org: dict, ctx: dict, mode: str, invoice_id: str | None = None):
    items = body_items(request, "Invoices")
    dp = unitdp(request)

    def save(item):
        invoice, warnings, _ = ledger.save_invoice(app, org, item, mode, ctx["client_id"], invoice_id, dp)
        return invoice, warnings

    return batch(app, request, "Invoices", items, save, lambda d: ledger.render_invoice(app, d, unitdp=dp))


def put_invoices(app, request, org, ctx):
    return save_invoices(app, request, org, ctx, "create")


def post_invoices(app, request, org, ctx):
    return save_invoices(app, request, org, ctx, "upsert")


def post_invoice(app, request, org, ctx, invoice_id):
    if ledger.get_invoice(app, org["OrganisationID"], invoice_id) is None:
        return not_found()
    invoice = ledger.get_invoice(app, org["OrganisationID"], invoice_id)
    return save_invoices(app, request, org, ctx, "update", invoice["InvoiceID"])


def online_invoice(app, request, org, ctx, invoice_id):
    invoice = ledger.get_invoice(app, org["OrganisationID"], invoice_id)
    if invoice is None:
        return not_found()
    if invoice["Status"] in ("DRAFT", "DELETED"):
        return simple_validation(f"An online invoice cannot be created for a {invoice['Status']} invoice.")
    url = f"{app.base_url}/in/{invoice['online_token']}"
    return json_response(envelope(app, "OnlineInvoices", [{"OnlineInvoiceUrl": url}]))


def email_invoice(app, request, org, ctx, invoice_id):
    invoice = ledger.get_invoice(app, org["OrganisationID"], invoice_id)
    if invoice is None:
        return not_found()
    if invoice["Status"] not in ("AUTHORISED", "PAID"):
        return simple_validation("Only AUTHORISED or PAID invoices can be emailed.")
    contact = ledger.get_contact(app, org["OrganisationID"], invoice["ContactID"])
    if not (contact or {}).get("EmailAddress"):
        return simple_validation("The contact does not have an email address.")
    if not invoice.get("SentToContact"):
        ledger.save_invoice(app, org, {"SentToContact": True}, "update", ctx["client_id"], invoice["InvoiceID"])
    return Response(204)


# ---------------------------------------------------------------- credit notes


def get_credit_notes(app, request: Request, org: dict, ctx: dict) -> Response:
    where: dict = {}
    since = modified_since(request)
    if since is not None:
        where["updated__gt"] = since
    docs = credit_notes.credit_notes(app, org["OrganisationID"], **where)
    dp = unitdp(request)
    with_lines = request.q("page") is not None
    rendered = [credit_notes.render_credit_note(app, d, lines=with_lines, unitdp=dp) for d in docs]
    page, pagination = paging(request, filter_docs(request, rendered))
    return json_response(envelope(app, "CreditNotes", page, pagination))


def get_credit_note(app, request: Request, org: dict, ctx: dict, credit_note_id: str) -> Response:
    note = credit_notes.get_credit_note(app, org["OrganisationID"], credit_note_id)
    if note is None:
        return not_found()
    rendered = credit_notes.render_credit_note(app, note, unitdp=unitdp(request))
    return json_response(envelope(app, "CreditNotes", [rendered]))


def put_credit_notes(app, request: Request, org: dict, ctx: dict) -> Response:
    items = body_items(request, "CreditNotes")
    dp = unitdp(request)

    def save(item):
        return credit_notes.save_credit_note(app, org, item, ctx["client_id"], dp)

    return batch(app, request, "CreditNotes", items, save, lambda d: credit_notes.render_credit_note(app, d, unitdp=dp))


def put_allocations(app, request: Request, org: dict, ctx: dict, credit_note_id: str) -> Response:
    if credit_notes.get_credit_note(app, org["OrganisationID"], credit_note_id) is None:
        return not_found()
    items = body_items(request, "Allocations")

    def save(item):
        allocation, _, _ = credit_notes.allocate(app, org, credit_note_id, item, ctx["client_id"])
        return allocation, []

    return batch(
        app, request, "Allocations", items, save, lambda a: credit_notes.render_allocation(a, credit_note=True)
    )


# ---------------------------------------------------------------- contacts


def get_contacts(app, request: Request, org: dict, ctx: dict) -> Response:
    where: dict = {}
    ids = list_param(request, "IDs")
    if ids is not None:
        where["ids"] = [i.lower() for i in ids]
    since = modified_since(request)
    if since is not None:
        where["updated__gt"] = since
    docs = app.store.find("contact", tenant=org["OrganisationID"], **where)
    if (request.q("includeArchived") or "").lower() != "true" and ids is None:
        docs = [d for d in docs if d["ContactStatus"] != "ARCHIVED"]
    term = (request.q("searchTerm") or "").strip().lower()
    if term:
        fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
        docs = [d for d in docs if any(term in str(d.get(f) or "").lower() for f in fields)]
    summary = (request.q("summaryOnly") or "").lower() == "true"
    full = request.q("page") is not None and not summary
    rendered = filter_docs(request, [ledger.render_contact(app, d, full=full) for d in docs])
    page, pagination = paging(request, rendered)
    return json_response(envelope(app, "Contacts", page, pagination))


def get_contact(app, request: Request, org: dict, ctx: dict, key: str) -> Response:
    tenant = org["OrganisationID"]
    contact = ledger.get_contact(app, tenant, key) if is_uuid(key) else ledger.contact_by_number(app, tenant, key)
    if contact is None:
        return not_found()
    return json_response(envelope(app, "Contacts", [ledger.render_contact(app, contact)]))


def save_contacts(app, request, org, ctx, mode, contact_id=None):
    items = body_items(request, "Contacts")

    def save(item):
        contact, _ = ledger.save_contact(app, org, item, mode, ctx["client_id"], contact_id)
        return contact, []

    return batch(app, request, "Contacts", items, save, lambda d: ledger.render_contact(app, d))


def post_contact(app, request, org, ctx, contact_id):
    contact = ledger.get_contact(app, org["OrganisationID"], contact_id) if is_uuid(contact_id) else None
    if contact is None:
        return not_found()
    return save_contacts(app, request, org, ctx, "update", contact["ContactID"])


# ---------------------------------------------------------------- settings


def get_accounts(app, request, org, ctx, account_id=None):
    docs = ledger.accounts(app, org["OrganisationID"])
    if account_id is not None:
        docs = [d for d in docs if d["AccountID"] == account_id.lower()]
        if not docs:
            return not_found()
    since = modified_since(request)
    if since is not None:
        docs = [d for d in docs if d["UpdatedDateUTC"] > since]
    rendered = filter_docs(request, [ledger.render_account(d) for d in docs])
    return json_response(envelope(app, "Accounts", rendered))


def get_taxrates(app, request, org, ctx):
    docs = app.store.find("taxrate", tenant=org["OrganisationID"])
    tax_type = request.q("TaxType")
    if tax_type:
        docs = [d for d in docs if d["TaxType"].upper() == tax_type.upper()]
    rendered = filter_docs(request, [ledger.render_taxrate(d) for d in docs])
    return json_response(envelope(app, "TaxRates", rendered))


def get_organisation(app, request, org, ctx):
    return json_response(envelope(app, "Organisations", [ledger.render_organisation(org)]))


CURRENCY_NAMES = {
    "AUD": "Australian Dollar",
    "GBP": "British Pound",
    "USD": "United States Dollar",
    "NZD": "New Zealand Dollar",
    "EUR": "Euro",
}


def get_currencies(app, request, org, ctx):
    items = [{"Code": c, "Description": CURRENCY_NAMES.get(c, c)} for c in org["Currencies"]]
    return json_response(envelope(app, "Currencies", filter_docs(request, items)))


# ---------------------------------------------------------------- payments


def render_payment_full(app, payment: dict, invoice: dict) -> dict:
    out = ledger.render_payment(payment)
    out.update(
        Status="AUTHORISED",
        PaymentType="ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
        Account={"AccountID": payment["AccountID"], "Code": payment["AccountCode"]},
        Invoice={
            "InvoiceID": invoice["InvoiceID"],
            "InvoiceNumber": invoice.get("InvoiceNumber", ""),
            "Type": invoice["Type"],
        },
    )
    return out


def put_payments(app, request, org, ctx):
    items = body_items(request, "Payments")

    def save(item):
        if not isinstance(item, dict):
            raise Invalid(["A payment must be a JSON object."])
        ref = item.get("Invoice") or {}
        key = ref.get("InvoiceID") or ref.get("InvoiceNumber")
        if not key:
            raise Invalid(["An Invoice must be specified (InvoiceID or InvoiceNumber)."])
        account = item.get("Account") or {}
        code = account.get("Code")
        if not code and account.get("AccountID"):
            found = [
                a
                for a in ledger.accounts(app, org["OrganisationID"])
                if a["AccountID"] == str(account["AccountID"]).lower()
            ]
            code = found[0]["Code"] if found else str(account["AccountID"])
        if not code:
            raise Invalid(["An Account must be specified (Code or AccountID)."])
        payment, invoice = ledger.record_payment(
            app,
            org,
            str(key),
            item.get("Amount"),
            item.get("Date"),
            code,
            item.get("Reference", ""),
            ctx["client_id"],
        )
        return (payment, invoice), []

    return batch(app, request, "Payments", items, save, lambda pair: render_payment_full(app, *pair))


def get_payments(app, request, org, ctx):
    out = []
    for invoice in app.store.find("invoice", tenant=org["OrganisationID"]):
        for payment in invoice["Payments"]:
            out.append(render_payment_full(app, payment, invoice))
    rendered = filter_docs(request, out)
    page, pagination = paging(request, rendered)
    return json_response(envelope(app, "Payments", page, pagination))


def register(app) -> None:
    r = app.router

    def add(method, path, scopes, handler, write=False, key="Invoices"):
        r.add(method, BASE + path, endpoint(app, scopes, write, key)(handler))

    add("GET", "/Invoices", INVOICES_READ, get_invoices)
    add("PUT", "/Invoices", INVOICES_WRITE, put_invoices, True)
    add("POST", "/Invoices", INVOICES_WRITE, post_invoices, True)
    add("GET", "/Invoices/{invoice_id}", INVOICES_READ, get_invoice)
    add("POST", "/Invoices/{invoice_id}", INVOICES_WRITE, post_invoice, True)
    add("GET", "/Invoices/{invoice_id}/OnlineInvoice", INVOICES_READ, online_invoice)
    add("POST", "/Invoices/{invoice_id}/Email", INVOICES_WRITE, email_invoice, True)
    add("GET", "/CreditNotes", INVOICES_READ, get_credit_notes)
    add("PUT", "/CreditNotes", INVOICES_WRITE, put_credit_notes, True, "CreditNotes")
    add("GET", "/CreditNotes/{credit_note_id}", INVOICES_READ, get_credit_note)
    add("PUT", "/CreditNotes/{credit_note_id}/Allocations", INVOICES_WRITE, put_allocations, True, "Allocations")
    add("GET", "/Contacts", CONTACTS_READ, get_contacts)
    add(
        "PUT",
        "/Contacts",
        CONTACTS_WRITE,
        lambda a, q, o, c: save_contacts(a, q, o, c, "create"),
        True,
        "Contacts",
    )
    add(
        "POST",
        "/Contacts",
        CONTACTS_WRITE,
        lambda a, q, o, c: save_contacts(a, q, o, c, "upsert"),
        True,
        "Contacts",
    )
    add("GET", "/Contacts/{key}", CONTACTS_READ, get_contact)
    add("POST", "/Contacts/{contact_id}", CONTACTS_WRITE, post_contact, True, "Contacts")
    add("GET", "/Accounts", SETTINGS_READ, get_accounts)
    add("GET", "/Accounts/{account_id}", SETTINGS_READ, get_accounts)
    add("GET", "/TaxRates", SETTINGS_READ, get_taxrates)
    add("GET", "/Organisation", SETTINGS_READ, get_organisation)
    add("GET", "/Currencies", SETTINGS_READ, get_currencies)
    add("GET", "/Payments", PAYMENTS_READ, get_payments)
    add("PUT", "/Payments", PAYMENTS_WRITE, put_payments, True, "Payments")
    add("POST", "/Payments", PAYMENTS_WRITE, put_payments, True, "Payments")


__all__ = ["register", "envelope", "Decimal"]
