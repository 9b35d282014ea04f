"""The new-batch form's words for each Type of document, so a credit note's card never reads as an invoice: its
heading, its number's label, and the statuses it can be created in as Xero names them for a credit note (Xero's
CreditNote Status: DRAFT, SUBMITTED, AUTHORISED; https://developer.xero.com/documentation/api/accounting/types#credit-notes).
The same words go to static/js/app.js (`kind_words_json`), which relabels a card when its Type changes."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass

from django import template
from django.forms import BoundField, Form
from django.utils.html import format_html
from django.utils.safestring import SafeString

from invoices.models import CreditNote
from invoices.services.batches.inputs import CREATABLE_STATUSES, KIND_CREDIT_NOTE, KIND_INVOICE

register = template.Library()


@dataclass(frozen=True)
class KindWords:
    title: str  # the card's heading: "Invoice 2", "Credit note 2"
    date: str  # the issue date's label (a credit note has one date; its fix page calls it "Date" too)
    allocate: str  # the allocation field's label (the field only means something for a credit note)
    statuses: dict[str, str]  # the "Status in Xero" options: value -> what Xero calls it for this kind

    @property
    def noun(self) -> str:  # in sentences: "Lines of credit note 2"
        return self.title.lower()

    @property
    def number(self) -> str:  # the number field's label: "Credit note number"
        return f"{self.title} number"

    def as_dict(self) -> dict:
        return {**asdict(self), "noun": self.noun, "number": self.number}


KIND_WORDS = {
    KIND_INVOICE: KindWords(
        "Invoice", "Issue date", "Allocate to invoice (credit notes only)", {s: s.label for s in CREATABLE_STATUSES}
    ),
    # Sent as CreditNoteNumber, without a DueDate (invoices/mappers.credit_note_to_xero_payload): no due date here.
    KIND_CREDIT_NOTE: KindWords(
        "Credit note", "Date", "Allocate to invoice", {s: CreditNote.Status(s).label for s in CREATABLE_STATUSES}
    ),
}


def kind_of(form: Form) -> str:
    value = form["kind"].value()
    return value if value in KIND_WORDS else KIND_INVOICE


@register.filter
def kind_words(form: Form) -> KindWords:
    """The words for the Type the form's document has now (bound: as posted; unbound: an invoice)."""
    return KIND_WORDS[kind_of(form)]


@register.filter
def is_credit_note(form: Form) -> bool:
    return kind_of(form) == KIND_CREDIT_NOTE


@register.filter
def status_select(field: BoundField) -> SafeString:
    """The status select with its options named for the form's Type; values (and so the POST) unchanged."""
    words = KIND_WORDS[kind_of(field.form)]
    widget = copy.deepcopy(field.field.widget)
    widget.choices = [(value, words.statuses.get(value, label)) for value, label in widget.choices]
    return field.as_widget(widget=widget)


@register.simple_tag
def kind_words_json() -> SafeString:
    """The words as a data attribute on an empty element: a data block, not a <script> (the CSP allows no inline
    script, and the security tests hold every page to that)."""
    words = json.dumps({kind: words.as_dict() for kind, words in KIND_WORDS.items()})
    return format_html('<div id="kind-words" hidden data-kind-words="{}"></div>', words)
