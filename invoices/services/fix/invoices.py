"""The invoice's kind of document for fix, cancel and resend (documents.py), and the invoice-named functions the
pages, the batch review and the tests call."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser

from invoices.models import CancelledInvoice, Invoice, InvoiceLine
from invoices.outbound.chunks import chunks_settle
from invoices.services.batches import InvoiceInput
from invoices.services.fix.documents import (
    DocumentFix,
    DocumentKind,
    document_cancel,
    document_fix,
    document_input_of,
    document_resend,
    fix_refusal,
    resend_refusal,
)
from organisations.models import Organisation


def _invoice_resend(*, organisation: Organisation, document: Invoice, user: AbstractBaseUser) -> None:
    # The push engine owns retries: failed/needs attention -> pending, who asked, enqueued on commit. The next
    # chunk is built from the invoice's lines as they are now, under a new Idempotency-Key.
    from invoices.services.push import invoices_retry_failed

    invoices_retry_failed(organisation=organisation, batch=document.batch, user=user, invoice_ids=[document.pk])


def _invoice_withdraw(*, document: Invoice, user: AbstractBaseUser) -> str | None:
    """Before a cancel: a chunk that stopped in needs_attention over this invoice alone ends (withdrawn)."""
    if document.sync_state == Invoice.SyncState.NEEDS_ATTENTION:
        chunks_settle(
            organisation_id=document.organisation_id,
            chunk_ids=[document.chunk_id],
            reason=f"Its invoice {document.number} was cancelled by {user}.",
            leaving=[document.pk],
        )
    return None


INVOICE = DocumentKind(
    Invoice,
    "It is in Xero: change it there, or with Edit, Void or Delete on the batch page.",
    _invoice_resend,
    withdraw=_invoice_withdraw,
)


def invoice_fix_refusal(*, invoice: Invoice) -> str | None:
    return fix_refusal(INVOICE, invoice)


def invoice_resend_refusal(*, invoice: Invoice) -> str | None:
    return resend_refusal(INVOICE, invoice)


def invoice_input_of(invoice: Invoice, lines: Sequence[InvoiceLine]) -> InvoiceInput:
    return document_input_of(INVOICE, invoice, lines)


def invoice_fix(
    *, organisation: Organisation, invoice_id: int, user: AbstractBaseUser, fix: DocumentFix, resend: bool = False
) -> Invoice:
    return document_fix(
        kind=INVOICE, organisation=organisation, document_id=invoice_id, user=user, fix=fix, resend=resend
    )


def invoice_resend(*, organisation: Organisation, invoice_id: int, user: AbstractBaseUser) -> Invoice:
    return document_resend(kind=INVOICE, organisation=organisation, document_id=invoice_id, user=user)


def invoice_cancel(*, organisation: Organisation, invoice_id: int, user: AbstractBaseUser) -> CancelledInvoice:
    return document_cancel(kind=INVOICE, organisation=organisation, document_id=invoice_id, user=user)
