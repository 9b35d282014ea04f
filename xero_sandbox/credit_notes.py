"""Credit notes and their allocations to invoices, as Xero keeps them (the rules, shared by the API and the UI).

https://developer.xero.com/documentation/api/accounting/creditnotes and the official spec (xero_accounting.yaml:
CreditNote, Allocation; PUT /CreditNotes, GET /CreditNotes[/{CreditNoteID}], PUT /CreditNotes/{id}/Allocations):
- Type ACCRECCREDIT (sales) or ACCPAYCREDIT; Contact and LineItems like an invoice; created DRAFT, SUBMITTED or
  AUTHORISED; CreditNoteNumber is its own number space (unique among ACCRECCREDIT, generated when missing);
- an allocation needs an AUTHORISED credit note and an AUTHORISED invoice of the same contact, type and currency,
  an Amount above zero, at most the credit note's RemainingCredit and at most the invoice's AmountDue, and a Date;
  it raises the invoice's AmountCredited (lowering AmountDue) and lowers the credit note's RemainingCredit; either
  becomes PAID when nothing is left;
- a credit note answers with RemainingCredit and its Allocations; an invoice lists the credit notes applied to it
  under CreditNotes (with AppliedAmount).
Callers hold ``app.store.tx()`` or get one here; every change bumps UpdatedDateUTC.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from . import ledger
from .ledger import Invalid
from .util import date_string, is_uuid, iso_utc, ms_date, ms_datetime, new_id, parse_date, round_money
from .util import to_decimal as _to_decimal

CREDIT_NOTE_TYPES = ("ACCRECCREDIT", "ACCPAYCREDIT")
INVOICE_TYPE_FOR = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}
ZERO = Decimal("0.00")


# ---------------------------------------------------------------- lookups and persistence


def get_credit_note(app, tenant: str, key: str):
    """By CreditNoteID, or by CreditNoteNumber."""
    if is_uuid(key):
        doc = app.store.get("creditnote", str(key).lower())
        return doc if doc is not None and doc["tenant"] == tenant else None
    found = app.store.find("creditnote", tenant=tenant, k1=str(key).strip().upper())
    return found[0] if found else None


def credit_notes(app, tenant: str, **where) -> list:
    return app.store.find("creditnote", tenant=tenant, **where)


def put_credit_note(app, note: dict) -> None:
    number = note.get("CreditNoteNumber") or ""
    unique = note["Type"] == "ACCRECCREDIT" and note["Status"] != "DELETED" and number
    app.store.put(
        "creditnote",
        note["CreditNoteID"],
        note,
        tenant=note["tenant"],
        k1=number.strip().upper() if unique else None,
        k2=note["ContactID"],
        k3=note["Status"],
        updated=note["UpdatedDateUTC"],
    )


def next_credit_note_number(app, org: dict) -> str:
    tenant = org["OrganisationID"]
    while True:
        number = app.store.next_counter("credit-note-number:" + tenant)
        candidate = f"{org.get('CreditNotePrefix', 'CN-')}{number:04d}"
        if not app.store.find("creditnote", tenant=tenant, k1=candidate.upper()):
            return candidate


# ---------------------------------------------------------------- create


def save_credit_note(app, org: dict, data, client_id: str | None = None, unitdp: int = 2):
    """Create one credit note element (PUT /CreditNotes). Returns (note, warnings); raises Invalid."""
    with app.store.tx():
        return _create(app, org, data, client_id, unitdp)


def _create(app, org: dict, data, client_id, unitdp):
    if not isinstance(data, dict):
        raise Invalid(["A credit note must be a JSON object."])
    tenant = org["OrganisationID"]
    errors: list = []
    warnings: list = []
    if data.get("CreditNoteID"):
        if get_credit_note(app, tenant, str(data["CreditNoteID"])) is not None:
            raise Invalid(["A credit note with this CreditNoteID already exists. Use POST to update credit notes."])
        raise Invalid([f"Credit note with CreditNoteID {data['CreditNoteID']} could not be found."])
    kind = data.get("Type")
    if not kind:
        errors.append("Credit note Type must be specified.")
    elif kind not in CREDIT_NOTE_TYPES:
        errors.append(f"Credit note Type '{kind}' is not valid. Use ACCRECCREDIT or ACCPAYCREDIT.")
    status = str(data.get("Status") or "DRAFT").upper()
    if status not in ledger.CREATE_STATUSES:
        errors.append(f"Credit notes cannot be created with status {status}.")
        status = "DRAFT"
    note = {
        "CreditNoteID": new_id(),
        "tenant": tenant,
        "Type": kind if kind in CREDIT_NOTE_TYPES else "ACCRECCREDIT",
        "Status": status,
        "LineAmountTypes": data.get("LineAmountTypes") or "Exclusive",
        "Reference": str(data.get("Reference") or ""),
        "CreditNoteNumber": str(data.get("CreditNoteNumber") or ""),
        "CurrencyCode": str(data.get("CurrencyCode") or org["BaseCurrency"]).upper(),
        "Allocations": [],
        "AmountAllocated": ZERO,
        "created_by": client_id,
    }
    try:
        note["Date"] = parse_date(data.get("Date")) or ledger.org_today(app, org)
    except (ValueError, TypeError):
        errors.append(f"The Date '{data.get('Date')}' is not a valid date. Use the format YYYY-MM-DD.")
        note["Date"] = ledger.org_today(app, org)
    if note["LineAmountTypes"] not in ledger.LINE_AMOUNT_TYPES:
        errors.append(f"LineAmountTypes '{note['LineAmountTypes']}' is not valid. Use Exclusive, Inclusive or NoTax.")
        note["LineAmountTypes"] = "Exclusive"
    if note["CurrencyCode"] not in org["Currencies"]:
        errors.append(f"The currency code '{note['CurrencyCode']}' is not valid for this organisation.")
    number = note["CreditNoteNumber"]
    if len(number) > 255:
        errors.append("CreditNoteNumber must not be more than 255 characters long.")
    elif number and note["Type"] == "ACCRECCREDIT" and get_credit_note(app, tenant, number) is not None:
        errors.append("Credit Note # must be unique.")
    events: list = []
    contact = ledger.resolve_contact(app, org, data.get("Contact"), client_id, errors, events)
    note["ContactID"] = contact["ContactID"] if contact else None
    # The lines follow the invoice rules of the matching invoice type (accounts, tax rates, rounding).
    shim = {"Type": INVOICE_TYPE_FOR[note["Type"]], "Status": status, "LineAmountTypes": note["LineAmountTypes"]}
    note["LineItems"] = ledger.build_lines(app, org, shim, data.get("LineItems"), [], unitdp, errors, warnings)
    _totals(note)
    if note["LineItems"] and note["Total"] < 0:
        errors.append("The total of a credit note cannot be negative.")
    if errors:
        raise Invalid(list(dict.fromkeys(errors)))
    if note["Type"] == "ACCRECCREDIT" and not note["CreditNoteNumber"]:
        note["CreditNoteNumber"] = next_credit_note_number(app, org)
    ledger.touch(app, note)
    put_credit_note(app, note)
    return note, warnings


def _totals(note: dict) -> None:
    holder = {"LineItems": note["LineItems"], "LineAmountTypes": note["LineAmountTypes"]}
    ledger.compute_totals(holder)
    note["SubTotal"], note["TotalTax"], note["Total"] = holder["SubTotal"], holder["TotalTax"], holder["Total"]
    note["RemainingCredit"] = round_money(note["Total"] - note.get("AmountAllocated", ZERO))


# ---------------------------------------------------------------- allocations


def allocate(app, org: dict, credit_note_id: str, data, client_id: str | None = None):
    """One allocation of a credit note to an invoice. Returns (allocation, note, invoice); raises Invalid."""
    tenant = org["OrganisationID"]
    with app.store.tx():
        note = get_credit_note(app, tenant, credit_note_id)
        if note is None:
            raise Invalid(["The credit note could not be found."])
        if not isinstance(data, dict):
            raise Invalid(["An allocation must be a JSON object."])
        errors: list = []
        ref = data.get("Invoice") or {}
        key = str(ref.get("InvoiceID") or ref.get("InvoiceNumber") or "") if isinstance(ref, dict) else ""
        invoice = ledger.get_invoice(app, tenant, key) if key else None
        if invoice is None:
            raise Invalid(["An Invoice must be specified by a valid InvoiceID."])
        try:
            amount = _to_decimal(data.get("Amount"))
        except (InvalidOperation, ValueError, TypeError):
            amount = None
        try:
            on = parse_date(data.get("Date"))
        except (ValueError, TypeError):
            on = None
            errors.append(f"The Date '{data.get('Date')}' is not a valid date. Use the format YYYY-MM-DD.")
        if on is None and not errors:
            errors.append("The allocation Date must be specified.")
        if note["Status"] != "AUTHORISED":
            errors.append("Only AUTHORISED credit notes can be allocated.")
        if invoice["Status"] != "AUTHORISED":
            errors.append("Credit notes can only be allocated to AUTHORISED invoices.")
        if INVOICE_TYPE_FOR[note["Type"]] != invoice["Type"]:
            errors.append("The credit note and the invoice must be of the same type (sales or purchases).")
        if invoice["ContactID"] != note["ContactID"]:
            errors.append("The credit note and the invoice must be for the same contact.")
        if invoice["CurrencyCode"] != note["CurrencyCode"]:
            errors.append("The credit note and the invoice must be in the same currency.")
        if amount is None:
            errors.append("The allocation Amount must be specified.")
        else:
            amount = round_money(amount)
            if amount <= 0:
                errors.append("The allocation Amount must be greater than zero.")
            if amount > note["RemainingCredit"]:
                errors.append("The amount being allocated exceeds the remaining credit on the credit note.")
            if amount > invoice["AmountDue"]:
                errors.append("The amount being allocated exceeds the amount due on the invoice.")
        if errors:
            raise Invalid(list(dict.fromkeys(errors)))
        allocation = {
            "AllocationID": new_id(),
            "Amount": amount,
            "Date": on,
            "InvoiceID": invoice["InvoiceID"],
            "InvoiceNumber": invoice.get("InvoiceNumber", ""),
            "CreditNoteID": note["CreditNoteID"],
            "CreditNoteNumber": note.get("CreditNoteNumber", ""),
            "created_by": client_id,
        }
        note["Allocations"] = note["Allocations"] + [allocation]
        note["AmountAllocated"] = round_money(note.get("AmountAllocated", ZERO) + amount)
        _totals(note)
        if note["RemainingCredit"] <= 0:
            note["Status"] = "PAID"
            note["FullyPaidOnDate"] = on
        ledger.touch(app, note)
        put_credit_note(app, note)
        invoice["CreditNoteAllocations"] = invoice.get("CreditNoteAllocations", []) + [
            {k: allocation[k] for k in ("AllocationID", "CreditNoteID", "CreditNoteNumber", "Amount", "Date")}
            | {"Total": note["Total"]}
        ]
        invoice["AmountCredited"] = round_money(invoice["AmountCredited"] + amount)
        ledger.compute_totals(invoice)
        if invoice["AmountDue"] <= 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = on
        ledger.touch(app, invoice)
        ledger.put_invoice(app, invoice)
        app.webhooks.event(tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
    return allocation, note, invoice


# ---------------------------------------------------------------- rendering


def render_credit_note(app, note: dict, lines: bool = True, unitdp: int = 2) -> dict:
    contact = ledger.get_contact(app, note["tenant"], note["ContactID"]) if note.get("ContactID") else None
    out = {
        "Type": note["Type"],
        "CreditNoteID": note["CreditNoteID"],
        "ID": note["CreditNoteID"],
        "CreditNoteNumber": note.get("CreditNoteNumber", ""),
        "Reference": note.get("Reference", ""),
        "Contact": ledger.invoice_contact_summary(contact) if contact else {},
        "DateString": date_string(note["Date"]),
        "Date": ms_date(note["Date"]),
        "Status": note["Status"],
        "LineAmountTypes": note["LineAmountTypes"],
        "LineItems": [ledger.render_line(line, unitdp) for line in note["LineItems"]] if lines else [],
        "SubTotal": ledger.money(note["SubTotal"]),
        "TotalTax": ledger.money(note["TotalTax"]),
        "Total": ledger.money(note["Total"]),
        "UpdatedDateUTC": ms_datetime(note["UpdatedDateUTC"]),
        "UpdatedDateUTCString": iso_utc(note["UpdatedDateUTC"]),
        "CurrencyCode": note["CurrencyCode"],
        "CurrencyRate": ledger.money(Decimal("1"), Decimal("0.000001")),
        "RemainingCredit": ledger.money(note["RemainingCredit"]),
        "Allocations": [render_allocation(a) for a in note["Allocations"]],
        "Payments": [],
        "SentToContact": False,
        "HasAttachments": False,
        "HasErrors": False,
    }
    if note.get("FullyPaidOnDate"):
        out["FullyPaidOnDate"] = ms_date(note["FullyPaidOnDate"])
    return out


def render_allocation(allocation: dict, *, credit_note: bool = False) -> dict:
    out = {
        "AllocationID": allocation["AllocationID"],
        "Amount": ledger.money(allocation["Amount"]),
        "Date": ms_date(allocation["Date"]),
        "Invoice": {"InvoiceID": allocation["InvoiceID"], "InvoiceNumber": allocation.get("InvoiceNumber", "")},
        "IsDeleted": False,
    }
    if credit_note:
        out["CreditNote"] = {
            "CreditNoteID": allocation["CreditNoteID"],
            "ID": allocation["CreditNoteID"],
            "CreditNoteNumber": allocation.get("CreditNoteNumber", ""),
        }
    return out


def render_invoice_credit_notes(invoice: dict) -> list:
    """What Xero lists under an invoice's CreditNotes: each credit note applied to it and the amount applied."""
    return [
        {
            "CreditNoteID": a["CreditNoteID"],
            "ID": a["CreditNoteID"],
            "CreditNoteNumber": a.get("CreditNoteNumber", ""),
            "AppliedAmount": ledger.money(a["Amount"]),
            "Total": ledger.money(a.get("Total", a["Amount"])),
            "Date": ms_date(a["Date"]),
            "DateString": date_string(a["Date"]),
            "HasErrors": False,
        }
        for a in invoice.get("CreditNoteAllocations", [])
    ]


__all__ = ["allocate", "get_credit_note", "render_credit_note", "save_credit_note"]
