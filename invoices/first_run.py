"""The dashboard's first run and health (issue 14): a setup checklist until the organisation has connected Xero,
chosen its mapping and created a batch that goes to Xero; then, for admins, a health card: the connection's state,
the last sync and check, invoices and credit notes that need attention or failed (invoices/states.py's vocabulary),
and the day's Xero calls against the limit (integrations.usage.selectors). Selectors only: they read, never write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count
from django.urls import reverse

from integrations.models import XeroConnection
from integrations.selectors import xero_connection_for
from integrations.usage.selectors import UsageToday, xero_usage_today
from invoices.models import CreditNote, Invoice, InvoiceBatch
from invoices.services.mapping import mapping_for
from invoices.states import CreditNoteStatus, InvoiceStatus, credit_note_status_q, documents_in_words, status_q
from organisations.locale import today_for
from organisations.models import Organisation

S = XeroConnection.Status


@dataclass(frozen=True)
class SetupStep:
    key: str
    title: str
    text: str
    done: bool
    url: str
    action: str  # the button's words


@dataclass(frozen=True)
class Checklist:
    steps: list[SetupStep]

    @property
    def done(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def next(self) -> SetupStep | None:
        return next((step for step in self.steps if not step.done), None)

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)


def _connected(connection: XeroConnection | None) -> bool:
    return connection is not None and connection.is_bound and not connection.disconnect_step


def setup_checklist(*, organisation: Organisation, connection: XeroConnection | None = None) -> Checklist:
    """Three steps, each decided from what is stored (three small queries)."""
    connection = connection if connection is not None else xero_connection_for(organisation)
    connected = _connected(connection)
    tenant = connection.tenant_name if connected else ""
    mapped = mapping_for(organisation) is not None
    batch = InvoiceBatch.objects.filter(
        organisation=organisation, eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    ).exists()
    return Checklist(
        steps=[
            SetupStep(
                key="connect",
                title="Connect Xero",
                text=f"Connected to {tenant}."
                if connected
                else "Sign in to Xero and allow Coordinoter to send your "
                "invoices there. Batches created before you connect stay in Coordinoter only.",
                done=connected,
                url=reverse("integrations:manage"),
                action="Connect to Xero",
            ),
            SetupStep(
                key="mapping",
                title="Choose the Xero mapping",
                text="Done: invoice lines use your default revenue account and tax rate."
                if mapped
                else "Pick the revenue account and tax rate, from your own Xero chart of accounts, that invoice lines "
                "use. Invoices wait until this is chosen.",
                done=mapped,
                url=reverse("invoices:mapping"),
                action="Choose the mapping",
            ),
            SetupStep(
                key="batch",
                title="Create your first batch",
                text="Done: your invoices go to Xero on their own."
                if batch
                else "Create invoices in a form or upload a CSV: they appear in Xero by themselves.",
                done=batch,
                url=reverse("invoices:batch_new"),
                action="Create a batch",
            ),
        ]
    )


@dataclass(frozen=True)
class HealthCard:
    state: str  # connected | needs_reconnect | disconnected
    state_label: str
    tenant_name: str
    last_synced_at: dt.datetime | None
    last_verified_at: dt.datetime | None
    needs_attention: int
    failed: int
    usage: UsageToday
    needs_attention_words: str = ""  # "1 invoice and 2 credit notes"
    failed_words: str = ""

    @property
    def problems(self) -> int:
        return self.needs_attention + self.failed


def health_card(*, organisation: Organisation, connection: XeroConnection | None = None) -> HealthCard:
    connection = connection if connection is not None else xero_connection_for(organisation)
    if connection is None or connection.status == S.NOT_CONNECTED:
        state, label = "disconnected", "Not connected"
    elif connection.disconnect_step or connection.status == S.DISCONNECTED:
        state, label = "disconnected", "Disconnected"
    elif connection.status == S.REVOKED_IN_XERO:
        state, label = "disconnected", "Disconnected in Xero"
    elif connection.status == S.NEEDS_RECONNECT:
        state, label = "needs_reconnect", "Needs reconnect"
    else:
        state, label = "connected", "Connected"
    today = today_for(organisation)
    # Invoices and credit notes alike (one query each), by the same words of the vocabulary.
    kinds = [
        model.objects.filter(organisation=organisation).aggregate(
            needs_attention=Count("pk", filter=q_of(words.NEEDS_ATTENTION, today=today)),
            failed=Count("pk", filter=q_of(words.FAILED, today=today)),
        )
        for model, q_of, words in (
            (Invoice, status_q, InvoiceStatus),
            (CreditNote, credit_note_status_q, CreditNoteStatus),
        )
    ]
    invoices, notes = ({key: value or 0 for key, value in counts.items()} for counts in kinds)
    return HealthCard(
        state=state,
        state_label=label,
        tenant_name=connection.tenant_name if connection else "",
        last_synced_at=connection.last_synced_at if connection else None,
        last_verified_at=connection.last_verified_at if connection else None,
        needs_attention=invoices["needs_attention"] + notes["needs_attention"],
        failed=invoices["failed"] + notes["failed"],
        usage=xero_usage_today(organisation),
        needs_attention_words=documents_in_words(invoices["needs_attention"], notes["needs_attention"]),
        failed_words=documents_in_words(invoices["failed"], notes["failed"]),
    )


def dashboard_first_run(*, organisation: Organisation, is_admin: bool) -> dict:
    """What the dashboard shows above its tiles: the checklist until setup is done, then the admins' health card."""
    connection = xero_connection_for(organisation)
    checklist = setup_checklist(organisation=organisation, connection=connection)
    if not checklist.done:
        return {"checklist": checklist, "health": None}
    return {
        "checklist": None,
        "health": health_card(organisation=organisation, connection=connection) if is_admin else None,
    }


def mapping_next_step_banners(request) -> list:
    """On Manage Integrations, once Xero is connected and until an admin has chosen the mapping: the next step.
    (A banner provider, so the integrations app, below invoices, needs to know nothing of the mapping.)"""
    from organisations.banners import Banner

    match = getattr(request, "resolver_match", None)
    membership = getattr(request, "membership", None)
    if match is None or match.view_name != "integrations:manage" or membership is None or not membership.is_admin:
        return []
    connection = xero_connection_for(request.organisation)
    if not _connected(connection) or mapping_for(request.organisation) is not None:
        return []
    return [
        Banner(
            text=f"Next step: choose the revenue account and tax rate from {connection.tenant_name}'s chart of "
            "accounts that your invoice lines use. Invoices wait in Coordinoter until you do.",
            level="info",
            url=reverse("invoices:mapping"),
            link_text="Choose the Xero mapping →",
        )
    ]
