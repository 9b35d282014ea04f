"""Seed data: the Xero login, two organisations (AU and UK), charts of accounts, tax rates, contacts
and a few invoices. Ids are stable (uuid5) so they are the same on every start and after a reset."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

NS = uuid.UUID("6f0d7a8e-7c55-4f7e-9d38-0c1a5e2d9b11")

DEMO_EMAIL = "demo@sandbox.test"
DEMO_PASSWORD = "sandbox"


def sid(*parts: str) -> str:
    return str(uuid.uuid5(NS, "/".join(parts)))


AU_ID = sid("org", "au")
UK_ID = sid("org", "uk")

ORGS = [
    {
        "OrganisationID": AU_ID,
        "Name": "Koala Coffee Roasters (AU)",
        "LegalName": "Koala Coffee Roasters Pty Ltd",
        "ShortCode": "!kC4aZ",
        "BaseCurrency": "AUD",
        "CountryCode": "AU",
        "Version": "AU",
        "Timezone": "AUSEASTERNSTANDARDTIME",
        "utc_offset_minutes": 600,
        "Currencies": ["AUD", "USD", "NZD"],
        "TaxNumber": "53 004 085 616",
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY1",
        "FinancialYearEndDay": 30,
        "FinancialYearEndMonth": 6,
        "LineOfBusiness": "Coffee roasting",
        "PaymentTerms": {"Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    },
    {
        "OrganisationID": UK_ID,
        "Name": "Thames Bicycle Works (UK)",
        "LegalName": "Thames Bicycle Works Ltd",
        "ShortCode": "!tB9wK",
        "BaseCurrency": "GBP",
        "CountryCode": "GB",
        "Version": "UK",
        "Timezone": "GMTSTANDARDTIME",
        "utc_offset_minutes": 0,
        "Currencies": ["GBP", "EUR", "USD"],
        "TaxNumber": "GB 123 4567 89",
        "SalesTaxBasis": "ACCRUAL",
        "SalesTaxPeriod": "QUARTERLY",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "LineOfBusiness": "Bicycle repairs",
        "PaymentTerms": {"Sales": {"Day": 30, "Type": "DAYSAFTERBILLDATE"}},
    },
]

# (TaxType, Name, ReportTaxType, rate, revenue, expenses, assets/equity/liabilities, status)
AU_TAX = [
    ("OUTPUT", "GST on Income", "OUTPUT", "10", True, False, True, "ACTIVE"),
    ("INPUT", "GST on Expenses", "INPUT", "10", False, True, True, "ACTIVE"),
    ("EXEMPTOUTPUT", "GST Free Income", "EXEMPTOUTPUT", "0", True, False, True, "ACTIVE"),
    ("EXEMPTEXPENSES", "GST Free Expenses", "EXEMPTEXPENSES", "0", False, True, True, "ACTIVE"),
    ("INPUTTAXED", "Input Taxed", "INPUTTAXED", "0", True, True, True, "ACTIVE"),
    ("BASEXCLUDED", "BAS Excluded", "BASEXCLUDED", "0", True, True, True, "ACTIVE"),
    ("GSTONIMPORTS", "GST on Imports", "GSTONIMPORTS", "0", False, False, True, "ACTIVE"),
    ("CAPEXINPUT", "GST on Capital", "CAPEXINPUT", "10", False, True, True, "ACTIVE"),
    ("TAX001", "Old Luxury Tax (archived)", "OUTPUT", "15", True, False, False, "ARCHIVED"),
]
UK_TAX = [
    ("OUTPUT2", "20% (VAT on Income)", "OUTPUT", "20", True, False, True, "ACTIVE"),
    ("INPUT2", "20% (VAT on Expenses)", "INPUT", "20", False, True, True, "ACTIVE"),
    ("RROUTPUT", "5% (VAT on Income)", "OUTPUT", "5", True, False, True, "ACTIVE"),
    ("RRINPUT", "5% (VAT on Expenses)", "INPUT", "5", False, True, True, "ACTIVE"),
    ("ZERORATEDOUTPUT", "Zero Rated Income", "ZERORATEDOUTPUT", "0", True, False, True, "ACTIVE"),
    ("ZERORATEDINPUT", "Zero Rated Expenses", "ZERORATEDINPUT", "0", False, True, True, "ACTIVE"),
    ("EXEMPTOUTPUT", "Exempt Income", "EXEMPTOUTPUT", "0", True, False, True, "ACTIVE"),
    ("EXEMPTINPUT", "Exempt Expenses", "EXEMPTINPUT", "0", False, True, True, "ACTIVE"),
    ("NONE", "No VAT", "NONE", "0", True, True, True, "ACTIVE"),
    ("ECZROUTPUT", "Zero Rated EC Goods Income", "ECOUTPUT", "0", True, False, False, "ACTIVE"),
]

CLASS_OF = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE",
    "EXPENSE": "EXPENSE",
    "DIRECTCOSTS": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "EQUITY": "EQUITY",
}

# (Code, Name, Type, TaxType, Status, SystemAccount, EnablePaymentsToAccount)
AU_ACCOUNTS = [
    ("090", "Business Bank Account", "BANK", "BASEXCLUDED", "ACTIVE", None, False),
    ("091", "Business Savings Account", "BANK", "BASEXCLUDED", "ACTIVE", None, False),
    ("200", "Sales", "REVENUE", "OUTPUT", "ACTIVE", None, False),
    ("260", "Other Revenue", "REVENUE", "OUTPUT", "ACTIVE", None, False),
    ("270", "Interest Income", "REVENUE", "EXEMPTOUTPUT", "ACTIVE", None, False),
    ("280", "Consulting (discontinued)", "REVENUE", "OUTPUT", "ARCHIVED", None, False),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT", "ACTIVE", None, False),
    ("400", "Advertising", "OVERHEADS", "INPUT", "ACTIVE", None, False),
    ("429", "General Expenses", "OVERHEADS", "INPUT", "ACTIVE", None, False),
    ("610", "Accounts Receivable", "CURRENT", "BASEXCLUDED", "ACTIVE", "DEBTORS", False),
    ("800", "Accounts Payable", "CURRLIAB", "BASEXCLUDED", "ACTIVE", "CREDITORS", False),
    ("820", "GST", "CURRLIAB", "BASEXCLUDED", "ACTIVE", "GST", False),
    ("877", "Tracking Transfers", "CURRLIAB", "BASEXCLUDED", "ACTIVE", "TRACKINGTRANSFERS", False),
    ("960", "Retained Earnings", "EQUITY", "BASEXCLUDED", "ACTIVE", "RETAINEDEARNINGS", False),
]
UK_ACCOUNTS = [
    ("090", "Business Current Account", "BANK", "NONE", "ACTIVE", None, False),
    ("200", "Sales", "REVENUE", "OUTPUT2", "ACTIVE", None, False),
    ("260", "Other Revenue", "REVENUE", "OUTPUT2", "ACTIVE", None, False),
    ("270", "Interest Income", "REVENUE", "EXEMPTOUTPUT", "ACTIVE", None, False),
    ("280", "Old Services (archived)", "REVENUE", "OUTPUT2", "ARCHIVED", None, False),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", "ACTIVE", None, False),
    ("400", "Advertising", "OVERHEADS", "INPUT2", "ACTIVE", None, False),
    ("610", "Accounts Receivable", "CURRENT", "NONE", "ACTIVE", "DEBTORS", False),
    ("800", "Accounts Payable", "CURRLIAB", "NONE", "ACTIVE", "CREDITORS", False),
    ("820", "VAT", "CURRLIAB", "NONE", "ACTIVE", "GST", False),
    ("960", "Retained Earnings", "EQUITY", "NONE", "ACTIVE", "RETAINEDEARNINGS", False),
]

AU_CONTACTS = [
    ("Bondi Surf School", "AU-1001", "accounts@bondisurf.example"),
    ("Melbourne Makers Co-op", "AU-1002", "hello@melbmakers.example"),
    ("Perth Pet Supplies", None, "billing@perthpets.example"),
]
UK_CONTACTS = [
    ("Camden Coffee House", "UK-2001", "finance@camdencoffee.example"),
    ("Leeds Print Collective", "UK-2002", "ap@leedsprint.example"),
    ("Bristol Bike Couriers", None, "office@bristolbikes.example"),
]

USERS = [
    {
        "email": DEMO_EMAIL,
        "password": DEMO_PASSWORD,
        "first_name": "Demo",
        "last_name": "User",
        "tenants": [AU_ID, UK_ID],
    },
    {
        "email": "solo@sandbox.test",
        "password": DEMO_PASSWORD,
        "first_name": "Solo",
        "last_name": "Bookkeeper",
        "tenants": [AU_ID],
    },
]


def extra_org(index: int) -> dict:
    """An AU-style organisation with its own id, name and ShortCode, for benchmarks that need many tenants."""
    return dict(
        ORGS[0],
        OrganisationID=sid("org", f"extra-{index}"),
        Name=f"Extra Org {index:02d} (AU)",
        LegalName=f"Extra Org {index:02d} Pty Ltd",
        ShortCode=f"!x{index:04d}",
    )


def seed(app) -> None:
    store = app.store
    now = app.clock.now()
    with store.tx():
        for user in USERS:
            doc = dict(user, id=sid("user", user["email"]), sub=uuid.uuid5(NS, "sub/" + user["email"]).hex)
            if user["email"] == DEMO_EMAIL:  # the demo login can connect the extra organisations too
                extra = [extra_org(i)["OrganisationID"] for i in range(app.settings.s.extra_orgs)]
                doc["tenants"] = [*user["tenants"], *extra]
            store.put("user", doc["id"], doc, k1=user["email"].lower())
        for org_data, tax, accounts, contacts in [
            (ORGS[0], AU_TAX, AU_ACCOUNTS, AU_CONTACTS),
            (ORGS[1], UK_TAX, UK_ACCOUNTS, UK_CONTACTS),
            *((extra_org(i), AU_TAX, AU_ACCOUNTS, AU_CONTACTS) for i in range(app.settings.s.extra_orgs)),
        ]:
            put_organisation(app, org_data, tax, accounts, contacts, created=now - 400 * 86400)
        store.meta_set("seeded", now)
    seed_invoices(app)


def put_organisation(app, org_data: dict, tax: list, accounts: list, contacts: list, created: float) -> None:
    """Store one organisation with its tax rates, chart of accounts and contacts (inside the caller's transaction)."""
    store = app.store
    now = app.clock.now()
    tenant = org_data["OrganisationID"]
    org = dict(org_data)
    org.update(
        APIKey=uuid.uuid5(NS, "api/" + tenant).hex[:30].upper(),
        PaysTax=True,
        OrganisationType="COMPANY",
        IsDemoCompany=False,
        OrganisationStatus="ACTIVE",
        DefaultSalesTax="Tax Exclusive",
        DefaultPurchasesTax="Tax Inclusive",
        CreatedDateUTC=created,
        Edition="BUSINESS",
        Class="PREMIUM",
        InvoicePrefix="INV-",
    )
    store.put("org", tenant, org, tenant=tenant, k1=org["ShortCode"])
    for tax_type, name, report, rate, revenue, expenses, other, status in tax:
        doc = {
            "TaxType": tax_type,
            "Name": name,
            "ReportTaxType": report,
            "Status": status,
            "DisplayTaxRate": Decimal(rate),
            "EffectiveRate": Decimal(rate),
            "CanApplyToRevenue": revenue,
            "CanApplyToExpenses": expenses,
            "CanApplyToAssets": other,
            "CanApplyToEquity": other,
            "CanApplyToLiabilities": other,
            "TaxComponents": [{"Name": "GST" if org["CountryCode"] == "AU" else "VAT", "Rate": Decimal(rate)}],
        }
        store.put("taxrate", sid("tax", tenant, tax_type), doc, tenant=tenant, k1=tax_type)
    for code, name, kind, tax_type, status, system, payments in accounts:
        doc = {
            "AccountID": sid("account", tenant, code),
            "Code": code,
            "Name": name,
            "Type": kind,
            "TaxType": tax_type,
            "Status": status,
            "Class": CLASS_OF[kind],
            "SystemAccount": system,
            "EnablePaymentsToAccount": payments,
            "ShowInExpenseClaims": kind in ("OVERHEADS",),
            "HasAttachments": False,
            "UpdatedDateUTC": now - 300 * 86400,
            "CurrencyCode": org["BaseCurrency"] if kind == "BANK" else None,
            "BankAccountType": "BANK" if kind == "BANK" else None,
            "BankAccountNumber": "062-000 1234 5678" if kind == "BANK" else None,
        }
        store.put("account", doc["AccountID"], doc, tenant=tenant, k1=code.upper())
    for name, number, email in contacts:
        doc = {
            "ContactID": sid("contact", tenant, name),
            "tenant": tenant,
            "Name": name,
            "ContactStatus": "ACTIVE",
            "EmailAddress": email,
            "IsCustomer": True,
            "IsSupplier": False,
            "Addresses": [],
            "Phones": [],
            "ContactPersons": [],
            "UpdatedDateUTC": now - 200 * 86400,
            "created_by": None,
        }
        if number:
            doc["ContactNumber"] = number
        store.put(
            "contact",
            doc["ContactID"],
            doc,
            tenant=tenant,
            k1=name.lower(),
            k2=number,
            k3="ACTIVE",
            updated=doc["UpdatedDateUTC"],
        )


def seed_invoices(app) -> None:
    """Two invoices per organisation (INV-0001 AUTHORISED, INV-0002 DRAFT), without webhooks."""
    from . import ledger

    saved_url = app.settings.s.webhook_url
    quiet = app.webhooks
    app.settings.s.webhook_url = ""
    try:
        for org_data, contacts in ((ORGS[0], AU_CONTACTS), (ORGS[1], UK_CONTACTS)):
            org = app.store.get("org", org_data["OrganisationID"])
            today = ledger.org_today(app, org)
            first = {
                "Type": "ACCREC",
                "Contact": {"ContactID": sid("contact", org["OrganisationID"], contacts[0][0])},
                "Date": (today - dt.timedelta(days=20)).isoformat(),
                "DueDate": (today + dt.timedelta(days=10)).isoformat(),
                "Status": "AUTHORISED",
                "Reference": "Seeded",
                "LineItems": [
                    {
                        "Description": "Monthly supply",
                        "Quantity": Decimal("2"),
                        "UnitAmount": Decimal("150.00"),
                        "AccountCode": "200",
                    }
                ],
            }
            second = {
                "Type": "ACCREC",
                "Contact": {"ContactID": sid("contact", org["OrganisationID"], contacts[1][0])},
                "Date": today.isoformat(),
                "Status": "DRAFT",
                "LineItems": [
                    {
                        "Description": "Workshop",
                        "Quantity": Decimal("1"),
                        "UnitAmount": Decimal("99.95"),
                        "AccountCode": "260",
                    }
                ],
            }
            for data in (first, second):
                ledger.save_invoice(app, org, data, "create", None)
    finally:
        app.settings.s.webhook_url = saved_url
        quiet.clear()


COUNTRIES = {"AU": (ORGS[0], AU_TAX, AU_ACCOUNTS), "GB": (ORGS[1], UK_TAX, UK_ACCOUNTS)}


def add_organisation(app, *, name: str, country: str = "AU") -> str:
    """A new organisation, as Xero's "Add a new organisation" makes one: its own id and ShortCode, the country's
    chart of accounts and tax rates, no contacts. Returns its tenant id."""
    import secrets

    template, tax, accounts = COUNTRIES.get(country, COUNTRIES["AU"])
    tenant = str(uuid.uuid4())
    org_data = dict(
        template,
        OrganisationID=tenant,
        Name=name,
        LegalName=name,
        ShortCode="!" + secrets.token_urlsafe(4)[:5],
        TaxNumber="",
        LineOfBusiness="",
    )
    with app.store.tx():
        put_organisation(app, org_data, tax, accounts, [], created=app.clock.now())
    return tenant


def add_user(app, *, email: str, password: str, first_name: str, last_name: str, tenants: list) -> dict:
    """A new Xero login (Xero's sign-up): its own user id and OpenID subject."""
    user = {
        "id": str(uuid.uuid4()),
        "sub": uuid.uuid4().hex,
        "email": email,
        "password": password,
        "first_name": first_name,
        "last_name": last_name,
        "tenants": list(tenants),
    }
    app.store.put("user", user["id"], user, k1=email.lower())
    return user
