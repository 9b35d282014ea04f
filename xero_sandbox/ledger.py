"""Xero's accounting rules, shared by the API and the UI: contacts, invoices, totals, payments.

Every change goes through here, so it bumps UpdatedDateUTC and queues the webhook event whether it
came from the API or from a person in the sandbox UI. Callers hold ``app.store.tx()``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import Decimal, InvalidOperation

from .util import (
    FOUR,
    SIX,
    TWO,
    UTC,
    date_string,
    is_uuid,
    iso_utc,
    ms_date,
    ms_datetime,
    new_id,
    parse_date,
    round_money,
    to_decimal,
)

INVOICE_TYPES = ("ACCREC", "ACCPAY")
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
INVALID_ACCOUNT = "Account code '{}' is not a valid code for this document."
ARCHIVED_ACCOUNT = "Account code '{}' has been archived, or deleted. Each line item must reference a valid account."
BAD_TAX = "The TaxType code '{}' does not exist or cannot be used with this type of transaction."
TAX_FOR_ACCOUNT = "The TaxType code '{}' cannot be used with account code '{}'."
NOT_MODIFIABLE = "Invoice not of valid status for modification"
HAS_PAYMENTS = "This document cannot be edited as it has a payment or credit note allocated to it."
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FX = {
    "AUD": Decimal("1"),
    "GBP": Decimal("1.95"),
    "USD": Decimal("1.52"),
    "NZD": Decimal("0.92"),
    "EUR": Decimal("1.66"),
}


class Invalid(Exception):
    """Collects validation messages for one element."""

    def __init__(self, messages):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


# ---------------------------------------------------------------- lookups


def org_today(app, org: dict) -> dt.date:
    offset = dt.timedelta(minutes=org.get("utc_offset_minutes", 0))
    return (dt.datetime.fromtimestamp(app.clock.now(), UTC) + offset).date()


def accounts(app, tenant: str) -> list:
    return app.store.find("account", tenant=tenant)


def account_by_code(app, tenant: str, code: str):
    found = app.store.find("account", tenant=tenant, k1=str(code).strip().upper())
    return found[0] if found else None


def tax_rate(app, tenant: str, tax_type: str):
    found = app.store.find("taxrate", tenant=tenant, k1=str(tax_type).strip().upper())
    return found[0] if found else None


def get_contact(app, tenant: str, contact_id: str):
    doc = app.store.get("contact", str(contact_id).lower())
    return doc if doc is not None and doc["tenant"] == tenant else None


def contact_by_number(app, tenant: str, number: str):
    found = app.store.find("contact", tenant=tenant, k2=str(number))
    return found[0] if found else None


def contact_by_name(app, tenant: str, name: str):
    found = app.store.find("contact", tenant=tenant, k1=str(name).strip().lower())
    return found[0] if found else None


def get_invoice(app, tenant: str, key: str):
    """By InvoiceID, or by InvoiceNumber like Xero's GET /Invoices/{InvoiceNumber}."""
    if is_uuid(key):
        doc = app.store.get("invoice", str(key).lower())
        return doc if doc is not None and doc["tenant"] == tenant else None
    found = app.store.find("invoice", tenant=tenant, k1=str(key).strip().upper())
    return found[0] if found else None


# ---------------------------------------------------------------- persistence


def put_contact(app, contact: dict) -> None:
    active = contact["ContactStatus"] == "ACTIVE"
    app.store.put(
        "contact",
        contact["ContactID"],
        contact,
        tenant=contact["tenant"],
        k1=contact["Name"].strip().lower() if active else None,
        k2=contact.get("ContactNumber") or None,
        k3=contact["ContactStatus"],
        updated=contact["UpdatedDateUTC"],
    )


def put_invoice(app, invoice: dict) -> None:
    number = invoice.get("InvoiceNumber") or ""
    unique = invoice["Type"] == "ACCREC" and invoice["Status"] != "DELETED" and number
    app.store.put(
        "invoice",
        invoice["InvoiceID"],
        invoice,
        tenant=invoice["tenant"],
        k1=number.strip().upper() if unique else None,
        k2=invoice["ContactID"],
        k3=invoice["Status"],
        updated=invoice["UpdatedDateUTC"],
    )


def touch(app, doc: dict) -> None:
    """UpdatedDateUTC strictly increases on every change."""
    now = app.clock.now()
    doc["UpdatedDateUTC"] = max(now, doc.get("UpdatedDateUTC", 0) + 0.001)


# ---------------------------------------------------------------- contacts

CONTACT_FIELDS = (
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "ContactNumber",
    "AccountNumber",
    "CompanyNumber",
    "TaxNumber",
    "BankAccountDetails",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "Addresses",
    "Phones",
    "ContactPersons",
    "DefaultCurrency",
    "ContactStatus",
    "Website",
    "PaymentTerms",
)
CONTACT_LIMITS = {
    "Name": 255,
    "FirstName": 255,
    "LastName": 255,
    "EmailAddress": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "CompanyNumber": 50,
    "TaxNumber": 50,
}


def validate_contact(app, tenant: str, contact: dict, self_id: str | None) -> list:
    errors = []
    name = (contact.get("Name") or "").strip()
    if not name:
        errors.append("The contact name must be specified.")
    for field, limit in CONTACT_LIMITS.items():
        value = contact.get(field)
        if value is not None and len(str(value)) > limit:
            errors.append(f"{field} must not be more than {limit} characters long.")
    if contact.get("ContactStatus", "ACTIVE") not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
        errors.append("ContactStatus must be ACTIVE or ARCHIVED.")
    email = contact.get("EmailAddress")
    if email and not EMAIL.match(str(email)):
        errors.append("Email address must be valid.")
    if name and contact.get("ContactStatus", "ACTIVE") == "ACTIVE":
        clash = contact_by_name(app, tenant, name)
        if clash is not None and clash["ContactID"] != self_id:
            errors.append(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
    number = contact.get("ContactNumber")
    if number:
        clash = contact_by_number(app, tenant, number)
        if clash is not None and clash["ContactID"] != self_id:
            errors.append(
                f"The contact number {number} is already assigned to another contact. "
                "The contact number must be unique across all contacts."
            )
    return errors


def save_contact(*args, **kwargs):
    """Create or update one contact atomically; see _save_contact."""
    app = args[0] if args else kwargs["app"]
    with app.store.tx():
        return _save_contact(*args, **kwargs)


def _save_contact(app, org: dict, data: dict, mode: str, client_id: str | None = None, contact_id: str | None = None):
    """mode: create (PUT), upsert (POST /Contacts), update (POST /Contacts/{id}).

    Returns (contact, event) where event is CREATE/UPDATE/None; raises Invalid.
    """
    if not isinstance(data, dict):
        raise Invalid(["A contact must be a JSON object."])
    tenant = org["OrganisationID"]
    existing = None
    wanted_id = contact_id or data.get("ContactID")
    if wanted_id:
        if mode == "create":
            existing = get_contact(app, tenant, wanted_id)
            if existing is None:
                raise Invalid([f"The contact with ContactID {wanted_id} could not be found."])
        else:
            existing = get_contact(app, tenant, wanted_id)
            if existing is None:
                raise Invalid([f"The contact with ContactID {wanted_id} could not be found."])
    elif mode == "upsert" and data.get("ContactNumber"):
        existing = contact_by_number(app, tenant, data["ContactNumber"])
    if existing is None:
        contact = {
            "ContactID": new_id(),
            "tenant": tenant,
            "ContactStatus": "ACTIVE",
            "IsCustomer": False,
            "IsSupplier": False,
            "Addresses": [],
            "Phones": [],
            "ContactPersons": [],
            "created_by": client_id,
        }
        for field in CONTACT_FIELDS:
            if field in data and data[field] is not None:
                contact[field] = data[field]
        errors = validate_contact(app, tenant, contact, None)
        if errors:
            raise Invalid(errors)
        touch(app, contact)
        put_contact(app, contact)
        app.webhooks.event(tenant, "CONTACT", "CREATE", contact["ContactID"])
        return contact, "CREATE"
    contact = dict(existing)
    changed = False
    for field in CONTACT_FIELDS:
        if field in data and data[field] != contact.get(field):
            contact[field] = data[field]
            changed = True
    errors = validate_contact(app, tenant, contact, contact["ContactID"])
    if errors:
        raise Invalid(errors)
    if changed:
        touch(app, contact)
        put_contact(app, contact)
        app.webhooks.event(tenant, "CONTACT", "UPDATE", contact["ContactID"])
        return contact, "UPDATE"
    return contact, None


def contact_balances(app, contact: dict) -> dict:
    outstanding = {"ACCREC": Decimal("0.00"), "ACCPAY": Decimal("0.00")}
    overdue = {"ACCREC": Decimal("0.00"), "ACCPAY": Decimal("0.00")}
    today = dt.datetime.fromtimestamp(app.clock.now(), UTC).date()
    for invoice in app.store.find("invoice", tenant=contact["tenant"], k2=contact["ContactID"]):
        if invoice["Status"] == "AUTHORISED":
            outstanding[invoice["Type"]] += invoice["AmountDue"]
            if invoice.get("DueDate") and invoice["DueDate"] < today:
                overdue[invoice["Type"]] += invoice["AmountDue"]
    return {
        "AccountsReceivable": {"Outstanding": outstanding["ACCREC"], "Overdue": overdue["ACCREC"]},
        "AccountsPayable": {"Outstanding": outstanding["ACCPAY"], "Overdue": overdue["ACCPAY"]},
    }


def render_contact(app, contact: dict, full: bool = True) -> dict:
    out = {"ContactID": contact["ContactID"]}
    for field in ("ContactNumber", "AccountNumber"):
        if contact.get(field):
            out[field] = contact[field]
    out["ContactStatus"] = contact["ContactStatus"]
    out["Name"] = contact["Name"]
    for field in (
        "FirstName",
        "LastName",
        "EmailAddress",
        "CompanyNumber",
        "TaxNumber",
        "AccountsReceivableTaxType",
        "AccountsPayableTaxType",
        "DefaultCurrency",
        "Website",
    ):
        if contact.get(field):
            out[field] = contact[field]
    out["BankAccountDetails"] = contact.get("BankAccountDetails", "")
    out["Addresses"] = contact.get("Addresses", [])
    out["Phones"] = contact.get("Phones", [])
    out["UpdatedDateUTC"] = ms_datetime(contact["UpdatedDateUTC"])
    out["ContactGroups"] = []
    out["IsSupplier"] = contact.get("IsSupplier", False)
    out["IsCustomer"] = contact.get("IsCustomer", False)
    if full:
        out["SalesTrackingCategories"] = []
        out["PurchasesTrackingCategories"] = []
        if contact.get("PaymentTerms"):
            out["PaymentTerms"] = contact["PaymentTerms"]
        out["ContactPersons"] = contact.get("ContactPersons", [])
        out["Balances"] = contact_balances(app, contact)
    out["HasAttachments"] = False
    out["HasValidationErrors"] = False
    return out


def invoice_contact_summary(contact: dict) -> dict:
    out = {"ContactID": contact["ContactID"]}
    if contact.get("ContactNumber"):
        out["ContactNumber"] = contact["ContactNumber"]
    out["Name"] = contact["Name"]
    if contact.get("EmailAddress"):
        out["EmailAddress"] = contact["EmailAddress"]
    out.update(Addresses=[], Phones=[], ContactGroups=[], ContactPersons=[], HasValidationErrors=False)
    return out


# ---------------------------------------------------------------- totals (Xero rounding)


def compute_line(line: dict, amount_type: str, rate: Decimal, unit_places: Decimal, allow_discount: bool):
    """Fill in Quantity/UnitAmount/LineAmount/TaxAmount of a line the way Xero does.

    Line amounts are rounded to 2 dp; tax is computed and rounded per line: on the line amount for
    Exclusive, as amount x rate / (100 + rate) for Inclusive, and zero for NoTax.
    """
    errors = []
    try:
        quantity = to_decimal(line.get("Quantity"))
        unit = to_decimal(line.get("UnitAmount"))
        given_amount = to_decimal(line.get("LineAmount"))
        discount_rate = to_decimal(line.get("DiscountRate"))
        discount_amount = to_decimal(line.get("DiscountAmount"))
        tax_override = to_decimal(line.get("TaxAmount"))
    except (InvalidOperation, ValueError, TypeError):
        return ["Quantity, UnitAmount, LineAmount, DiscountRate, DiscountAmount and TaxAmount must be numbers."]
    if (discount_rate or discount_amount) and not allow_discount:
        errors.append("Discounts are only supported on sales invoices (ACCREC).")
    if discount_rate is not None and not (Decimal(0) <= discount_rate <= Decimal(100)):
        errors.append("DiscountRate must be between 0 and 100.")
    if quantity is None:
        quantity = Decimal(1) if (unit is not None or given_amount is None) else None
    if unit is None and given_amount is not None:
        qty = quantity if quantity not in (None, Decimal(0)) else Decimal(1)
        quantity = qty
        unit = given_amount / qty
    if quantity is None:
        quantity = Decimal(1)
    unit = round_money(unit if unit is not None else Decimal(0), unit_places)
    quantity = round_money(quantity, FOUR)
    gross = quantity * unit
    discount = Decimal(0)
    if discount_rate:
        discount = gross * discount_rate / Decimal(100)
    elif discount_amount:
        discount = discount_amount
    amount = round_money(gross - discount)
    if given_amount is not None and abs(round_money(given_amount) - amount) > Decimal("0.01"):
        errors.append(
            f"The line amount {round_money(given_amount)} does not match Quantity x UnitAmount "
            f"less discount ({amount})."
        )
    if amount_type == "NoTax":
        tax = Decimal("0.00")
    elif tax_override is not None:
        tax = round_money(tax_override)
    elif amount_type == "Inclusive":
        tax = round_money(amount * rate / (Decimal(100) + rate))
    else:
        tax = round_money(amount * rate / Decimal(100))
    line["Quantity"] = quantity
    line["UnitAmount"] = unit
    line["LineAmount"] = amount
    line["TaxAmount"] = tax
    line["DiscountValue"] = round_money(discount)
    if discount_rate is not None:
        line["DiscountRate"] = round_money(discount_rate)
    if discount_amount is not None:
        line["DiscountAmount"] = round_money(discount_amount)
    return errors


def compute_totals(invoice: dict) -> None:
    lines = invoice["LineItems"]
    line_sum = sum((line["LineAmount"] for line in lines), Decimal("0.00"))
    tax = sum((line["TaxAmount"] for line in lines), Decimal("0.00"))
    if invoice["LineAmountTypes"] == "Inclusive":
        total = line_sum
        subtotal = line_sum - tax
    else:
        subtotal = line_sum
        total = line_sum + tax
    invoice["SubTotal"] = round_money(subtotal)
    invoice["TotalTax"] = round_money(tax)
    invoice["Total"] = round_money(total)
    invoice["TotalDiscount"] = round_money(sum((line.get("DiscountValue", 0) for line in lines), Decimal(0)))
    paid = invoice.get("AmountPaid", Decimal("0.00"))
    credited = invoice.get("AmountCredited", Decimal("0.00"))
    invoice["AmountDue"] = round_money(invoice["Total"] - paid - credited)


# ---------------------------------------------------------------- invoices

INVOICE_FIELDS = (
    "Type",
    "Contact",
    "LineItems",
    "Date",
    "DueDate",
    "LineAmountTypes",
    "InvoiceNumber",
    "Reference",
    "BrandingThemeID",
    "Url",
    "CurrencyCode",
    "CurrencyRate",
    "Status",
    "SentToContact",
    "ExpectedPaymentDate",
    "PlannedPaymentDate",
)
FINANCIAL = ("ContactID", "LineItems", "Date", "LineAmountTypes", "CurrencyCode", "CurrencyRate")


def resolve_contact(app, org: dict, data, client_id, errors: list, events: list):
    tenant = org["OrganisationID"]
    if not isinstance(data, dict) or not any(data.get(k) for k in ("ContactID", "ContactNumber", "Name")):
        errors.append("A Contact must be specified for this type of transaction")
        return None
    contact = None
    if data.get("ContactID"):
        contact = get_contact(app, tenant, data["ContactID"]) if is_uuid(data["ContactID"]) else None
        if contact is None:
            errors.append("The contact with the specified ContactID could not be found.")
            return None
    elif data.get("ContactNumber"):
        contact = contact_by_number(app, tenant, data["ContactNumber"])
    if contact is None and data.get("Name"):
        contact = contact_by_name(app, tenant, data["Name"])
    if contact is None:
        try:
            contact, event = save_contact(app, org, data, "create", client_id)
        except Invalid as exc:
            errors.extend(exc.messages)
            return None
        events.append(event)
        return contact
    extra = {k: v for k, v in data.items() if k in CONTACT_FIELDS and k != "Name" and v != contact.get(k)}
    if extra:  # sending more than the id updates the contact, as in Xero
        try:
            contact, _ = save_contact(app, org, extra, "update", client_id, contact["ContactID"])
        except Invalid as exc:
            errors.extend(exc.messages)
    if contact["ContactStatus"] == "ARCHIVED":
        errors.append(f"The contact '{contact['Name']}' has been archived. Restore the contact to use it.")
    return contact


def build_lines(
    app, org: dict, invoice: dict, raw_lines, previous: list, unitdp: int, errors: list, warnings: list
) -> list:
    tenant = org["OrganisationID"]
    if not isinstance(raw_lines, list) or not raw_lines:
        errors.append("Invoices must have at least one line item.")
        return []
    old = {line["LineItemID"]: line for line in previous}
    unit_places = FOUR if unitdp == 4 else TWO
    lines = []
    for raw in raw_lines:
        if not isinstance(raw, dict):
            errors.append("Each line item must be an object.")
            continue
        base = dict(old.get(str(raw.get("LineItemID", "")).lower(), {}))
        if base:
            for key in ("TaxAmount", "LineAmount"):
                if key not in raw:
                    base.pop(key, None)
        line = dict(base)
        line.update({k: v for k, v in raw.items() if k not in ("ValidationErrors",)})
        line["LineItemID"] = base.get("LineItemID") or new_id()
        description = (line.get("Description") or "").strip()
        has_amount = any(line.get(k) not in (None, "", 0) for k in ("Quantity", "UnitAmount", "LineAmount"))
        if not description and not line.get("ItemCode"):
            errors.append("The description field is mandatory for each line item.")
        if len(line.get("Tracking") or []) > 2:
            errors.append("A line item can have a maximum of 2 tracking categories.")
        account = None
        code = line.get("AccountCode")
        if code in (None, "") and line.get("AccountID"):
            found = [a for a in accounts(app, tenant) if a["AccountID"] == str(line["AccountID"]).lower()]
            account = found[0] if found else None
            code = account["Code"] if account else str(line["AccountID"])
            if account is None:
                errors.append(INVALID_ACCOUNT.format(code))
        elif code not in (None, ""):
            account = account_by_code(app, tenant, code)
            if account is None:
                errors.append(INVALID_ACCOUNT.format(code))
        if account is not None:
            if account["Status"] != "ACTIVE":
                errors.append(ARCHIVED_ACCOUNT.format(account["Code"]))
                account = None
            elif account["Type"] == "BANK" or account.get("SystemAccount"):
                errors.append(INVALID_ACCOUNT.format(account["Code"]))
                account = None
            else:
                line["AccountCode"] = account["Code"]
                line["AccountID"] = account["AccountID"]
                revenue = account["Class"] == "REVENUE"
                if (invoice["Type"] == "ACCREC") != revenue:
                    kind = "revenue" if invoice["Type"] == "ACCREC" else "expense"
                    warnings.append(f"Account code '{account['Code']}' is not a {kind} account.")
        elif code in (None, "") and has_amount and invoice["Status"] in ("SUBMITTED", "AUTHORISED"):
            errors.append(INVALID_ACCOUNT.format(""))
        rate = Decimal(0)
        tax_type = line.get("TaxType") or (account or {}).get("TaxType")
        if tax_type:
            tax = tax_rate(app, tenant, tax_type)
            usable = "CanApplyToRevenue" if invoice["Type"] == "ACCREC" else "CanApplyToExpenses"
            if tax is None or tax["Status"] != "ACTIVE":
                errors.append(BAD_TAX.format(tax_type))
            elif not tax[usable]:
                errors.append(
                    TAX_FOR_ACCOUNT.format(tax_type, account["Code"]) if account else BAD_TAX.format(tax_type)
                )
            else:
                line["TaxType"] = tax["TaxType"]
                rate = tax["EffectiveRate"]
        errors.extend(compute_line(line, invoice["LineAmountTypes"], rate, unit_places, invoice["Type"] == "ACCREC"))
        lines.append(line)
    return lines


def next_invoice_number(app, org: dict) -> str:
    tenant = org["OrganisationID"]
    while True:
        number = app.store.next_counter("invoice-number:" + tenant)
        candidate = f"{org.get('InvoicePrefix', 'INV-')}{number:04d}"
        if not app.store.find("invoice", tenant=tenant, k1=candidate.upper()):
            return candidate


def default_due_date(app, org: dict, contact: dict | None, date: dt.date):
    terms = ((contact or {}).get("PaymentTerms") or {}).get("Sales") or (org.get("PaymentTerms") or {}).get("Sales")
    if not terms:
        return None
    day, kind = int(terms.get("Day", 0)), terms.get("Type")
    if kind == "DAYSAFTERBILLDATE":
        return date + dt.timedelta(days=day)
    if kind == "OFFOLLOWINGMONTH":
        year, month = (date.year + 1, 1) if date.month == 12 else (date.year, date.month + 1)
        return dt.date(year, month, min(day, 28))
    return None


def save_invoice(*args, **kwargs):
    """Create or update one invoice element atomically; see _save_invoice."""
    app = args[0] if args else kwargs["app"]
    with app.store.tx():
        return _save_invoice(*args, **kwargs)


def _save_invoice(
    app,
    org: dict,
    data: dict,
    mode: str,
    client_id: str | None = None,
    invoice_id: str | None = None,
    unitdp: int = 2,
):
    """Create or update one invoice element.

    mode: create (PUT /Invoices), upsert (POST /Invoices), update (POST /Invoices/{id}).
    Returns (invoice, warnings, event); raises Invalid with every message found.
    """
    if not isinstance(data, dict):
        raise Invalid(["An invoice must be a JSON object."])
    tenant = org["OrganisationID"]
    existing = None
    wanted = invoice_id or data.get("InvoiceID")
    if wanted:
        existing = get_invoice(app, tenant, wanted) if is_uuid(wanted) else None
        if existing is None:
            raise Invalid([f"Invoice with InvoiceID {wanted} could not be found."])
        if mode == "create":
            raise Invalid(["An invoice with this InvoiceID already exists. Use POST to update invoices."])
    elif mode == "upsert" and data.get("InvoiceNumber") and data.get("Type", "ACCREC") == "ACCREC":
        existing = get_invoice(app, tenant, str(data["InvoiceNumber"]))
        if existing is not None and existing["Type"] != "ACCREC":
            existing = None
    if existing is None:
        return _create_invoice(app, org, data, client_id, unitdp)
    return _update_invoice(app, org, existing, data, client_id, unitdp)


def _parse_dates(invoice: dict, data: dict, errors: list) -> None:
    for field in ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"):
        if field in data:
            try:
                invoice[field] = parse_date(data[field])
            except (ValueError, TypeError):
                errors.append(f"The {field} '{data[field]}' is not a valid date. Use the format YYYY-MM-DD.")


def _common_checks(app, org: dict, invoice: dict, data: dict, errors: list, warnings: list) -> None:
    if invoice["LineAmountTypes"] not in LINE_AMOUNT_TYPES:
        errors.append(
            f"LineAmountTypes '{invoice['LineAmountTypes']}' is not valid. Use Exclusive, Inclusive or NoTax."
        )
        invoice["LineAmountTypes"] = "Exclusive"
    currency = str(invoice.get("CurrencyCode") or org["BaseCurrency"]).upper()
    invoice["CurrencyCode"] = currency
    if currency not in org["Currencies"]:
        errors.append(f"The currency code '{currency}' is not valid for this organisation.")
    rate = data.get("CurrencyRate")
    if rate not in (None, ""):
        try:
            invoice["CurrencyRate"] = round_money(to_decimal(rate), SIX)
        except (InvalidOperation, ValueError):
            errors.append("CurrencyRate must be a number.")
    elif currency == org["BaseCurrency"]:
        invoice["CurrencyRate"] = Decimal("1.000000")
    elif "CurrencyRate" not in invoice or "CurrencyCode" in data:
        base = FX.get(org["BaseCurrency"], Decimal(1))
        invoice["CurrencyRate"] = round_money(base / FX.get(currency, Decimal(1)), SIX)
    number = invoice.get("InvoiceNumber") or ""
    if len(number) > 255:
        errors.append("InvoiceNumber must not be more than 255 characters long.")
    if invoice["Type"] == "ACCREC" and number and invoice["Status"] != "DELETED":
        for other in app.store.find("invoice", tenant=org["OrganisationID"], k1=number.strip().upper()):
            if other["InvoiceID"] != invoice["InvoiceID"]:
                errors.append("Invoice # must be unique.")
                break
    if invoice.get("SentToContact") and invoice["Status"] in ("DRAFT", "SUBMITTED"):
        errors.append("SentToContact can only be set on approved invoices.")
    if data.get("Total") not in (None, ""):
        try:
            if round_money(to_decimal(data["Total"])) != invoice["Total"]:
                warnings.append("The Total provided does not equal the sum of the line items and was ignored.")
        except (InvalidOperation, ValueError):
            pass


def _create_invoice(app, org, data, client_id, unitdp):
    errors: list = []
    warnings: list = []
    events: list = []
    kind = data.get("Type")
    if not kind:
        errors.append("Invoice Type must be specified.")
    elif kind not in INVOICE_TYPES:
        errors.append(f"Invoice Type '{kind}' is not valid for this endpoint.")
    status = str(data.get("Status") or "DRAFT").upper()
    if status not in CREATE_STATUSES:
        if status == "PAID":
            errors.append("An invoice cannot be created as PAID; it becomes PAID when payments are applied.")
        else:
            errors.append(f"Invoices cannot be created with status {status}.")
        status = "DRAFT"
    invoice = {
        "InvoiceID": new_id(),
        "tenant": org["OrganisationID"],
        "Type": kind if kind in INVOICE_TYPES else "ACCREC",
        "Status": status,
        "LineAmountTypes": data.get("LineAmountTypes") or "Exclusive",
        "Reference": data.get("Reference") or "",
        "Payments": [],
        "AmountPaid": Decimal("0.00"),
        "AmountCredited": Decimal("0.00"),
        "SentToContact": bool(data.get("SentToContact")),
        "CurrencyCode": data.get("CurrencyCode"),
        "created_by": client_id,
        "online_token": secrets.token_urlsafe(24),
        "InvoiceNumber": str(data.get("InvoiceNumber") or ""),
    }
    for field in ("Url", "BrandingThemeID"):
        if data.get(field):
            invoice[field] = data[field]
    _parse_dates(invoice, data, errors)
    with app.store.tx():
        contact = resolve_contact(app, org, data.get("Contact"), client_id, errors, events)
        invoice["ContactID"] = contact["ContactID"] if contact else None
        invoice["LineItems"] = build_lines(app, org, invoice, data.get("LineItems"), [], unitdp, errors, warnings)
        compute_totals(invoice)
        if invoice.get("Date") is None:
            invoice["Date"] = org_today(app, org)
        if invoice.get("DueDate") is None:
            invoice["DueDate"] = default_due_date(app, org, contact, invoice["Date"])
            if invoice["DueDate"] is None and status == "AUTHORISED":
                errors.append("Due Date must be specified for an approved invoice.")
        _common_checks(app, org, invoice, data, errors, warnings)
        if errors:
            raise Invalid(errors)
        if invoice["Type"] == "ACCREC" and not invoice["InvoiceNumber"]:
            invoice["InvoiceNumber"] = next_invoice_number(app, org)
        touch(app, invoice)
        put_invoice(app, invoice)
        _mark_contact_role(app, contact, invoice)
        app.webhooks.event(org["OrganisationID"], "INVOICE", "CREATE", invoice["InvoiceID"])
    return invoice, warnings, "CREATE"


def _mark_contact_role(app, contact, invoice) -> None:
    flag = "IsCustomer" if invoice["Type"] == "ACCREC" else "IsSupplier"
    if contact is not None and not contact.get(flag):
        contact = get_contact(app, contact["tenant"], contact["ContactID"])
        contact[flag] = True
        put_contact(app, contact)


def _status_change(old: str, new: str, invoice: dict, errors: list) -> None:
    if new == old:
        return
    if new == "PAID":
        errors.append("Invoice status cannot be set to PAID; apply payments to the invoice instead.")
    elif new == "VOIDED":
        if old != "AUTHORISED":
            errors.append("Only AUTHORISED invoices can be voided. Delete DRAFT and SUBMITTED invoices instead.")
        elif invoice["AmountPaid"] > 0 or invoice["AmountCredited"] > 0:
            errors.append(HAS_PAYMENTS)
    elif new == "DELETED" or new in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        if old not in ("DRAFT", "SUBMITTED"):
            errors.append(NOT_MODIFIABLE)
    else:
        errors.append(f"Status '{new}' is not a valid invoice status.")


def _update_invoice(app, org, existing, data, client_id, unitdp):
    errors: list = []
    warnings: list = []
    events: list = []
    old_status = existing["Status"]
    invoice = dict(existing)
    if data.get("Type") and data["Type"] != existing["Type"]:
        errors.append("The Type of an existing invoice cannot be changed.")
    new_status = str(data.get("Status") or old_status).upper()
    _status_change(old_status, new_status, existing, errors)
    invoice["Status"] = (
        new_status if new_status in ("DRAFT", "SUBMITTED", "AUTHORISED", "VOIDED", "DELETED") else old_status
    )
    for field in ("Reference", "InvoiceNumber", "Url", "BrandingThemeID", "LineAmountTypes", "CurrencyCode"):
        if field in data and data[field] is not None:
            invoice[field] = str(data[field])
    if "SentToContact" in data:
        invoice["SentToContact"] = bool(data["SentToContact"])
    _parse_dates(invoice, data, errors)
    with app.store.tx():
        if "Contact" in data:
            contact = resolve_contact(app, org, data["Contact"], client_id, errors, events)
            if contact is not None:
                invoice["ContactID"] = contact["ContactID"]
        else:
            contact = get_contact(app, org["OrganisationID"], existing["ContactID"])
        raw_lines = (
            data.get("LineItems")
            if "LineItems" in data
            else [{k: v for k, v in line.items() if k not in ("DiscountValue",)} for line in existing["LineItems"]]
        )
        invoice["LineItems"] = build_lines(
            app, org, invoice, raw_lines, existing["LineItems"], unitdp, errors, warnings
        )
        compute_totals(invoice)
        _common_checks(app, org, invoice, data, errors, warnings)
        changed = [
            k
            for k in set(invoice) | set(existing)
            if k not in ("UpdatedDateUTC",) and invoice.get(k) != existing.get(k)
        ]
        financial = [k for k in changed if k in FINANCIAL and not _same_lines(invoice, existing, k)]
        if changed and old_status in ("PAID", "VOIDED", "DELETED"):
            errors.append(NOT_MODIFIABLE)
        elif (
            financial
            and old_status == "AUTHORISED"
            and new_status != "VOIDED"
            and (existing["AmountPaid"] > 0 or existing["AmountCredited"] > 0)
        ):
            errors.append(HAS_PAYMENTS)
        if errors:
            raise Invalid(list(dict.fromkeys(errors)))
        if not changed:
            return existing, warnings, None
        if invoice["Type"] == "ACCREC" and not invoice.get("InvoiceNumber"):
            invoice["InvoiceNumber"] = next_invoice_number(app, org)
        touch(app, invoice)
        put_invoice(app, invoice)
        _mark_contact_role(app, contact, invoice)
        app.webhooks.event(org["OrganisationID"], "INVOICE", "UPDATE", invoice["InvoiceID"])
    return invoice, warnings, "UPDATE"


def _same_lines(new: dict, old: dict, key: str) -> bool:
    if key != "LineItems":
        return False
    fields = ("Description", "Quantity", "UnitAmount", "AccountCode", "TaxType", "LineAmount", "TaxAmount")
    simplify = [[line.get(f) for f in fields] for line in new["LineItems"]]
    return simplify == [[line.get(f) for f in fields] for line in old["LineItems"]]


# ---------------------------------------------------------------- payments


def record_payment(
    app,
    org: dict,
    invoice_id: str,
    amount,
    date=None,
    account_code: str | None = None,
    reference: str = "",
    client_id: str | None = None,
):
    """Apply a payment (full or part). Raises Invalid. Returns (payment, invoice)."""
    tenant = org["OrganisationID"]
    with app.store.tx():
        invoice = get_invoice(app, tenant, invoice_id)
        if invoice is None:
            raise Invalid(["The invoice could not be found."])
        errors = []
        try:
            amount = round_money(to_decimal(amount))
        except (InvalidOperation, ValueError, TypeError):
            raise Invalid(["Payment amount must be a number."]) from None
        if invoice["Status"] != "AUTHORISED":
            errors.append("Payments can only be made against AUTHORISED invoices.")
        if amount is None or amount <= 0:
            errors.append("Payment amount must be greater than zero.")
        elif amount > invoice["AmountDue"]:
            errors.append("Payment amount exceeds the amount outstanding on this document.")
        if account_code:
            account = account_by_code(app, tenant, account_code)
        else:
            banks = [a for a in accounts(app, tenant) if a["Type"] == "BANK" and a["Status"] == "ACTIVE"]
            account = banks[0] if banks else None
        if account is None or not (account["Type"] == "BANK" or account.get("EnablePaymentsToAccount")):
            errors.append("Payments must be made to a bank account or an account with payments enabled.")
        try:
            paid_on = parse_date(date) if isinstance(date, str) else (date or org_today(app, org))
        except ValueError:
            errors.append("The payment date is not valid.")
            paid_on = None
        if errors:
            raise Invalid(errors)
        payment = {
            "PaymentID": new_id(),
            "Date": paid_on,
            "Amount": amount,
            "Reference": reference or "",
            "CurrencyRate": invoice.get("CurrencyRate", Decimal("1.000000")),
            "AccountCode": account["Code"],
            "AccountID": account["AccountID"],
            "created_by": client_id,
        }
        invoice["Payments"] = invoice["Payments"] + [payment]
        invoice["AmountPaid"] = round_money(invoice["AmountPaid"] + amount)
        compute_totals(invoice)
        if invoice["AmountDue"] <= 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = paid_on
        touch(app, invoice)
        put_invoice(app, invoice)
        app.webhooks.event(tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
    return payment, invoice


def remove_payment(app, org: dict, invoice_id: str, payment_id: str):
    tenant = org["OrganisationID"]
    with app.store.tx():
        invoice = get_invoice(app, tenant, invoice_id)
        if invoice is None:
            raise Invalid(["The invoice could not be found."])
        keep = [p for p in invoice["Payments"] if p["PaymentID"] != payment_id]
        if len(keep) == len(invoice["Payments"]):
            raise Invalid(["The payment could not be found."])
        invoice["Payments"] = keep
        invoice["AmountPaid"] = round_money(sum((p["Amount"] for p in keep), Decimal(0)))
        compute_totals(invoice)
        invoice["Status"] = "AUTHORISED"
        invoice.pop("FullyPaidOnDate", None)
        touch(app, invoice)
        put_invoice(app, invoice)
        app.webhooks.event(tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
    return invoice


# ---------------------------------------------------------------- rendering


def money(value, places: Decimal = TWO):
    return round_money(value if value is not None else Decimal(0), places)


def render_line(line: dict, unitdp: int = 2) -> dict:
    out = {"LineItemID": line["LineItemID"], "Description": line.get("Description", "")}
    out["UnitAmount"] = money(line["UnitAmount"], FOUR if unitdp == 4 else TWO)
    if line.get("ItemCode"):
        out["ItemCode"] = line["ItemCode"]
    if line.get("TaxType"):
        out["TaxType"] = line["TaxType"]
    out["TaxAmount"] = money(line["TaxAmount"])
    out["LineAmount"] = money(line["LineAmount"])
    if line.get("AccountCode"):
        out["AccountCode"] = line["AccountCode"]
        out["AccountID"] = line["AccountID"]
    out["Tracking"] = line.get("Tracking") or []
    out["Quantity"] = money(line["Quantity"], FOUR)
    if line.get("DiscountRate") is not None:
        out["DiscountRate"] = money(line["DiscountRate"])
    if line.get("DiscountAmount") is not None:
        out["DiscountAmount"] = money(line["DiscountAmount"])
    out["ValidationErrors"] = []
    return out


def render_payment(payment: dict) -> dict:
    return {
        "PaymentID": payment["PaymentID"],
        "Date": ms_date(payment["Date"]),
        "Amount": money(payment["Amount"]),
        "Reference": payment.get("Reference", ""),
        "CurrencyRate": money(payment["CurrencyRate"], SIX),
        "HasAccount": True,
        "HasValidationErrors": False,
    }


def render_invoice(app, invoice: dict, lines: bool = True, unitdp: int = 2, summary: bool = False) -> dict:
    contact = get_contact(app, invoice["tenant"], invoice["ContactID"]) if invoice.get("ContactID") else None
    out = {
        "Type": invoice["Type"],
        "InvoiceID": invoice["InvoiceID"],
        "InvoiceNumber": invoice.get("InvoiceNumber", ""),
        "Reference": invoice.get("Reference", ""),
    }
    if not summary:
        out["Payments"] = [render_payment(p) for p in invoice["Payments"]]
        from .credit_notes import render_invoice_credit_notes  # credit_notes builds on this module

        out.update(CreditNotes=render_invoice_credit_notes(invoice), Prepayments=[], Overpayments=[])
    out["AmountDue"] = money(invoice["AmountDue"])
    out["AmountPaid"] = money(invoice["AmountPaid"])
    out["AmountCredited"] = money(invoice["AmountCredited"])
    out["SentToContact"] = bool(invoice.get("SentToContact"))
    out["CurrencyRate"] = money(invoice.get("CurrencyRate", Decimal(1)), SIX)
    out["IsDiscounted"] = invoice.get("TotalDiscount", Decimal(0)) > 0
    out["HasAttachments"] = False
    out["HasErrors"] = False
    if invoice.get("BrandingThemeID"):
        out["BrandingThemeID"] = invoice["BrandingThemeID"]
    if invoice.get("Url"):
        out["Url"] = invoice["Url"]
    out["Contact"] = invoice_contact_summary(contact) if contact else {}
    out["DateString"] = date_string(invoice["Date"])
    out["Date"] = ms_date(invoice["Date"])
    if invoice.get("DueDate"):
        out["DueDateString"] = date_string(invoice["DueDate"])
        out["DueDate"] = ms_date(invoice["DueDate"])
    if invoice.get("ExpectedPaymentDate"):
        out["ExpectedPaymentDate"] = ms_date(invoice["ExpectedPaymentDate"])
        out["ExpectedPaymentDateString"] = date_string(invoice["ExpectedPaymentDate"])
    out["Status"] = invoice["Status"]
    out["LineAmountTypes"] = invoice["LineAmountTypes"]
    out["LineItems"] = [render_line(line, unitdp) for line in invoice["LineItems"]] if lines else []
    out["SubTotal"] = money(invoice["SubTotal"])
    out["TotalTax"] = money(invoice["TotalTax"])
    out["Total"] = money(invoice["Total"])
    if invoice.get("TotalDiscount"):
        out["TotalDiscount"] = money(invoice["TotalDiscount"])
    out["UpdatedDateUTC"] = ms_datetime(invoice["UpdatedDateUTC"])
    out["UpdatedDateUTCString"] = iso_utc(invoice["UpdatedDateUTC"])
    out["CurrencyCode"] = invoice["CurrencyCode"]
    if invoice.get("FullyPaidOnDate"):
        out["FullyPaidOnDate"] = ms_date(invoice["FullyPaidOnDate"])
    return out


def render_account(account: dict) -> dict:
    keys = (
        "AccountID",
        "Code",
        "Name",
        "Status",
        "Type",
        "TaxType",
        "Description",
        "Class",
        "SystemAccount",
        "EnablePaymentsToAccount",
        "ShowInExpenseClaims",
        "BankAccountNumber",
        "BankAccountType",
        "CurrencyCode",
        "ReportingCode",
        "ReportingCodeName",
        "HasAttachments",
    )
    out = {k: account[k] for k in keys if k in account and account[k] is not None}
    out["UpdatedDateUTC"] = ms_datetime(account["UpdatedDateUTC"])
    out["AddToWatchlist"] = False
    return out


def render_taxrate(rate: dict) -> dict:
    out = {
        k: rate[k]
        for k in (
            "Name",
            "TaxType",
            "ReportTaxType",
            "CanApplyToAssets",
            "CanApplyToEquity",
            "CanApplyToExpenses",
            "CanApplyToLiabilities",
            "CanApplyToRevenue",
        )
    }
    out["DisplayTaxRate"] = money(rate["DisplayTaxRate"], FOUR)
    out["EffectiveRate"] = money(rate["EffectiveRate"], FOUR)
    out["Status"] = rate["Status"]
    out["TaxComponents"] = [
        {"Name": c["Name"], "Rate": money(c["Rate"], FOUR), "IsCompound": False, "IsNonRecoverable": False}
        for c in rate["TaxComponents"]
    ]
    return out


def render_organisation(org: dict) -> dict:
    keys = (
        "APIKey",
        "Name",
        "LegalName",
        "PaysTax",
        "Version",
        "OrganisationType",
        "BaseCurrency",
        "CountryCode",
        "IsDemoCompany",
        "OrganisationStatus",
        "RegistrationNumber",
        "TaxNumber",
        "FinancialYearEndDay",
        "FinancialYearEndMonth",
        "SalesTaxBasis",
        "SalesTaxPeriod",
        "DefaultSalesTax",
        "DefaultPurchasesTax",
    )
    out = {k: org[k] for k in keys if k in org}
    out["CreatedDateUTC"] = ms_datetime(org["CreatedDateUTC"], offset=False)
    out.update(
        OrganisationEntityType=org["OrganisationType"],
        Timezone=org["Timezone"],
        ShortCode=org["ShortCode"],
        OrganisationID=org["OrganisationID"],
        Edition=org["Edition"],
        Class=org["Class"],
        LineOfBusiness=org.get("LineOfBusiness", ""),
        Addresses=org.get("Addresses", []),
        Phones=[],
        ExternalLinks=[],
        PaymentTerms=org.get("PaymentTerms", {}),
    )
    return out
