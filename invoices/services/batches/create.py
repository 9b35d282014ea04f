"""Create a batch (from the form or a CSV upload): the one atomic service both go through."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from integrations.selectors import xero_sync_eligibility
from invoices.models import InvoiceBatch
from invoices.services.batches.documents import _write
from invoices.services.batches.inputs import BatchInvalid, BatchProblem, InvoiceInput, _Totals
from invoices.services.batches.validation import batch_problems
from invoices.services.mapping import mapping_for, tax_rates_cached
from organisations.models import Organisation

logger = logging.getLogger("invoices.services.batches")  # the name it logged under before the split


def batch_eligibility_now(*, organisation: Organisation) -> str:
    """What the help article promises, decided from the organisation's Xero connection at this moment."""
    value = xero_sync_eligibility(organisation)
    return value if value in InvoiceBatch.Eligibility.values else InvoiceBatch.Eligibility.BEFORE_CONNECTION


def _totals_context(*, organisation: Organisation) -> _Totals:
    # Tax rates as last read from Xero (cache only: creating a batch never waits on Xero). Xero recomputes
    # totals when the invoice lands and the push stores them; until then these are our best estimate.
    rates = tax_rates_cached(organisation=organisation) or {}
    mapping = mapping_for(organisation)
    default = rates.get(mapping.tax_type, Decimal("0")) if mapping else Decimal("0")
    return _Totals(tax_rate=default, tax_rates=rates)


def batch_create(
    *,
    organisation: Organisation,
    user: AbstractBaseUser | None,
    name: str,
    invoices: Sequence[InvoiceInput],
    source: str,
) -> InvoiceBatch:
    """Create a batch and its invoices, or nothing (raises BatchInvalid listing every problem).

    Eligibility is decided once, now: eligible batches' invoices start `pending` and the push is
    enqueued on commit; batches created before Xero was connected, or while it was disconnected, stay
    `not_synced` (the help article's promise).
    """
    problems = batch_problems(organisation=organisation, name=name, invoices=invoices)
    if problems:
        raise BatchInvalid(problems)
    eligibility = batch_eligibility_now(organisation=organisation)
    totals_context = _totals_context(organisation=organisation)
    try:
        with transaction.atomic():
            batch = _write(
                organisation=organisation,
                user=user,
                name=name.strip(),
                invoices=invoices,
                source=source,
                eligibility=eligibility,
                totals_context=totals_context,
            )
            if eligibility == InvoiceBatch.Eligibility.ELIGIBLE:
                organisation_id = organisation.pk
                transaction.on_commit(lambda: _enqueue_push(organisation_id=organisation_id))
    except IntegrityError as exc:
        # Another request took one of these numbers between our check and our insert.
        logger.info("invoices.batch.create_conflict", extra={"organisation": organisation.pk})
        problems = batch_problems(organisation=organisation, name=name, invoices=invoices)
        raise BatchInvalid(
            problems
            or [BatchProblem(None, "invoices", "An invoice number was just taken by another batch. Please try again.")]
        ) from exc
    logger.info(
        "invoices.batch.created",
        extra={
            "organisation": organisation.pk,
            "batch": batch.pk,
            "invoices": len(invoices),
            "eligibility": eligibility,
        },
    )
    return batch


def _enqueue_push(*, organisation_id: int) -> None:
    from invoices.services.push import push_enqueue_for_organisation  # the engine imports this module's app

    push_enqueue_for_organisation(organisation_id=organisation_id)
