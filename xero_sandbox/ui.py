"""The sandbox's web UI: what a person does in Xero.

Browse organisations, invoices and contacts; create an invoice; edit its lines; approve, void or
delete it; record a full or part payment (or remove one); add and edit contacts. Every change goes
through ledger, so it updates UpdatedDateUTC and fires webhooks exactly like an API change.
No login is needed for these pages (the sandbox is a local tool).
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote, unquote, urlencode

from . import ledger
from .ledger import Invalid
from .pages import esc, hidden, layout
from .server import Request, html_response, not_found, redirect


def org_or_none(app, tenant_id: str):
    return app.store.get("org", tenant_id.lower())


def flash(request: Request) -> str:
    out = ""
    if request.q("error"):
        out += f'<p class="error" id="flash-error">{esc(request.q("error"))}</p>'
    if request.q("msg"):
        out += f'<p class="badge" id="flash-msg">{esc(request.q("msg"))}</p>'
    return out


def back(url: str, error: str | None = None, msg: str | None = None):
    params = {k: v for k, v in (("error", error), ("msg", msg)) if v}
    return redirect(url + ("?" + urlencode(params) if params else ""), 303)


def amount(value) -> str:
    return f"{ledger.money(value):,.2f}"


# ---------------------------------------------------------------- pages


def home(app, request: Request):
    s = app.settings.s
    orgs = "".join(
        f'<li><a href="/orgs/{o["OrganisationID"]}">{esc(o["Name"])}</a> '
        f'<span class="note">{esc(o["ShortCode"])} · {esc(o["BaseCurrency"])} · '
        f"tenant {esc(o['OrganisationID'])}"
        f"</span></li>"
        for o in app.store.find("org")
    )
    base = esc(app.base_url)
    body = (
        f"{flash(request)}<h2>Organisations</h2><ul>{orgs}</ul>"
        "<h2>Connect an app</h2><table>"
        f"<tr><th>Authorize</th><td><code>{base}/identity/connect/authorize</code></td></tr>"
        f"<tr><th>Token</th><td><code>{base}/connect/token</code></td></tr>"
        f"<tr><th>Revocation</th><td><code>{base}/connect/revocation</code></td></tr>"
        f"<tr><th>Connections</th><td><code>{base}/connections</code></td></tr>"
        f"<tr><th>Accounting API</th><td><code>{base}/api.xro/2.0</code></td></tr>"
        f"<tr><th>Client id</th><td><code>{esc(s.client_id)}</code></td></tr>"
        f"<tr><th>Redirect URIs</th><td>{'<br>'.join(esc(u) for u in s.redirect_uris)}</td></tr>"
        "<tr><th>Xero login</th><td><code>demo@sandbox.test</code> / <code>sandbox</code></td></tr>"
        f"<tr><th>Webhook URL</th><td>{esc(s.webhook_url or '(not set)')}</td></tr>"
        f"<tr><th>Time scale</th><td>{esc(s.time_scale)}</td></tr></table>"
        '<p class="note">Admin/test API: <a href="/_sandbox/state">/_sandbox/state</a> '
        "(see docs/sandbox.md)</p>"
    )
    return html_response(layout("Xero sandbox", body))


def orgs(app, request: Request):
    rows = "".join(
        f'<tr><td><a href="/orgs/{o["OrganisationID"]}">{esc(o["Name"])}</a></td>'
        f"<td>{esc(o['ShortCode'])}</td>"
        f"<td>{esc(o['BaseCurrency'])}</td><td>{esc(o['CountryCode'])}</td></tr>"
        for o in app.store.find("org")
    )
    body = f"<table><tr><th>Name</th><th>Short code</th><th>Currency</th><th>Country</th></tr>{rows}</table>"
    return html_response(layout("Organisations", body))


def org_page(app, request: Request, tenant: str):
    org = org_or_none(app, tenant)
    if org is None:
        return not_found()
    tid = org["OrganisationID"]
    invoices = app.store.find("invoice", tenant=tid)
    rows = []
    for inv in reversed(invoices):
        contact = ledger.get_contact(app, tid, inv["ContactID"]) or {"Name": "?"}
        rows.append(
            f'<tr><td><a href="/orgs/{tid}/invoices/{inv["InvoiceID"]}">'
            f"{esc(inv.get('InvoiceNumber') or '(no number)')}</a></td><td>{esc(inv['Type'])}</td>"
            f"<td>{esc(contact['Name'])}</td><td>{esc(inv.get('Reference', ''))}</td>"
            f"<td>{esc(inv['Date'])}</td><td>{esc(inv.get('DueDate') or '')}</td>"
            f'<td><span class="badge status">{esc(inv["Status"])}</span></td>'
            f"<td>{amount(inv['Total'])}</td><td>{amount(inv['AmountDue'])}</td></tr>"
        )
    body = (
        f"{flash(request)}<p>{esc(org['LegalName'])} · short code {esc(org['ShortCode'])} · "
        f"{esc(org['BaseCurrency'])} · tenant id <code>{esc(tid)}</code></p>"
        f'<p><a class="button" href="/orgs/{tid}/invoices/new" id="new-invoice">New invoice</a> '
        f'<a class="button" href="/orgs/{tid}/contacts">Contacts</a></p>'
        "<h2>Invoices</h2><table id=invoices><tr><th>Number</th><th>Type</th><th>Contact</th>"
        "<th>Reference</th>"
        f"<th>Date</th><th>Due</th><th>Status</th><th>Total</th><th>Due</th></tr>{''.join(rows)}</table>"
    )
    return html_response(layout(org["Name"], body))


def account_options(app, tid: str, selected: str | None, revenue_only: bool = True) -> str:
    opts = ['<option value="">(none)</option>']
    for acc in ledger.accounts(app, tid):
        if acc["Status"] != "ACTIVE" or acc["Type"] == "BANK" or acc.get("SystemAccount"):
            continue
        if revenue_only and acc["Class"] != "REVENUE":
            continue
        sel = " selected" if acc["Code"] == selected else ""
        opts.append(f'<option value="{esc(acc["Code"])}"{sel}>{esc(acc["Code"])} {esc(acc["Name"])}</option>')
    return "".join(opts)


def tax_options(app, tid: str, selected: str | None) -> str:
    opts = ['<option value="">(account default)</option>']
    for rate in app.store.find("taxrate", tenant=tid):
        if rate["Status"] == "ACTIVE" and rate["CanApplyToRevenue"]:
            sel = " selected" if rate["TaxType"] == selected else ""
            opts.append(f'<option value="{esc(rate["TaxType"])}"{sel}>{esc(rate["Name"])}</option>')
    return "".join(opts)


def line_rows(app, tid: str, lines: list, blanks: int) -> str:
    rows = []
    for line in lines + [{}] * blanks:
        rows.append(
            "<tr>"
            + hidden("line_id", line.get("LineItemID", ""))
            + f'<td><input name="description" value="{esc(line.get("Description", ""))}"></td>'
            + f'<td><input name="quantity" size=6 value="{esc(line.get("Quantity", ""))}"></td>'
            + f'<td><input name="unit_amount" size=8 value="{esc(line.get("UnitAmount", ""))}"></td>'
            + '<td><select name="account_code">'
            + account_options(app, tid, line.get("AccountCode"))
            + "</select></td>"
            + f'<td><select name="tax_type">{tax_options(app, tid, line.get("TaxType"))}</select></td></tr>'
        )
    return (
        "<table><tr><th>Description</th><th>Qty</th><th>Unit price</th><th>Account</th><th>Tax</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def lines_from_form(request: Request) -> list:
    form = request.form_lists()
    columns = ("line_id", "description", "quantity", "unit_amount", "account_code", "tax_type")
    count = len(form.get("description", []))
    lines = []
    for i in range(count):
        values = {c: (form.get(c, [""] * count)[i] if i < len(form.get(c, [])) else "") for c in columns}
        if not any(values[c].strip() for c in ("description", "quantity", "unit_amount")):
            continue
        line = {"Description": values["description"].strip()}
        if values["line_id"]:
            line["LineItemID"] = values["line_id"]
        for key, column in (("Quantity", "quantity"), ("UnitAmount", "unit_amount")):
            if values[column].strip():
                line[key] = values[column].strip()
        if values["account_code"]:
            line["AccountCode"] = values["account_code"]
        if values["tax_type"]:
            line["TaxType"] = values["tax_type"]
        lines.append(line)
    return lines


def new_invoice_page(app, request: Request, tenant: str):
    org = org_or_none(app, tenant)
    if org is None:
        return not_found()
    tid = org["OrganisationID"]
    contacts = "".join(
        f'<option value="{c["ContactID"]}">{esc(c["Name"])}</option>'
        for c in app.store.find("contact", tenant=tid)
        if c["ContactStatus"] == "ACTIVE"
    )
    today = ledger.org_today(app, org)
    body = (
        f"{flash(request)}<form method=post action=/orgs/{tid}/invoices id=invoice-form>"
        f"<label>Contact <select name=contact_id>{contacts}</select></label>"
        f'<label>Date <input name=date value="{today.isoformat()}"></label>'
        "<label>Due date <input name=due_date placeholder=YYYY-MM-DD></label>"
        "<label>Reference <input name=reference></label>"
        "<label>Amounts are <select name=line_amount_types><option>Exclusive</option>"
        "<option>Inclusive</option>"
        "<option>NoTax</option></select></label>"
        "<label>Status <select name=status><option>DRAFT</option><option>SUBMITTED</option>"
        "<option>AUTHORISED</option></select></label>"
        + line_rows(app, tid, [], 3)
        + '<button type=submit id="save-invoice">Save</button></form>'
    )
    return html_response(layout(f"New invoice · {org['Name']}", body))


def create_invoice(app, request: Request, tenant: str):
    org = org_or_none(app, tenant)
    if org is None:
        return not_found()
    form = request.form()
    data = {
        "Type": "ACCREC",
        "Contact": {"ContactID": form.get("contact_id", "")},
        "Date": form.get("date") or None,
        "DueDate": form.get("due_date") or None,
        "Reference": form.get("reference", ""),
        "LineAmountTypes": form.get("line_amount_types") or "Exclusive",
        "Status": form.get("status") or "DRAFT",
        "LineItems": lines_from_form(request),
    }
    data = {k: v for k, v in data.items() if v is not None}
    tid = org["OrganisationID"]
    try:
        invoice, _, _ = ledger.save_invoice(app, org, data, "create")
    except Invalid as exc:
        return back(f"/orgs/{tid}/invoices/new", error=" ".join(exc.messages))
    return back(f"/orgs/{tid}/invoices/{invoice['InvoiceID']}", msg="Invoice created")


def invoice_page(app, request: Request, tenant: str, invoice_id: str):
    org = org_or_none(app, tenant)
    invoice = ledger.get_invoice(app, org["OrganisationID"], invoice_id) if org else None
    if invoice is None:
        return not_found()
    tid, iid = org["OrganisationID"], invoice["InvoiceID"]
    contact = ledger.get_contact(app, tid, invoice["ContactID"]) or {"Name": "?", "ContactID": ""}
    status = invoice["Status"]
    lines = "".join(
        f"<tr><td>{esc(line.get('Description', ''))}</td>"
        f"<td>{esc(ledger.money(line['Quantity'], Decimal('0.0001')))}"
        f"</td><td>{amount(line['UnitAmount'])}</td><td>{esc(line.get('AccountCode', ''))}</td>"
        f"<td>{esc(line.get('TaxType', ''))}</td><td>{amount(line['TaxAmount'])}</td>"
        f"<td>{amount(line['LineAmount'])}</td></tr>"
        for line in invoice["LineItems"]
    )
    payments = "".join(
        f"<tr><td>{esc(p['Date'])}</td><td>{amount(p['Amount'])}</td><td>{esc(p.get('Reference', ''))}</td>"
        f"<td><form class=inline method=post "
        f"action=/orgs/{tid}/invoices/{iid}/payments/{p['PaymentID']}/remove>"
        '<button class="secondary remove-payment">Remove</button></form></td></tr>'
        for p in invoice["Payments"]
    )
    actions = []
    if status in ("DRAFT", "SUBMITTED"):
        actions.append(status_button(tid, iid, "AUTHORISED", "Approve", "approve"))
        actions.append(status_button(tid, iid, "DELETED", "Delete", "delete"))
    if status == "AUTHORISED":
        actions.append(status_button(tid, iid, "VOIDED", "Void", "void"))
    pay_form = ""
    if status == "AUTHORISED":
        banks = "".join(
            f'<option value="{esc(a["Code"])}">{esc(a["Code"])} {esc(a["Name"])}</option>'
            for a in ledger.accounts(app, tid)
            if a["Type"] == "BANK" and a["Status"] == "ACTIVE"
        )
        pay_form = (
            "<h2>Record a payment</h2>"
            f"<form method=post action=/orgs/{tid}/invoices/{iid}/payment id=payment-form>"
            "<label>Amount <input name=amount id=amount "
            f'value="{ledger.money(invoice["AmountDue"])}"></label>'
            f'<label>Date <input name=date value="{ledger.org_today(app, org).isoformat()}"></label>'
            f"<label>Paid to <select name=account_code>{banks}</select></label>"
            "<label>Reference <input name=reference></label>"
            '<button type=submit id="record-payment">Record payment</button></form>'
        )
    edit = ""
    unallocated = not invoice["Payments"] and not invoice.get("CreditNoteAllocations")
    if status in ("DRAFT", "SUBMITTED") or (status == "AUTHORISED" and unallocated):
        edit = (
            f"<h2>Edit lines</h2><form method=post action=/orgs/{tid}/invoices/{iid}/lines id=lines-form>"
            + line_rows(app, tid, invoice["LineItems"], 1)
            + '<button type=submit id="save-lines">Save lines</button></form>'
        )
    online = (
        f' · <a href="/in/{invoice["online_token"]}">online invoice</a>' if status not in ("DRAFT", "DELETED") else ""
    )
    body = (
        f"{flash(request)}<p><a href=/orgs/{tid}>{esc(org['Name'])}</a>{online}</p>"
        f'<p>Status <span class="badge" id="status">{esc(status)}</span> · To '
        f"<a href=/orgs/{tid}/contacts/{contact['ContactID']}>{esc(contact['Name'])}</a> · "
        f"Date {esc(invoice['Date'])} · Due {esc(invoice.get('DueDate') or '')} · "
        f"Reference {esc(invoice.get('Reference', ''))} · {esc(invoice['LineAmountTypes'])} · "
        f"{esc(invoice['CurrencyCode'])}</p>"
        "<table id=lines><tr><th>Description</th><th>Qty</th><th>Unit</th><th>Account</th><th>Tax type</th>"
        f"<th>Tax</th><th>Amount</th></tr>{lines}</table>"
        f"<p>Subtotal {amount(invoice['SubTotal'])} · Tax {amount(invoice['TotalTax'])} · "
        f"<strong>Total {amount(invoice['Total'])}</strong> · Paid {amount(invoice['AmountPaid'])} · "
        f'Credited <span id="amount-credited">{amount(invoice["AmountCredited"])}</span> · '
        f'<strong>Due <span id="amount-due">{amount(invoice["AmountDue"])}</span></strong></p>'
        f"<p>{' '.join(actions)}</p>"
        + (f"<h2>Payments</h2><table>{payments}</table>" if payments else "")
        + (
            "<h2>Credit notes</h2><table id=credit-notes><tr><th>Credit note</th><th>Date</th><th>Applied</th></tr>"
            + "".join(
                f"<tr><td>{esc(a.get('CreditNoteNumber', ''))}</td><td>{esc(a['Date'])}</td>"
                f"<td>{amount(a['Amount'])}</td></tr>"
                for a in invoice.get("CreditNoteAllocations", [])
            )
            + "</table>"
            if invoice.get("CreditNoteAllocations")
            else ""
        )
        + pay_form
        + edit
    )
    title = f"Invoice {invoice.get('InvoiceNumber') or ''}".strip()
    return html_response(layout(title, body))


def status_button(tid, iid, status, label, element_id):
    return (
        f"<form class=inline method=post action=/orgs/{tid}/invoices/{iid}/status>{hidden('status', status)}"
        f'<button type=submit id="{element_id}">{label}</button></form>'
    )


def _invoice_action(app, request, tenant, invoice_id, action):
    org = org_or_none(app, tenant)
    invoice = ledger.get_invoice(app, org["OrganisationID"], invoice_id) if org else None
    if invoice is None:
        return not_found()
    url = f"/orgs/{org['OrganisationID']}/invoices/{invoice['InvoiceID']}"
    try:
        message = action(org, invoice, request.form())
    except Invalid as exc:
        return back(url, error=" ".join(exc.messages))
    return back(url, msg=message)


def set_status(app, request, tenant, invoice_id):
    def act(org, invoice, form):
        ledger.save_invoice(app, org, {"Status": form.get("status", "")}, "update", None, invoice["InvoiceID"])
        return f"Invoice {form.get('status', '').lower()}"

    return _invoice_action(app, request, tenant, invoice_id, act)


def pay(app, request, tenant, invoice_id):
    def act(org, invoice, form):
        payment, updated = ledger.record_payment(
            app,
            org,
            invoice["InvoiceID"],
            form.get("amount"),
            form.get("date") or None,
            form.get("account_code") or None,
            form.get("reference", ""),
        )
        return f"Payment of {amount(payment['Amount'])} recorded; invoice is {updated['Status']}"

    return _invoice_action(app, request, tenant, invoice_id, act)


def remove_payment(app, request, tenant, invoice_id, payment_id):
    def act(org, invoice, form):
        ledger.remove_payment(app, org, invoice["InvoiceID"], payment_id)
        return "Payment removed"

    return _invoice_action(app, request, tenant, invoice_id, act)


def edit_lines(app, request, tenant, invoice_id):
    def act(org, invoice, form):
        lines = lines_from_form(request)
        ledger.save_invoice(app, org, {"LineItems": lines}, "update", None, invoice["InvoiceID"])
        return "Lines saved"

    return _invoice_action(app, request, tenant, invoice_id, act)


def contacts_page(app, request: Request, tenant: str):
    org = org_or_none(app, tenant)
    if org is None:
        return not_found()
    tid = org["OrganisationID"]
    rows = "".join(
        f'<tr><td><a href="/orgs/{tid}/contacts/{c["ContactID"]}">{esc(c["Name"])}</a></td>'
        f"<td>{esc(c.get('ContactNumber', ''))}</td><td>{esc(c.get('EmailAddress', ''))}</td>"
        f"<td>{esc(c['ContactStatus'])}</td></tr>"
        for c in app.store.find("contact", tenant=tid)
    )
    body = (
        f"{flash(request)}<p><a href=/orgs/{tid}>{esc(org['Name'])}</a></p>"
        "<table id=contacts><tr><th>Name</th><th>Number</th><th>Email</th><th>Status</th></tr>"
        f"{rows}</table><h2>Add a contact</h2><form method=post action=/orgs/{tid}/contacts id=contact-form>"
        "<label>Name <input name=name required></label><label>Email <input name=email></label>"
        '<button type=submit id="add-contact">Add contact</button></form>'
    )
    return html_response(layout(f"Contacts · {org['Name']}", body))


def contact_page(app, request: Request, tenant: str, contact_id: str):
    org = org_or_none(app, tenant)
    contact = ledger.get_contact(app, org["OrganisationID"], contact_id) if org else None
    if contact is None:
        return not_found()
    tid = org["OrganisationID"]
    statuses = "".join(
        f"<option{' selected' if s == contact['ContactStatus'] else ''}>{s}</option>" for s in ("ACTIVE", "ARCHIVED")
    )
    body = (
        f"{flash(request)}<p><a href=/orgs/{tid}/contacts>Contacts</a> · ContactID <code>"
        f"{esc(contact['ContactID'])}</code> · ContactNumber {esc(contact.get('ContactNumber', ''))}</p>"
        f"<form method=post action=/orgs/{tid}/contacts/{contact['ContactID']} id=contact-edit>"
        f'<label>Name <input name=name value="{esc(contact["Name"])}"></label>'
        f'<label>Email <input name=email value="{esc(contact.get("EmailAddress", ""))}"></label>'
        f"<label>Status <select name=status>{statuses}</select></label>"
        '<button type=submit id="save-contact">Save</button></form>'
    )
    return html_response(layout(contact["Name"], body))


def save_contact(app, request: Request, tenant: str, contact_id: str | None = None):
    org = org_or_none(app, tenant)
    if org is None:
        return not_found()
    tid = org["OrganisationID"]
    form = request.form()
    data = {"Name": form.get("name", "").strip(), "EmailAddress": form.get("email", "").strip() or None}
    if form.get("status"):
        data["ContactStatus"] = form["status"]
    data = {k: v for k, v in data.items() if v is not None}
    try:
        with app.store.tx():
            contact, _ = ledger.save_contact(app, org, data, "update" if contact_id else "create", None, contact_id)
    except Invalid as exc:
        target = f"/orgs/{tid}/contacts" + (f"/{contact_id}" if contact_id else "")
        return back(target, error=" ".join(exc.messages))
    return back(f"/orgs/{tid}/contacts/{contact['ContactID']}", msg="Contact saved")


def online_invoice(app, request: Request, token: str):
    for invoice in app.store.find("invoice"):
        if invoice.get("online_token") == token and invoice["Status"] not in ("DRAFT", "DELETED"):
            org = app.store.get("org", invoice["tenant"])
            contact = ledger.get_contact(app, invoice["tenant"], invoice["ContactID"]) or {"Name": ""}
            lines = "".join(
                f"<tr><td>{esc(line.get('Description', ''))}</td><td>{amount(line['LineAmount'])}</td></tr>"
                for line in invoice["LineItems"]
            )
            body = (
                f"<p>From {esc(org['Name'])} to {esc(contact['Name'])}</p><table>{lines}</table>"
                f"<p>Total {esc(invoice['CurrencyCode'])} {amount(invoice['Total'])} · "
                f"Amount due {amount(invoice['AmountDue'])} · {esc(invoice['Status'])}</p>"
            )
            return html_response(layout(f"Invoice {invoice.get('InvoiceNumber', '')}", body, nav=False))
    return not_found()


def deep_link(app, request: Request, short_code: str, invoice_id: str):
    """Xero's own invoice deep link, https://go.xero.com/app/{ShortCode}/invoicing/view/{InvoiceID}."""
    short_code = unquote(short_code)  # links escape the "!" that starts a ShortCode
    org = next((o for o in app.store.find("org") if o["ShortCode"] == short_code), None)
    if org is None or ledger.get_invoice(app, org["OrganisationID"], invoice_id) is None:
        return not_found()
    return redirect(f"/orgs/{org['OrganisationID']}/invoices/{invoice_id}", 302)


def register(app) -> None:
    r = app.router

    def add(method, path, handler):
        r.add(method, path, lambda request, **params: handler(app, request, **params))

    add("GET", "/", home)
    add("GET", "/orgs", orgs)
    add("GET", "/orgs/{tenant}", org_page)
    add("GET", "/orgs/{tenant}/invoices/new", new_invoice_page)
    add("POST", "/orgs/{tenant}/invoices", create_invoice)
    add("GET", "/orgs/{tenant}/invoices/{invoice_id}", invoice_page)
    add("POST", "/orgs/{tenant}/invoices/{invoice_id}/status", set_status)
    add("POST", "/orgs/{tenant}/invoices/{invoice_id}/payment", pay)
    add("POST", "/orgs/{tenant}/invoices/{invoice_id}/payments/{payment_id}/remove", remove_payment)
    add("POST", "/orgs/{tenant}/invoices/{invoice_id}/lines", edit_lines)
    add("GET", "/orgs/{tenant}/contacts", contacts_page)
    add("POST", "/orgs/{tenant}/contacts", save_contact)
    add("GET", "/orgs/{tenant}/contacts/{contact_id}", contact_page)
    add("POST", "/orgs/{tenant}/contacts/{contact_id}", save_contact)
    add("GET", "/in/{token}", online_invoice)
    add("GET", "/app/{short_code}/invoicing/view/{invoice_id}", deep_link)


__all__ = ["register", "quote"]
