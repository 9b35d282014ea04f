"""One email to an organisation's admins when invoices fail or need attention: a digest of those that did so since
the last digest, never one email per invoice. The periodic task (beat `failure-digest`, every
FAILURE_DIGEST_SECONDS) finds the organisations with new ones and sends each its digest; an admin opts out in
Settings (Membership.failure_emails).

"Since the last digest" is `Organisation.failure_digest_until`: the cursor moves under the organisation's row lock
in the transaction that sends, so two workers never send the same digest and a failed send is tried again. An
invoice counts by its `updated_at` while it is still failed or needing attention (an invoice fixed meanwhile is not
reported); the first digest of an organisation looks back one interval, not over its whole history.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice
from organisations.audit import organisation_audit_record
from organisations.models import Membership, Organisation

logger = logging.getLogger(__name__)
ATTENTION = (Invoice.SyncState.FAILED, Invoice.SyncState.NEEDS_ATTENTION)
LISTED = 50  # invoices named in one email; the rest are counted, and the link shows them all


def _since(organisation: Organisation, now: dt.datetime) -> dt.datetime:
    return organisation.failure_digest_until or now - dt.timedelta(seconds=settings.FAILURE_DIGEST_SECONDS)


def failure_digest_organisation_ids(*, now: dt.datetime | None = None) -> list[int]:
    """Organisations with invoices that failed or need attention since their last digest (one query)."""
    now = now or timezone.now()
    first_look = now - dt.timedelta(seconds=settings.FAILURE_DIGEST_SECONDS)
    new = Invoice.objects.filter(organisation=OuterRef("pk"), sync_state__in=ATTENTION).filter(
        Q(updated_at__gt=OuterRef("failure_digest_until"))
        | Q(updated_at__gt=first_look) & Q(organisation__failure_digest_until__isnull=True)
    )
    return list(Organisation.objects.filter(Exists(new)).order_by("pk").values_list("pk", flat=True))


def failure_digest_send(*, organisation_id: int, now: dt.datetime | None = None) -> int:
    """Send this organisation's digest if it has new failures; returns how many invoices it listed (0: none sent)."""
    now = now or timezone.now()
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation_id)
        since = _since(organisation, now)
        invoices = list(
            Invoice.objects.filter(
                organisation=organisation, sync_state__in=ATTENTION, updated_at__gt=since, updated_at__lte=now
            )
            .select_related("batch", "customer")
            .order_by("batch_id", "number")
        )
        organisation.failure_digest_until = now
        organisation.save(update_fields=["failure_digest_until"])
        if not invoices:
            return 0
        recipients = list(
            Membership.objects.filter(
                organisation=organisation, role=Membership.Role.ADMIN, failure_emails=True, user__is_active=True
            )
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
        if recipients:
            subject, body = _digest(organisation, invoices)
            send_mail(subject, body, None, recipients)
        organisation_audit_record(
            organisation=organisation,
            action="failure_digest_sent",
            detail={"invoices": len(invoices), "recipients": len(recipients)},
        )
    logger.info(
        "invoices.failure_digest.sent",
        extra={
            "event": "invoices.failure_digest.sent",
            "organisation_id": organisation_id,
            "invoices": len(invoices),
            "recipients": len(recipients),
        },
    )
    return len(invoices)


def _digest(organisation: Organisation, invoices: list[Invoice]) -> tuple[str, str]:
    failed = sum(1 for i in invoices if i.sync_state == Invoice.SyncState.FAILED)
    attention = len(invoices) - failed
    parts = [f"{failed} failed" if failed else "", f"{attention} need attention" if attention else ""]
    summary = " and ".join(p for p in parts if p)
    subject = f"{organisation.name}: {len(invoices)} invoice{'s' if len(invoices) != 1 else ''} {summary_verb(parts)}"
    site = settings.SITE_URL.rstrip("/")
    lines = [
        f"Since the last email, {summary} in {organisation.name}:",
        "",
    ]
    for invoice in invoices[:LISTED]:
        reason = "; ".join(str(e) for e in (invoice.sync_errors or []))[:200]
        state = "Failed" if invoice.sync_state == Invoice.SyncState.FAILED else "Needs attention"
        lines.append(f"- {invoice.number} ({invoice.customer.name}), batch “{invoice.batch.name}”: {state}")
        if reason:
            lines.append(f"  Xero said: {reason}")
        lines.append(f"  {site}{reverse('invoices:batch_detail', args=[invoice.batch_id])}?state=failed")
    if len(invoices) > LISTED:
        lines.append(f"... and {len(invoices) - LISTED} more.")
    lines += [
        "",
        "Failed: Xero refused the invoice; fix what it said, then Retry on the batch page. Needs attention: we could "
        "not confirm what Xero did; check the invoice in Xero first.",
        "",
        f"All failed invoices: {site}{reverse('invoices:batch_list')}?state=failed",
        f"Stop these emails: Settings > Emails about failed invoices, {site}{reverse('organisations:settings')}",
    ]
    return subject, "\n".join(lines) + "\n"


def summary_verb(parts: list[str]) -> str:
    failed, attention = parts
    if failed and attention:
        return "failed or need attention"
    return "failed" if failed else "need attention"
