"""invoices/sync_states.py: Invoice.sync_state and CreditNote.sync_state move only as their tables allow, the tables are
the ones in docs/architecture.md, and no product code writes either state except through that module."""

import pytest

from invoices import sync_states
from invoices.models import CreditNote, Invoice
from invoices.sync_states import (
    REMOVED,
    IllegalSyncMove,
    sync_state_begin,
    sync_state_move,
    sync_state_remove,
    sync_state_seed,
    sync_state_update,
    sync_state_update_ids,
)
from tests.factories import make_batch
from tests.state_machines import ROOT, as_table, documented_table, field_writes, offenders, product_files

S = Invoice.SyncState
MODULE = ROOT / "invoices" / "sync_states.py"

# ---------------------------------------------------------------- the tables against the docs


def _with_removed(moves, cancellable) -> dict[str, set[str]]:
    table = as_table(moves)
    for state in cancellable:
        table[state].add(REMOVED)
    return table


def test_documented_table_parses_comma_lists_and_final_rows_when_given_a_sample():
    sample = (
        "\n## State machines\n- Thing.state: x\n\n  | from | to |\n  |---|---|\n"
        "  | a | b, c |\n  | b | a | later |\n  | c | (final) |\n- Other\n\n  | from | to |\n  | x | y |\n\n## Next\n"
    )
    assert documented_table("Thing.state", sample) == {"a": {"b", "c"}, "b": {"a"}, "c": set()}


def test_invoice_table_is_the_one_docs_architecture_shows():
    documented = documented_table("Invoice.sync_state")
    assert documented == _with_removed(sync_states.INVOICE_MOVES, sync_states.INVOICE_CANCELLABLE)
    assert set(sync_states.INVOICE_MOVES) == set(S.values) == sync_states.INVOICE_STATES  # every state has its row


def test_credit_note_table_is_the_one_docs_architecture_shows():
    documented = documented_table("CreditNote.sync_state")
    assert documented == _with_removed(sync_states.CREDIT_NOTE_MOVES, sync_states.CREDIT_NOTE_CANCELLABLE)
    assert set(sync_states.CREDIT_NOTE_MOVES) == sync_states.CREDIT_NOTE_STATES


def test_tables_only_name_known_states_and_start_where_creation_does():
    for moves, states in (
        (sync_states.INVOICE_MOVES, sync_states.INVOICE_STATES),
        (sync_states.CREDIT_NOTE_MOVES, sync_states.CREDIT_NOTE_STATES),
    ):
        assert all(ends <= states for ends in moves.values())
        assert states >= sync_states.START
    assert {sync_state_begin(eligible=True), sync_state_begin(eligible=False)} == sync_states.START
    # A credit note in need of attention can be sent again by support ("Sending").
    assert S.IN_FLIGHT in sync_states.CREDIT_NOTE_MOVES[S.NEEDS_ATTENTION]


# ---------------------------------------------------------------- the moves themselves


def test_sync_state_move_refuses_a_move_when_the_table_lacks_it():
    invoice = Invoice(sync_state=S.SYNCED)
    with pytest.raises(IllegalSyncMove):
        sync_state_move(invoice, S.PENDING)
    assert invoice.sync_state == S.SYNCED
    sync_state_move(invoice, S.SYNCED)  # the state it already has: no move
    invoice = Invoice(sync_state=S.NOT_SYNCED)
    with pytest.raises(IllegalSyncMove):
        sync_state_move(invoice, S.IN_FLIGHT)  # never sent without a person sending the batch
    sync_state_move(invoice, S.PENDING)
    assert invoice.sync_state == S.PENDING


def test_credit_note_moves_use_the_credit_note_table_when_it_differs_from_the_invoice_one():
    note = CreditNote(sync_state=S.IN_FLIGHT)
    with pytest.raises(IllegalSyncMove):
        sync_state_move(note, S.WARNING)
    with pytest.raises(IllegalSyncMove):
        sync_state_move(CreditNote(sync_state=S.IN_FLIGHT), S.PENDING)  # an invoice may; its operation waits instead
    note = CreditNote(sync_state=S.NEEDS_ATTENTION)
    sync_state_move(note, S.IN_FLIGHT)
    assert note.sync_state == S.IN_FLIGHT
    with pytest.raises(IllegalSyncMove):
        sync_state_move(Invoice(sync_state=S.NEEDS_ATTENTION), S.FAILED)  # an invoice goes back to pending (or flight)


def test_sync_state_remove_refuses_a_cancel_when_the_document_is_in_xero_or_being_sent():
    for state in (S.SYNCED, S.WARNING, S.IN_FLIGHT):
        with pytest.raises(IllegalSyncMove):
            sync_state_remove(Invoice(sync_state=state))
    for state in sync_states.INVOICE_CANCELLABLE:
        sync_state_remove(Invoice(sync_state=state))
    with pytest.raises(IllegalSyncMove):
        sync_state_remove(CreditNote(sync_state=S.SYNCED))


def test_sync_state_seed_refuses_a_state_when_it_is_not_one():
    assert sync_state_seed(S.WARNING) == S.WARNING
    with pytest.raises(IllegalSyncMove):
        sync_state_seed("sent")


@pytest.mark.django_db
def test_sync_state_update_moves_only_rows_in_the_from_states_when_given_a_mixed_queryset(org_a):
    batch = make_batch(organisation=org_a, invoices=3)
    first, second, third = batch.invoices.order_by("pk")
    Invoice.objects.filter(pk=second.pk).update(sync_state=S.SYNCED)
    moved = sync_state_update(batch.invoices.all(), [S.NOT_SYNCED], S.PENDING, sync_errors=[])
    assert moved == 2
    assert dict(batch.invoices.values_list("pk", "sync_state")) == {
        first.pk: S.PENDING,
        second.pk: S.SYNCED,
        third.pk: S.PENDING,
    }
    with pytest.raises(IllegalSyncMove):
        sync_state_update(batch.invoices.all(), [S.PENDING, S.SYNCED], S.IN_FLIGHT)  # synced -> in_flight is not
    assert batch.invoices.filter(sync_state=S.IN_FLIGHT).count() == 0


@pytest.mark.django_db
def test_sync_state_update_ids_moves_only_the_named_rows_in_the_from_states_and_refuses_a_move_the_table_lacks(org_a):
    batch = make_batch(organisation=org_a, invoices=3)
    first, second, third = batch.invoices.order_by("pk")
    Invoice.objects.filter(pk=second.pk).update(sync_state=S.SYNCED)
    moved = sync_state_update_ids(Invoice, [first.pk, second.pk], [S.NOT_SYNCED], S.PENDING, sync_errors=["x"])
    assert moved == 1
    assert dict(batch.invoices.values_list("pk", "sync_state")) == {
        first.pk: S.PENDING,
        second.pk: S.SYNCED,
        third.pk: S.NOT_SYNCED,
    }
    assert Invoice.objects.get(pk=first.pk).sync_errors == ["x"]
    with pytest.raises(IllegalSyncMove):
        sync_state_update_ids(Invoice, [second.pk], [S.SYNCED], S.IN_FLIGHT)  # synced -> in_flight is not
    assert batch.invoices.filter(sync_state=S.IN_FLIGHT).count() == 0


# ---------------------------------------------------------------- the one writer

WRITE_RULES = {
    # Creating a row writes its state too: only through sync_state_begin (or sync_state_seed in the seeds). `add` is
    # seed_scale's CopyWriter. A CancelledInvoice keeps where a removed invoice stood: a record, not this machine.
    "calls": ("update", "update_or_create", "get_or_create", "create", "add", "Invoice", "CreditNote"),
    "through": ("sync_state_begin", "sync_state_seed"),
    "exempt": ("CancelledInvoice",),
}


def test_no_product_code_writes_a_sync_state_when_outside_the_sync_states_module():
    examples = (
        "invoice.sync_state = 'pending'\n"
        "note.sync_state, note.sync_errors = S.FAILED, []\n"
        "Invoice.objects.filter(pk=1).update(sync_state=S.PENDING)\n"
        "setattr(invoice, 'sync_state', 'x')\n"
        "Invoice(number='1', sync_state=S.PENDING)\n"
        "writer.add(id=1, sync_state=state)\n"
        "Invoice(number='1', sync_state=sync_state_begin(eligible=True))\n"
        "CancelledInvoice.objects.create(sync_state=invoice.sync_state)\n"
        "Invoice.objects.filter(sync_state=S.PENDING).count()\n"
        "Invoice.objects.bulk_update(invoices, ['sync_state'])\n"
    )
    assert field_writes(examples, "sync_state", **WRITE_RULES) == [1, 2, 3, 4, 5, 6]  # the scan can fail
    files = product_files(r"sync_state", besides=MODULE)
    for path in ("push/record.py", "push/dispatch.py", "push/contacts.py", "push/retry.py", "batch_send.py"):
        assert ROOT / "invoices" / "services" / path in files
    assert ROOT / "invoices" / "seeding" / "batches.py" in files
    found = offenders(files, "sync_state", **WRITE_RULES)
    assert found == {}, "write Invoice.sync_state and CreditNote.sync_state through invoices/sync_states.py"


def test_a_row_read_as_values_moves_by_its_models_table_when_it_names_one():
    """The push records a chunk's invoices read as values (`Carried`), not model instances: the same table holds."""
    from invoices.services.push.outcomes import Carried

    row = Carried(1, 1, "INV-1", S.IN_FLIGHT, [])
    sync_state_move(row, S.SYNCED)
    assert row.sync_state == S.SYNCED
    with pytest.raises(IllegalSyncMove):
        sync_state_move(row, S.PENDING)  # synced is final
