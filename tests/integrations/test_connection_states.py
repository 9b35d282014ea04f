"""integrations/connections/states.py: XeroConnection.status moves only as its table allows, the table is the one in
docs/architecture.md, and no product code writes the status except through `connection_move`."""

import ast
import re
from pathlib import Path

import pytest

from integrations.connections import states
from integrations.connections.states import IllegalConnectionMove, connection_move
from integrations.models import XeroConnection
from tests.factories import make_connection

ROOT = Path(__file__).resolve().parents[2]
STATES = ROOT / "integrations" / "connections" / "states.py"
S = XeroConnection.Status


# ---------------------------------------------------------------- the table against the docs


def documented_moves(text: str) -> set[tuple[str, str]]:
    """The `| from | to | when |` rows of the XeroConnection.status table in the "State machines" section."""
    section = text.split("\n## State machines\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("- XeroConnection.status", 1)[1].split("\n- ", 1)[0]
    moves = set()
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        is_row = line.strip().startswith("|") and len(cells) == 3 and re.fullmatch(r"[a-z_]+", cells[0])
        if is_row and cells[0] != "from":
            moves.add((cells[0], cells[1]))
    return moves


def test_documented_table_is_the_python_table_when_architecture_md_is_parsed():
    sample = "\n## State machines\n- XeroConnection.status: x\n\n  | from | to | when |\n  | --- | --- | --- |\n"
    assert documented_moves(sample + "  | active | disconnected | y |\n- Other\n") == {("active", "disconnected")}
    documented = documented_moves((ROOT / "docs" / "architecture.md").read_text())
    in_code = {(start, end) for start, ends in states.TRANSITIONS.items() for end in ends}
    assert documented == in_code
    assert set(states.TRANSITIONS) == set(S.values)  # every status has its row, final or not


# ---------------------------------------------------------------- the one writer


def status_writes(source: str) -> list[int]:
    """Lines that write a `status`: an assignment to `<x>.status`, `setattr(<x>, "status", ...)`, a queryset
    `update(status=...)` (or `update_or_create` / `get_or_create` with it), or a save whose update_fields name it."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(element, ast.Attribute) and element.attr == "status":
                    lines.append(node.lineno)
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "setattr" and len(node.args) > 1 and getattr(node.args[1], "value", None) == "status":
            lines.append(node.lineno)
        if name in ("update", "update_or_create", "get_or_create") and any(k.arg == "status" for k in node.keywords):
            lines.append(node.lineno)
        for keyword in node.keywords:
            if keyword.arg in ("update_fields", "defaults") and "'status'" in ast.unparse(keyword.value):
                lines.append(node.lineno)
    return lines


def product_files_about_connections() -> list[Path]:
    # bench/ stages outages by hand (it is never product code); tests make their own rows.
    skipped = {".venv", "tests", "node_modules", ".git", "migrations", "bench", "xero_sandbox"}
    return [
        path
        for path in ROOT.rglob("*.py")
        if not skipped.intersection(path.relative_to(ROOT).parts)
        and path != STATES
        and re.search(r"XeroConnection|xero_connection", path.read_text())
    ]


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
    offenders = {str(path.relative_to(ROOT)): lines for path in files if (lines := status_writes(path.read_text()))}
    assert offenders == {}, "write XeroConnection.status through integrations.connections.states.connection_move"


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
