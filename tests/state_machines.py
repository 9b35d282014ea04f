"""What the state-machine tests share: the tables of docs/architecture.md's "State machines" section, read as data,
and a scan of product code for writes of a state field that do not go through its module.

Each machine's bullet in that section holds a Markdown table whose first two columns are `from` and `to`: one row per
move (`| active | disconnected | when ... |`), or one row per state with its targets separated by commas
(`| sending | pending, done |`); `(final)` in `to` says the state has no move out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
FINAL = "(final)"
# Not product code: bench/ stages outages by hand, tests make their own rows, the sandbox is Xero's side.
NOT_PRODUCT = {".venv", "tests", "node_modules", ".git", "migrations", "bench", "xero_sandbox"}


def documented_table(bullet: str, text: str | None = None) -> dict[str, set[str]]:
    """The moves of the table under the "State machines" bullet that starts with `bullet`, as {from: {to, ...}}."""
    text = ARCHITECTURE.read_text() if text is None else text
    section = text.split("\n## State machines\n", 1)[1].split("\n## ", 1)[0]
    block = ("\n" + section).split(f"\n- {bullet}", 1)[1].split("\n- ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in block.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] == "from" or not re.fullmatch(r"[a-z_]+", cells[0]):
            continue
        targets = table.setdefault(cells[0], set())
        if cells[1] != FINAL:
            targets.update(target.strip() for target in cells[1].split(","))
    return table


def as_table(moves: dict[str, Iterable[str]]) -> dict[str, set[str]]:
    return {start: set(ends) for start, ends in moves.items()}


def field_writes(
    source: str,
    field: str,
    *,
    calls: Iterable[str] = ("update", "update_or_create", "get_or_create"),
    through: Iterable[str] = (),
    exempt: Iterable[str] = (),
    fields_lists: bool = False,
) -> list[int]:
    """Lines that write `field`: an assignment to `<x>.<field>`, `setattr(<x>, "<field>", ...)`, or a call named in
    `calls` given `<field>=...` (unless its value is a call of a function in `through`, or the call's receiver starts
    with a name in `exempt`). With `fields_lists`, also a save's `update_fields` or a `defaults` naming it."""
    calls, through, exempt = set(calls), set(through), tuple(exempt)
    quoted = f"'{field}'"
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(element, ast.Attribute) and element.attr == field:
                    lines.append(node.lineno)
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "setattr" and len(node.args) > 1 and getattr(node.args[1], "value", None) == field:
            lines.append(node.lineno)
        if name in calls and not ast.unparse(node.func).startswith(exempt):
            for keyword in node.keywords:
                value = keyword.value
                routed = isinstance(value, ast.Call) and getattr(value.func, "id", "") in through
                if keyword.arg == field and not routed:
                    lines.append(node.lineno)
        if fields_lists:
            for keyword in node.keywords:
                if keyword.arg in ("update_fields", "defaults") and quoted in ast.unparse(keyword.value):
                    lines.append(node.lineno)
    return lines


def product_files(mentioning: str, *, besides: Path) -> list[Path]:
    """Product modules whose text matches the regex `mentioning`, except the state machine's own module."""
    return [
        path
        for path in ROOT.rglob("*.py")
        if not NOT_PRODUCT.intersection(path.relative_to(ROOT).parts)
        and path != besides
        and re.search(mentioning, path.read_text())
    ]


def offenders(files: Iterable[Path], field: str, **rules) -> dict[str, list[int]]:
    return {
        str(path.relative_to(ROOT)): lines
        for path in files
        if (lines := field_writes(path.read_text(), field, **rules))
    }
