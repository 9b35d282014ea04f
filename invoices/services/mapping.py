"""The organisation's Xero defaults (revenue account, tax rate), chosen from its own Xero settings.

Choices come from GET /Accounts and GET /TaxRates (and the enabled currencies from GET /Currencies) through the
integrations front door, cached per tenant for ten minutes; never a hard-coded code (Xero certification
checkpoints 8 and 9).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from coordinoter.prepared import Bind, Prepared
from integrations.models import XeroConnection
from integrations.selectors import xero_connection_for
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.errors import describe
from integrations.xero.exceptions import XeroError, XeroNeedsReconnect, XeroNotConnected
from integrations.xero.ratelimit import rate_limiter
from invoices import mappers
from invoices.models import Invoice, InvoiceLine, XeroMapping
from organisations.models import Organisation

logger = logging.getLogger(__name__)

CHOICES_TTL_SECONDS = 600
# Tax rates outlive the choices cache so batch totals can use them; they only feed estimates.
TAX_RATES_TTL_SECONDS = 24 * 3600


MAPPING_MISSING_MESSAGE = (
    "Choose the default revenue account and tax rate in Settings > Xero mapping: "
    "invoices wait until then instead of being sent to fail."
)
# What the reads are for, in the sentence a person reads when one fails (integrations.xero.errors.describe).
_CHART = "read your accounts and tax rates"
_CURRENCIES = "read your currencies"


class MappingUnavailable(Exception):
    """Xero's accounts or tax rates could not be read; the message is fit to show to the person."""


class MappingRejected(Exception):
    """The chosen account or tax rate is not one the organisation's Xero offers for sales."""


@dataclass(frozen=True)
class MappingChoices:
    accounts: list[mappers.AccountChoice]
    tax_rates: list[mappers.TaxRateChoice]
    tenant_name: str = ""
    fetched_at: dt.datetime | None = None


def mapping_for(organisation: Organisation) -> XeroMapping | None:
    """The organisation's defaults, or None when an admin has not chosen them yet (pushing is then blocked)."""
    return XeroMapping.objects.filter(organisation=organisation).select_related("updated_by").first()


def mapping_defaults_for(organisation_id: int) -> XeroMapping | None:
    """mapping_for with only what a payload reads (the account and the tax rate): what the push builds chunks with,
    once per chunk."""
    return next(iter(_DEFAULTS.rows(organisation=organisation_id)), None)


# One mapping per organisation (a one-to-one): no ORDER BY, as first() would build. Compiled once
# (coordinoter/prepared.py).
_DEFAULTS = Prepared(
    lambda: XeroMapping.objects.filter(organisation_id=Bind("organisation")).only(
        "organisation_id", "revenue_account_code", "tax_type"
    )
)


def _cache_key(organisation: Organisation, tenant_id: str, what: str) -> str:
    return f"invoices:xero-mapping:{organisation.pk}:{tenant_id}:{what}"


def _connection(organisation: Organisation) -> XeroConnection | None:
    return xero_connection_for(organisation)


def _usable_connection(organisation: Organisation, *, doing: str) -> XeroConnection:
    """The connection to read from, checked before the cache (a disconnected organisation never sees its old
    choices); refused in the words the front door's own refusal would get."""
    connection = _connection(organisation)
    if connection is None or not connection.is_bound or connection.disconnect_step:
        raise MappingUnavailable(describe(XeroNotConnected("Xero is not connected."), doing=doing))
    if connection.status == XeroConnection.Status.NEEDS_RECONNECT:
        raise MappingUnavailable(describe(XeroNeedsReconnect("Xero needs reconnecting."), doing=doing))
    return connection


def _unavailable(exc: XeroError, *, event: str, connection: XeroConnection, doing: str) -> MappingUnavailable:
    logger.warning(
        event,
        extra={
            "organisation": connection.organisation_id,
            "tenant_id": connection.tenant_id,
            "error": type(exc).__name__,
            "correlation_id": exc.correlation_id,
        },
    )
    return MappingUnavailable(describe(exc, doing=doing))


def _chart_get(*, connection: XeroConnection) -> tuple[dict[str, Any], dict[str, Any]]:
    # Through the shared limiter: reading settings must not take a slot a running push is counting on.
    client = XeroClient(connection.pk, rate_limiter=rate_limiter())
    return accounting.accounts_get(client).body or {}, accounting.tax_rates_get(client).body or {}


def mapping_choices(*, organisation: Organisation, refresh: bool = False) -> MappingChoices:
    """Active revenue accounts and revenue tax rates from the organisation's own Xero, cached ten minutes.

    Raises MappingUnavailable with a plain message when Xero is not connected or the read failed.
    """
    connection = _usable_connection(organisation, doing=_CHART)
    key = _cache_key(organisation, connection.tenant_id, "choices")
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return MappingChoices(
                accounts=[mappers.AccountChoice(**a) for a in cached["accounts"]],
                tax_rates=[mappers.TaxRateChoice(**r) for r in cached["tax_rates"]],
                tenant_name=cached["tenant_name"],
                fetched_at=cached.get("fetched_at"),
            )
    try:
        accounts_body, rates_body = _chart_get(connection=connection)
    except XeroError as exc:
        raise _unavailable(exc, event="invoices.mapping.fetch_failed", connection=connection, doing=_CHART) from exc
    choices = MappingChoices(
        accounts=mappers.revenue_accounts(accounts_body),
        tax_rates=mappers.revenue_tax_rates(rates_body),
        tenant_name=connection.tenant_name,
        fetched_at=timezone.now(),
    )
    cache.set(
        key,
        {
            "accounts": [asdict(a) for a in choices.accounts],
            "tax_rates": [asdict(r) for r in choices.tax_rates],
            "tenant_name": choices.tenant_name,
            "fetched_at": choices.fetched_at,
        },
        CHOICES_TTL_SECONDS,
    )
    cache.set(
        _cache_key(organisation, connection.tenant_id, "tax-rates"),
        {r.tax_type: r.rate for r in choices.tax_rates},
        TAX_RATES_TTL_SECONDS,
    )
    return choices


def currencies_enabled(*, organisation: Organisation, refresh: bool = False) -> list[str]:
    """The currency codes enabled in the organisation's Xero (GET /Currencies, base currency first), cached ten
    minutes per tenant like the accounts and tax rates. Raises MappingUnavailable with a plain message."""
    connection = _usable_connection(organisation, doing=_CURRENCIES)
    key = _cache_key(organisation, connection.tenant_id, "currencies")
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return list(cached)
    try:
        body = accounting.currencies_get(XeroClient(connection.pk, rate_limiter=rate_limiter())).body or {}
    except XeroError as exc:
        raise _unavailable(
            exc, event="invoices.mapping.currencies_failed", connection=connection, doing=_CURRENCIES
        ) from exc
    codes = [str(c.get("Code") or "").upper() for c in body.get("Currencies") or [] if c.get("Code")]
    base = (connection.base_currency or "").upper()
    codes = ([base] if base else []) + sorted(c for c in dict.fromkeys(codes) if c != base)
    cache.set(key, codes, CHOICES_TTL_SECONDS)
    return codes


def tax_rates_cached(*, organisation: Organisation) -> dict[str, Decimal] | None:
    """Revenue tax rates (TaxType -> percent) as last read from Xero; None if never read. Never calls Xero."""
    connection = _connection(organisation)
    if connection is None or not connection.tenant_id:
        return None
    return cache.get(_cache_key(organisation, connection.tenant_id, "tax-rates"))


# The invoices whose lines went to Xero (or are on their way) with the defaults of the time.
_SENT = (Invoice.SyncState.IN_FLIGHT, Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)


def _defaults_pinned(organisation: Organisation, before: XeroMapping, *, account: str, tax_type: str) -> None:
    """A line that follows a default went to Xero with the default of the time: when that default changes, the line
    keeps the code Xero holds, so reading Xero's copy back does not show it as edited there. Lines not yet sent
    (pending, failed, needing attention: a retry sends them again) follow the new default."""
    sent = InvoiceLine.objects.filter(invoice__organisation=organisation, invoice__sync_state__in=_SENT)
    if before.revenue_account_code and before.revenue_account_code != account:
        sent.filter(account_code="").update(account_code=before.revenue_account_code)
    if before.tax_type and before.tax_type != tax_type:
        sent.filter(tax_type="").update(tax_type=before.tax_type)


@transaction.atomic
def mapping_save(
    *, organisation: Organisation, user: AbstractBaseUser, revenue_account_code: str, tax_type: str
) -> XeroMapping:
    """Store the defaults after checking both are among the organisation's current Xero choices."""
    choices = mapping_choices(organisation=organisation)
    account = next((a for a in choices.accounts if a.code == revenue_account_code), None)
    rate = next((r for r in choices.tax_rates if r.tax_type == tax_type), None)
    if account is None:
        raise MappingRejected("Choose one of your active revenue accounts in Xero.")
    if rate is None:
        raise MappingRejected("Choose one of your Xero tax rates that applies to sales.")
    before = XeroMapping.objects.select_for_update().filter(organisation=organisation).first()
    if before is not None:
        _defaults_pinned(organisation, before, account=account.code, tax_type=rate.tax_type)
    mapping, _ = XeroMapping.objects.select_for_update().update_or_create(
        organisation=organisation,
        defaults={
            "revenue_account_code": account.code,
            "revenue_account_name": account.name[:150],
            "tax_type": rate.tax_type,
            "tax_name": rate.name[:150],
            "updated_by": user,
        },
    )
    logger.info(
        "invoices.mapping.saved",
        extra={"organisation": organisation.pk, "account": account.code, "tax_type": rate.tax_type},
    )
    return mapping
