"""The invoice status vocabulary: one word for what is true of an invoice, in Coordinoter and in Xero.

`invoice_status` decides it from the invoice's sync state, its status as Xero last reported it, its amounts and its
due date; `status_q` is the same decision as a database filter, for counts (the dashboard, the batch list and the
batch progress). Credit notes have their own words once in Xero (`credit_note_status`) in the same groups, and
`credit_note_group_q` is their filter, built from the same code as the invoices' (`Words`). Tests hold each pair
together. Pure: no model import, no I/O.

    sync state      Xero status (xero_status, else the status we created it with)     -> status
    not_synced                                                                         -> Not synced
    pending                                                                            -> Waiting
    in_flight                                                                          -> Sending
    needs_attention (the outbound engine could not confirm what Xero did)              -> Needs attention
    failed                                                                             -> Failed
    synced|warning  DELETED                                                            -> Deleted
                    VOIDED                                                             -> Voided
                    PAID                                                               -> Paid
                    DRAFT | SUBMITTED                                                  -> Draft in Xero
                    AUTHORISED, amount due and past the due date                       -> Overdue
                    AUTHORISED, part paid                                              -> Part paid
                    AUTHORISED (or anything else Xero reports)                         -> Awaiting payment
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, StrEnum

from django.db.models import Q


class Group(StrEnum):
    """What a status counts as in progress and totals: in Xero (live), voided or deleted there, failed, on its way,
    or never sent."""

    IN_XERO = "in_xero"
    REMOVED = "removed"
    FAILED = "failed"
    WAITING = "waiting"
    NOT_SYNCED = "not_synced"


@dataclass(frozen=True)
class StatusInfo:
    key: str
    label: str
    group: Group
    help: str

    @property
    def badge(self) -> str:
        """The CSS class of its badge (static/css/app.css)."""
        return f"badge badge-{self.key.replace('_', '-')}"

    def __str__(self) -> str:
        return self.label


class StatusMembers:
    """What every status of the vocabulary reads through (invoices and credit notes): its StatusInfo's fields."""

    value: StatusInfo

    @property
    def info(self) -> StatusInfo:
        return self.value

    @property
    def key(self) -> str:
        return self.value.key

    @property
    def label(self) -> str:
        return self.value.label

    @property
    def group(self) -> Group:
        return self.value.group

    @property
    def badge(self) -> str:
        return self.value.badge

    @property
    def help(self) -> str:
        return self.value.help

    def __str__(self) -> str:
        return self.value.label


class InvoiceStatus(StatusMembers, Enum):
    NOT_SYNCED = StatusInfo("not_synced", "Not synced", Group.NOT_SYNCED, "Kept in Coordinoter only; not sent to Xero.")
    WAITING = StatusInfo("waiting", "Waiting", Group.WAITING, "Waiting to be sent to Xero.")
    SENDING = StatusInfo("sending", "Sending", Group.WAITING, "Being sent to Xero now.")
    # A person must look (nothing more is sent by itself): counted with the failures, which share the Retry.
    NEEDS_ATTENTION = StatusInfo(
        "needs_attention", "Needs attention", Group.FAILED, "We could not confirm what Xero did with it: check Xero."
    )
    FAILED = StatusInfo("failed", "Failed", Group.FAILED, "Xero refused it: see why below.")
    DRAFT = StatusInfo("draft", "Draft in Xero", Group.IN_XERO, "In Xero as a draft (or awaiting approval).")
    AWAITING_PAYMENT = StatusInfo("awaiting_payment", "Awaiting payment", Group.IN_XERO, "Approved in Xero, unpaid.")
    PART_PAID = StatusInfo("part_paid", "Part paid", Group.IN_XERO, "Xero has a payment for part of it.")
    PAID = StatusInfo("paid", "Paid", Group.IN_XERO, "Paid in full in Xero.")
    OVERDUE = StatusInfo("overdue", "Overdue", Group.IN_XERO, "Past its due date with an amount still due.")
    VOIDED = StatusInfo("voided", "Voided", Group.REMOVED, "Voided in Xero: nothing is owed on it.")
    DELETED = StatusInfo("deleted", "Deleted", Group.REMOVED, "Deleted in Xero.")


S = InvoiceStatus
BY_SYNC_STATE = {
    "not_synced": S.NOT_SYNCED,
    "pending": S.WAITING,
    "in_flight": S.SENDING,
    "needs_attention": S.NEEDS_ATTENTION,
    "failed": S.FAILED,
}
IN_XERO_SYNC_STATES = ("synced", "warning")
BY_XERO_STATUS = {"DELETED": S.DELETED, "VOIDED": S.VOIDED, "PAID": S.PAID, "DRAFT": S.DRAFT, "SUBMITTED": S.DRAFT}
ZERO = Decimal("0")


def invoice_status(
    *,
    sync_state: str,
    xero_status: str,
    status: str,
    amount_due: Decimal,
    amount_paid: Decimal,
    due_date: dt.date | None,
    today: dt.date,
) -> InvoiceStatus:
    if sync_state not in IN_XERO_SYNC_STATES:
        return BY_SYNC_STATE.get(sync_state, S.NEEDS_ATTENTION)
    in_xero = xero_status or status
    if in_xero in BY_XERO_STATUS:
        return BY_XERO_STATUS[in_xero]
    if in_xero == "AUTHORISED" and amount_due > ZERO:
        if due_date is not None and due_date < today:
            return S.OVERDUE
        if amount_paid > ZERO:
            return S.PART_PAID
    return S.AWAITING_PAYMENT


def status_of(invoice, *, today: dt.date) -> InvoiceStatus:
    """`invoice_status` of an Invoice (read by attribute)."""
    return invoice_status(
        sync_state=invoice.sync_state,
        xero_status=invoice.xero_status,
        status=invoice.status,
        amount_due=invoice.amount_due,
        amount_paid=invoice.amount_paid,
        due_date=invoice.due_date,
        today=today,
    )


# ---------------------------------------------------------------- the same decision as database filters


def _xero_is(*statuses: str) -> Q:
    return Q(xero_status__in=statuses) | Q(xero_status="", status__in=statuses)


def _overdue(today: dt.date) -> Q:
    return _xero_is("AUTHORISED") & Q(amount_due__gt=0, due_date__lt=today)


def _part_paid(today: dt.date) -> Q:
    return _xero_is("AUTHORISED") & Q(amount_due__gt=0, amount_paid__gt=0) & ~Q(due_date__lt=today)


def status_q(status: InvoiceStatus, *, today: dt.date, prefix: str = "") -> Q:
    """Invoices whose `invoice_status` is `status`, as a filter (prefix: e.g. "invoices__" from a batch)."""
    q = _status_q(INVOICE_WORDS, status, today)
    return _prefixed(q, prefix) if prefix else q


def group_q(group: Group, *, today: dt.date, prefix: str = "") -> Q:
    """Invoices whose status counts in `group`, as a filter (prefix as for `status_q`)."""
    return _group_q(INVOICE_WORDS, group, today=today, prefix=prefix)


@dataclass(frozen=True)
class Words:
    """How one document kind's statuses are decided, for the database filters: by sync state, by the status in Xero,
    by amounts and dates (`decided`, each a filter of today), else `otherwise` (in Xero and none of the above)."""

    statuses: type[Enum]
    by_sync_state: dict
    by_xero_status: dict
    otherwise: Enum
    decided: dict = field(default_factory=dict)


def _group_q(words: Words, group: Group, *, today: dt.date, prefix: str = "") -> Q:
    members = [_status_q(words, status, today) for status in words.statuses if status.group == group]
    q = members[0]
    for member in members[1:]:
        q |= member
    return _prefixed(q, prefix) if prefix else q


def _status_q(words: Words, status, today: dt.date) -> Q:
    for sync_state, mapped in words.by_sync_state.items():
        if mapped is status:
            if sync_state == "needs_attention":
                known = [*words.by_sync_state, *IN_XERO_SYNC_STATES]
                return Q(sync_state=sync_state) | ~Q(sync_state__in=known)
            return Q(sync_state=sync_state)
    in_xero = Q(sync_state__in=IN_XERO_SYNC_STATES)
    named = [x for x, s in words.by_xero_status.items() if s is status]
    if named:
        return in_xero & _xero_is(*named)
    if status in words.decided:
        return in_xero & words.decided[status](today)
    assert status is words.otherwise, status
    q = in_xero & ~_xero_is(*words.by_xero_status)
    for decided in words.decided.values():
        q &= ~decided(today)
    return q


INVOICE_WORDS = Words(
    InvoiceStatus, BY_SYNC_STATE, BY_XERO_STATUS, S.AWAITING_PAYMENT, {S.OVERDUE: _overdue, S.PART_PAID: _part_paid}
)


def _prefixed(q: Q, prefix: str) -> Q:
    out = Q()
    out.connector, out.negated = q.connector, q.negated
    out.children = [_prefixed(c, prefix) if isinstance(c, Q) else (prefix + c[0], c[1]) for c in q.children]
    return out


# ---------------------------------------------------------------- credit notes


class CreditNoteStatus(StatusMembers, Enum):
    """A credit note's one word: the invoices' words while it travels or is removed, and its own once in Xero."""

    NOT_SYNCED = S.NOT_SYNCED.info
    WAITING = S.WAITING.info
    SENDING = S.SENDING.info
    NEEDS_ATTENTION = S.NEEDS_ATTENTION.info
    FAILED = S.FAILED.info
    DRAFT = S.DRAFT.info
    CREDIT_AVAILABLE = StatusInfo(
        "credit_available", "Credit available", Group.IN_XERO, "Approved in Xero, with credit left to allocate."
    )
    ALLOCATED = StatusInfo("allocated", "Fully allocated", Group.IN_XERO, "Its whole amount is allocated in Xero.")
    VOIDED = S.VOIDED.info
    DELETED = S.DELETED.info


CN = CreditNoteStatus
CREDIT_NOTE_BY_SYNC_STATE = {key: CN[status.name] for key, status in BY_SYNC_STATE.items()}
CREDIT_NOTE_BY_XERO_STATUS = {
    "DELETED": CN.DELETED,
    "VOIDED": CN.VOIDED,
    "PAID": CN.ALLOCATED,
    "DRAFT": CN.DRAFT,
    "SUBMITTED": CN.DRAFT,
}


def documents_in_words(invoices: int, credit_notes: int) -> str:
    """ "3 invoices", or "2 invoices and 1 credit note" (or "1 credit note" alone) when credit notes are counted."""
    words = [f"{invoices} invoice{'' if invoices == 1 else 's'}"] if invoices or not credit_notes else []
    if credit_notes:
        words.append(f"{credit_notes} credit note{'' if credit_notes == 1 else 's'}")
    return " and ".join(words)


def credit_note_status(*, sync_state: str, xero_status: str, status: str) -> CreditNoteStatus:
    """Not synced, Waiting, Sending, Needs attention, Failed; in Xero: Draft in Xero, Credit available (AUTHORISED),
    Fully allocated (PAID: Xero's word for a credit note with nothing left), Voided, Deleted."""
    if sync_state not in IN_XERO_SYNC_STATES:
        return CREDIT_NOTE_BY_SYNC_STATE.get(sync_state, CN.NEEDS_ATTENTION)
    return CREDIT_NOTE_BY_XERO_STATUS.get(xero_status or status, CN.CREDIT_AVAILABLE)


def credit_note_status_of(credit_note) -> CreditNoteStatus:
    return credit_note_status(
        sync_state=credit_note.sync_state, xero_status=credit_note.xero_status, status=credit_note.status
    )


CREDIT_NOTE_WORDS = Words(CreditNoteStatus, CREDIT_NOTE_BY_SYNC_STATE, CREDIT_NOTE_BY_XERO_STATUS, CN.CREDIT_AVAILABLE)


def credit_note_status_q(status: CreditNoteStatus, *, today: dt.date, prefix: str = "") -> Q:
    """Credit notes whose `credit_note_status` is `status`, as a filter (as `status_q` for invoices)."""
    q = _status_q(CREDIT_NOTE_WORDS, status, today)
    return _prefixed(q, prefix) if prefix else q


def credit_note_group_q(group: Group, *, today: dt.date, prefix: str = "") -> Q:
    """Credit notes whose `credit_note_status` counts in `group`, as a filter: the same groups as invoices', so a
    batch's progress, the batch list and the dashboard count both kinds in one vocabulary. `today` is unused (no
    credit-note status depends on a date) but kept so both kinds' filters are called alike."""
    return _group_q(CREDIT_NOTE_WORDS, group, today=today, prefix=prefix)
