"""What a confirmed switch to another Xero organisation means for invoices.

Customers' ContactIDs belong to the old organisation: kept, every new invoice for them would name a contact the new
organisation does not have and fail, retry included. They are forgotten, and the next push matches each customer
again in the new organisation (by ContactNumber, then Name) or creates it. Invoices already in Xero keep the
organisation they were created in (`Invoice.xero_tenant_id` / `xero_short_code`), so their links still open there.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from invoices.created_in_xero.models import XeroContactVersion
from invoices.models import Customer

logger = logging.getLogger(__name__)


@transaction.atomic
def customers_forget_xero_contacts(*, organisation_id: int) -> int:
    """Clear every customer's ContactID (and the contact versions seen in the old organisation). Returns how many."""
    cleared = (
        Customer.objects.filter(organisation_id=organisation_id)
        .exclude(xero_contact_id="")
        .update(xero_contact_id="", updated_at=timezone.now())
    )
    XeroContactVersion.objects.filter(organisation_id=organisation_id).delete()
    logger.info(
        "invoices.tenant_switched.contacts_forgotten",
        extra={
            "event": "invoices.tenant_switched.contacts_forgotten",
            "organisation_id": organisation_id,
            "customers": cleared,
        },
    )
    return cleared
