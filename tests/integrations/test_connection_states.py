"""integrations/connections/states.py: XeroConnection.status moves only as its table allows, the table is the one in
docs/architecture.md, and no product code writes the status except through `connection_move`."""

import re
from pathlib import Path

import pytest

from integrations.connections import states
from integrations.connections.states import IllegalConnectionMove, connection_move
from integrations.models import XeroConnection
from tests.factories import make_connection
from tests.state_machines import ROOT, as_table, documented_table, field_writes, offenders, product_files

STATES = ROOT / "integrations" / "connections" / "states.py"
S = XeroConnection.Status


# ---------------------------------------------------------------- the table against the docs


def test_documented_table_is_the_python_table_when_architecture_md_is_parsed():
    sample = "\n## State machines\n- XeroConnection.status: x\n\n  | from | to | when |\n  | --- | --- | --- |\n"
    sample += "  | active | disconnected | y |\n- Other\n"
    assert documented_table("XeroConnection.status", sample) == {"active": {"disconnected"}}
    assert documented_table("XeroConnection.status") == as_table(states.TRANSITIONS)
    assert set(states.TRANSITIONS) == set(S.values)  # every status has its row, final or not


# ---------------------------------------------------------------- the one writer


def status_writes(source: str) -> list[int]:
    return field_writes(source, "status", fields_lists=True)


def product_files_about_connections() -> list[Path]:
    return product_files(r"XeroConnection|xero_connection", besides=STATES)


def test_no_product_code_writes_the_connection_status_when_outside_the_states_module():
    examples = (
        "c.status = 'active'\n"
        "XeroConnection.objects.filter(pk=1).update(status='disconnected')\n"
        "setattr(c, 'status', 'x')\n"
        "c.save(update_fields=['status', 'updated_at'])\n"
        "c.status_changed_at = now\n"
    )
    assert status_writes(examples) == [1, 2, 3, 4]  # the scan can fail
    files = product_files_about_connections()
    assert ROOT / "integrations" / "services" / "connection.py" in files
    assert ROOT / "integrations" / "xero" / "tokens.py" in files
    found = offenders(files, "status", fields_lists=True)
    assert found == {}, "write XeroConnection.status through integrations.connections.states.connection_move"


# ---------------------------------------------------------------- the move itself


@pytest.mark.django_db
def test_connection_move_refuses_a_move_when_the_table_lacks_it(org_a):
    connection = make_connection(organisation=org_a, status=S.DISCONNECTED)
    with pytest.raises(IllegalConnectionMove):
        connection_move(connection, S.NEEDS_RECONNECT)
    with pytest.raises(IllegalConnectionMove):
        connection_move(connection, S.REVOKED_IN_XERO)
    assert connection.status == S.DISCONNECTED
    assert connection_move(connection, S.ACTIVE) == ["status", "status_changed_at"]
    assert connection.status == S.ACTIVE and connection.status_changed_at is not None


@pytest.mark.django_db
def test_connection_move_refuses_to_disconnect_when_never_connected(org_a):
    connection = make_connection(organisation=org_a, status=S.NOT_CONNECTED)
    with pytest.raises(IllegalConnectionMove):
        connection_move(connection, S.DISCONNECTED)


# ---------------------------------------------------------------- "is this connection usable?": one rule


@pytest.mark.django_db
def test_usable_queryset_and_is_usable_agree_when_every_status_step_and_tenant_is_tried(org_a):
    connection = make_connection(organisation=org_a)
    seen = set()
    for status in S.values:
        for step in XeroConnection.DisconnectStep.values:
            for tenant_id in ("", "70784a63-d24b-46a9-a4db-0e70a274b056"):
                XeroConnection.objects.filter(pk=connection.pk).update(
                    status=status, disconnect_step=step, tenant_id=tenant_id
                )
                row = XeroConnection.objects.get(pk=connection.pk)
                in_sql = XeroConnection.objects.usable().filter(pk=connection.pk).exists()
                assert row.is_usable == in_sql, (status, step, tenant_id)
                seen.add(in_sql)
    assert seen == {True, False}
    XeroConnection.objects.filter(pk=connection.pk).update(status=S.ACTIVE, disconnect_step="", tenant_id="t")
    assert list(XeroConnection.objects.usable()) == [connection]


ACTIVE_RULE = re.compile(
    r"status\s*(==|!=|=)\s*(XeroConnection\.Status|S)\.ACTIVE|__status=XeroConnection\.Status\.ACTIVE"
)


def test_no_product_code_repeats_the_usable_rule_when_outside_the_model():
    assert ACTIVE_RULE.search('filter(status=XeroConnection.Status.ACTIVE, disconnect_step="")')  # it can fail
    allowed = {
        "integrations/models.py",  # the rule itself
        "integrations/banners.py",  # support's reconnect request shows only on a working connection: display
    }
    offenders = {
        str(path.relative_to(ROOT)): [
            n for n, line in enumerate(path.read_text().splitlines(), 1) if ACTIVE_RULE.search(line)
        ]
        for path in product_files_about_connections()
    }
    offenders = {path: lines for path, lines in offenders.items() if lines and path not in allowed}
    assert offenders == {}, "use XeroConnection.objects.usable() or connection.is_usable"
