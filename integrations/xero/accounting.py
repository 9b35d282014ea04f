"""Xero's Accounting API: one typed function per endpoint the product uses.

Every wire detail lives here and nowhere else: paths, query parameters (`unitdp=4` on every invoice and
credit-note read and write, `summarizeErrors=false` on batch writes), header and date formats, paging. Callers
pass typed values and a `XeroClient` (which adds the token, tenant, limiter, logging and error mapping) and get the
client's `XeroResponse` back. tests/integrations/test_accounting_conformance.py validates every request these
functions put on the wire against Xero's official OpenAPI spec (../shared/xero-openapi/xero_accounting.yaml).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from integrations.xero.types import XeroResponse

if TYPE_CHECKING:
    from integrations.xero.client import XeroClient

# Four-decimal unit amounts on every read and write of invoices and credit notes: without it Xero rounds a unit
# price of 10.1234 to 10.12 on the way in and reports it rounded on the way out
# (https://developer.xero.com/documentation/api/accounting/invoices, "unitdp").
UNIT_DP = "4"
# One element's validation error must not refuse the others (https://developer.xero.com/documentation/api/accounting/invoices).
BATCH_WRITE = {"summarizeErrors": "false"}
# Xero returns at most 100 documents a page (the spec's `page` parameter on GET /Invoices).
PAGE_SIZE = 100


def rfc3339(moment: dt.datetime) -> str:
    """A UTC timestamp as the spec's `format: date-time` (RFC 3339, with its offset): 2026-12-03T15:56:01Z."""
    if moment.tzinfo is None:
        raise ValueError("Xero timestamps are built from aware datetimes only.")
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _since(modified_since: dt.datetime | None) -> dict[str, str]:
    return {"If-Modified-Since": rfc3339(modified_since)} if modified_since is not None else {}


# Xero's `/Date(epoch ms[+-]hhmm)/`, in every JSON answer.
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-])?(\d{2})?(\d{2})?\)/$")


def parse_xero_datetime(value: str | None) -> dt.datetime | None:
    """`/Date(1419937200000+1300)/` -> an aware datetime. None for empty or unparseable values.

    The number is epoch milliseconds (an instant); the optional offset is the zone it is shown in.
    https://developer.xero.com/documentation/api/accounting/requests-and-responses (dates)
    """
    if not value:
        return None
    match = _MS_DATE.match(value.strip())
    if not match:
        return None
    millis, sign, hours, minutes = match.groups()
    offset = dt.timedelta(0)
    if sign:
        offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        if sign == "-":
            offset = -offset
    instant = dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.UTC)
    return instant.astimezone(dt.timezone(offset))


def _ids(values: Sequence[str]) -> str:
    # The spec's IDs/InvoiceNumbers are `style: form, explode: false`: one comma-separated value.
    if not values:
        raise ValueError("An id filter needs at least one value.")
    return ",".join(str(v) for v in values)


def _flag(value: bool) -> str:
    return "true" if value else "false"


# ------------------------------------------------------------------ invoices


def invoices_put(client: XeroClient, *, invoices: Sequence[Mapping[str, Any]], idempotency_key: str) -> XeroResponse:
    """PUT /Invoices: create up to 50 invoices; each element answers for itself."""
    return client.request(
        "PUT",
        "/Invoices",
        params={**BATCH_WRITE, "unitdp": UNIT_DP},
        json={"Invoices": list(invoices)},
        idempotency_key=idempotency_key,
    )


def invoices_get(
    client: XeroClient,
    *,
    ids: Sequence[str] = (),
    invoice_numbers: Sequence[str] = (),
    modified_since: dt.datetime | None = None,
    created_by_my_app: bool = False,
    summary_only: bool = False,
    in_id_order: bool = False,
    page: int = 1,
) -> XeroResponse:
    """GET /Invoices, one page of up to 100 (with line items unless summary_only). `in_id_order` pages by InvoiceID
    (an order Xero optimises): unlike UpdatedDateUTC, an edit made while a caller pages does not move the invoice."""
    params: dict[str, str] = {"page": str(page), "unitdp": UNIT_DP}
    if ids:
        params["IDs"] = _ids(ids)
    if invoice_numbers and any("," in number for number in invoice_numbers):
        # InvoiceNumbers is a comma-separated list: a number with a comma in it cannot be named there.
        params["where"] = " OR ".join(_equals("InvoiceNumber", number) for number in invoice_numbers)
    elif invoice_numbers:
        params["InvoiceNumbers"] = _ids(invoice_numbers)
    if created_by_my_app:
        params["createdByMyApp"] = "true"
    if summary_only:
        params["summaryOnly"] = "true"
    if in_id_order:
        params["order"] = "InvoiceID ASC"
    return client.request("GET", "/Invoices", params=params, headers=_since(modified_since))


def invoice_get(client: XeroClient, *, invoice_id: str) -> XeroResponse:
    """GET /Invoices/{InvoiceID}: Xero's current copy of one invoice."""
    return client.request("GET", f"/Invoices/{invoice_id}", params={"unitdp": UNIT_DP})


def invoice_post(
    client: XeroClient, *, invoice_id: str, invoice: Mapping[str, Any], idempotency_key: str
) -> XeroResponse:
    """POST /Invoices/{InvoiceID}: change one invoice (edit, void, delete by Status)."""
    return client.request(
        "POST",
        f"/Invoices/{invoice_id}",
        params={"unitdp": UNIT_DP},
        json={"Invoices": [dict(invoice)]},
        idempotency_key=idempotency_key,
    )


# ------------------------------------------------------------------ credit notes


def credit_notes_put(
    client: XeroClient, *, credit_notes: Sequence[Mapping[str, Any]], idempotency_key: str
) -> XeroResponse:
    """PUT /CreditNotes: create credit notes; each element answers for itself."""
    return client.request(
        "PUT",
        "/CreditNotes",
        params={**BATCH_WRITE, "unitdp": UNIT_DP},
        json={"CreditNotes": list(credit_notes)},
        idempotency_key=idempotency_key,
    )


def credit_notes_get(
    client: XeroClient,
    *,
    where: str = "",
    modified_since: dt.datetime | None = None,
    in_id_order: bool = False,
    page: int = 1,
) -> XeroResponse:
    """GET /CreditNotes, one page of up to 100 with line items (reconciliation reads these, `in_id_order`; `where` is
    built by the caller, e.g. `credit_note_number_where`: the endpoint has no IDs or numbers filter)."""
    params = {"page": str(page), "unitdp": UNIT_DP}
    if where:
        params["where"] = where
    if in_id_order:
        params["order"] = "CreditNoteID ASC"
    return client.request("GET", "/CreditNotes", params=params, headers=_since(modified_since))


def credit_note_get(client: XeroClient, *, credit_note_id: str) -> XeroResponse:
    """GET /CreditNotes/{CreditNoteID}: Xero's current copy of one credit note, with its allocations."""
    return client.request("GET", f"/CreditNotes/{credit_note_id}", params={"unitdp": UNIT_DP})


def credit_note_number_where(number: str) -> str:
    """The `where` that finds a credit note by its CreditNoteNumber (quotes and backslashes escaped)."""
    return _equals("CreditNoteNumber", number)


def _equals(field: str, value: str) -> str:
    """`field=="value"` in Xero's where syntax, the value's quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{field}=="{escaped}"'


def credit_note_allocation_put(
    client: XeroClient, *, credit_note_id: str, invoice_id: str, amount: Decimal, date: dt.date, idempotency_key: str
) -> XeroResponse:
    """PUT /CreditNotes/{CreditNoteID}/Allocations: allocate part of a credit note to an invoice."""
    # Amount is a JSON number in the spec; two places are exact in a float's shortest repr.
    allocation = {"Invoice": {"InvoiceID": invoice_id}, "Amount": float(amount), "Date": date.isoformat()}
    return client.request(
        "PUT",
        f"/CreditNotes/{credit_note_id}/Allocations",
        params=dict(BATCH_WRITE),
        json={"Allocations": [allocation]},
        idempotency_key=idempotency_key,
    )


# ------------------------------------------------------------------ contacts


def contacts_get(
    client: XeroClient,
    *,
    ids: Sequence[str] = (),
    where: str = "",
    modified_since: dt.datetime | None = None,
    include_archived: bool = False,
    summary_only: bool = False,
    in_id_order: bool = False,
    page: int | None = None,
) -> XeroResponse:
    """GET /Contacts, filtered by ids or a `where` expression built by the caller's mapper (`in_id_order`: paged by
    ContactID, which an edit made meanwhile does not change)."""
    params: dict[str, str] = {}
    if ids:
        params["IDs"] = _ids(ids)
    if where:
        params["where"] = where
    if include_archived:
        params["includeArchived"] = "true"
    if summary_only:
        params["summaryOnly"] = "true"
    if in_id_order:
        params["order"] = "ContactID ASC"
    if page is not None:
        params["page"] = str(page)
    return client.request("GET", "/Contacts", params=params, headers=_since(modified_since))


def contacts_post(client: XeroClient, *, contacts: Sequence[Mapping[str, Any]], idempotency_key: str) -> XeroResponse:
    """POST /Contacts: create or update contacts (matched by ContactNumber); each element answers for itself."""
    return client.request(
        "POST",
        "/Contacts",
        params=dict(BATCH_WRITE),
        json={"Contacts": list(contacts)},
        idempotency_key=idempotency_key,
    )


# ------------------------------------------------------------------ the organisation's settings


def accounts_get(client: XeroClient) -> XeroResponse:
    """GET /Accounts: the chart of accounts."""
    return client.request("GET", "/Accounts")


def tax_rates_get(client: XeroClient) -> XeroResponse:
    """GET /TaxRates."""
    return client.request("GET", "/TaxRates")


def currencies_get(client: XeroClient) -> XeroResponse:
    """GET /Currencies: the currencies enabled in the Xero organisation."""
    return client.request("GET", "/Currencies")


def organisation_get(client: XeroClient) -> XeroResponse:
    """GET /Organisation: name, ShortCode, BaseCurrency, Timezone, CountryCode."""
    return client.request("GET", "/Organisation")


def first(response: XeroResponse, collection: str) -> dict[str, Any]:
    """The first element of a collection answer (`{"Invoices": [...]}`), or {} when there is none."""
    items = (response.body or {}).get(collection) if isinstance(response.body, dict) else None
    return dict(items[0]) if items else {}


def is_last_page(response: XeroResponse, *, page: int, collection: str) -> bool:
    """True when `page` was the last: Xero's pagination says so, or the page was not full."""
    body = response.body if isinstance(response.body, dict) else {}
    page_count = (body.get("pagination") or {}).get("pageCount")
    return (isinstance(page_count, int) and page >= page_count) or len(body.get(collection) or []) < PAGE_SIZE


def items(response: XeroResponse, collection: str) -> list[dict[str, Any]]:
    """Every element of a collection answer, or [] when there is none."""
    found = (response.body or {}).get(collection) if isinstance(response.body, dict) else None
    return list(found or [])
