"""Xero's ``where`` and ``order`` query parameters (a .NET-style expression subset).

Supported: ``Field == "x"``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``AND``/``&&``, ``OR``/``||``,
``NOT``/``!``, parentheses, dotted paths (``Contact.ContactID``), ``Guid("...")``,
``DateTime(2024, 01, 31)``, numbers, ``true``/``false``/``null``, and the string methods
``.Contains("x")``, ``.StartsWith("x")``, ``.EndsWith("x")``, ``.ToLower()``, ``.ToUpper()``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from .util import UTC


class QueryError(Exception):
    pass


TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|>=|<=|&&|\|\||[<>!(),.])'
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
_MS = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def tokenize(text: str) -> list:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"Unexpected character at position {pos}: {text[pos : pos + 10]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
    return tokens


class Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0):
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else (None, None)

    def take(self, value=None):
        token = self.peek()
        if token[0] is None or (value is not None and str(token[1]).upper() != value.upper()):
            raise QueryError(f"Expected {value or 'more input'} but found {token[1]!r}")
        self.i += 1
        return token

    def parse(self):
        node = self.parse_or()
        if self.peek()[0] is not None:
            raise QueryError(f"Unexpected {self.peek()[1]!r}")
        return node

    def parse_or(self):
        node = self.parse_and()
        while str(self.peek()[1]).upper() in ("OR", "||"):
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while str(self.peek()[1]).upper() in ("AND", "&&"):
            self.take()
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if str(self.peek()[1]).upper() in ("NOT", "!"):
            self.take()
            return ("not", self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self):
        if self.peek()[1] == "(":
            self.take("(")
            node = self.parse_or()
            self.take(")")
            return node
        left = self.parse_operand()
        if self.peek()[1] in ("==", "!=", ">", "<", ">=", "<="):
            op = self.take()[1]
            right = self.parse_operand()
            return ("cmp", op, left, right)
        return ("truthy", left)

    def parse_operand(self):
        kind, value = self.peek()
        if kind == "str":
            self.take()
            return ("lit", value)
        if kind == "num":
            self.take()
            return ("lit", Decimal(value))
        if kind != "name":
            raise QueryError(f"Unexpected {value!r}")
        upper = value.upper()
        if upper in ("TRUE", "FALSE"):
            self.take()
            return ("lit", upper == "TRUE")
        if upper == "NULL":
            self.take()
            return ("lit", None)
        if upper == "GUID" and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            text = self.take()[1]
            self.take(")")
            return ("lit", str(text).lower())
        if upper in ("DATETIME", "DATETIMEOFFSET") and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            parts = []
            while self.peek()[1] != ")":
                token = self.take()
                if token[0] == "num":
                    parts.append(int(token[1]))
                elif token[0] == "str":
                    parsed = dt.datetime.fromisoformat(token[1].replace("Z", "+00:00"))
                    parts = [parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second]
                if self.peek()[1] == ",":
                    self.take(",")
            self.take(")")
            try:
                return ("lit", dt.datetime(*parts[:6], tzinfo=UTC))
            except (TypeError, ValueError) as exc:
                raise QueryError(f"Invalid DateTime: {exc}") from exc
        path = [self.take()[1]]
        methods = []
        while self.peek()[1] == ".":
            self.take(".")
            name = self.take()[1]
            if self.peek()[1] == "(":
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.parse_operand()[1])
                    if self.peek()[1] == ",":
                        self.take(",")
                self.take(")")
                methods.append((name.lower(), args))
            elif methods:
                raise QueryError("Property access after a method call is not supported")
            else:
                path.append(name)
        return ("path", path, methods)


def resolve(doc: dict, path: list):
    value = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        lowered = {k.lower(): v for k, v in value.items()}
        value = lowered.get(part.lower())
    return value


def normalise(value):
    if isinstance(value, str):
        match = _MS.match(value)
        if match:
            return dt.datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    return value


def evaluate(node, doc: dict):
    kind = node[0]
    if kind == "or":
        return evaluate(node[1], doc) or evaluate(node[2], doc)
    if kind == "and":
        return evaluate(node[1], doc) and evaluate(node[2], doc)
    if kind == "not":
        return not evaluate(node[1], doc)
    if kind == "truthy":
        return bool(value_of(node[1], doc))
    _, op, left, right = node
    a, b = value_of(left, doc), value_of(right, doc)
    return compare(op, a, b)


def value_of(node, doc: dict):
    if node[0] == "lit":
        return node[1]
    value = normalise(resolve(doc, node[1]))
    for name, args in node[2]:
        text = "" if value is None else str(value)
        arg = str(args[0]) if args else ""
        if name == "contains":
            value = arg.lower() in text.lower()
        elif name == "startswith":
            value = text.lower().startswith(arg.lower())
        elif name == "endswith":
            value = text.lower().endswith(arg.lower())
        elif name == "tolower":
            value = text.lower()
        elif name == "toupper":
            value = text.upper()
        else:
            raise QueryError(f"Unsupported method {name}")
    return value


def compare(op: str, a, b) -> bool:
    if isinstance(b, dt.datetime) and isinstance(a, dt.datetime) is False and a is not None:
        a = normalise(str(a))
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        pass
    elif isinstance(b, Decimal) and a is not None and not isinstance(a, bool):
        try:
            a = Decimal(str(a))
        except InvalidOperation:
            return op == "!="
    elif isinstance(a, str) and isinstance(b, str):
        a, b = a.lower(), b.lower()
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if a is None or b is None:
        return False
    try:
        return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
    except TypeError:
        return False


def compile_where(text: str | None):
    if not text or not text.strip():
        return None
    return Parser(text).parse()


def apply_order(items: list, order: str | None, default=None) -> list:
    """Sort rendered documents by an ``order`` value such as "Date DESC, InvoiceNumber"."""
    if not order:
        return items
    keys = []
    for part in order.split(","):
        words = part.strip().split()
        if not words:
            continue
        keys.append((words[0].split("."), len(words) > 1 and words[1].upper() == "DESC"))
    for path, descending in reversed(keys):

        def sort_key(doc, path=path):
            value = normalise(resolve(doc, path))
            if isinstance(value, str):
                value = value.lower()
            return (value is None, value if value is not None else 0)

        try:
            items = sorted(items, key=sort_key, reverse=descending)
        except TypeError:
            raise QueryError(f"Cannot order by {'.'.join(path)}") from None
    return items
