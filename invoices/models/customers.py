"""Customers (Xero contacts) and the one canonical form of a customer's name."""

import unicodedata

from django.db import models

from organisations.models import Organisation


def customer_name_key(name: str) -> str:
    """The one canonical form of a customer's name, for matching: NFKC, casefolded, spaces collapsed.

    Computed in Python only, never by the database's lower(), which disagrees with Python's on İ, final Σ and ß
    (and on SQLite lowers ASCII only). "Straße GmbH" and "STRASSE GMBH" share a key; so do "ΑΛΦΑ ΟΔΟΣ" and "αλφα οδος".
    """
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


class Customer(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="customers")
    name = models.CharField(max_length=255, help_text="Becomes the Xero contact's Name (unique in Xero).")
    name_key = models.CharField(
        max_length=1024,
        editable=False,
        help_text="customer_name_key(name): how names are matched, unique per organisation. Set on save.",
    )
    email = models.EmailField(blank=True)
    xero_contact_id = models.CharField(max_length=36, blank=True, help_text="Xero ContactID once matched.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name_key"], name="customer_name_key_unique_per_org"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.name_key = customer_name_key(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields and "name_key" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "name_key"]
        super().save(*args, **kwargs)

    @property
    def contact_number(self) -> str:
        """Our customer id as Xero's ContactNumber (max 50 characters, writable only through the API)."""
        return f"COORD-{self.pk}"
