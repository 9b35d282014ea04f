"""Statements of a fixed shape, built and compiled by the ORM once per process; each run binds its values.

Django builds a statement anew each time a queryset runs: the filter tree, the joins, the select list, the SQL. For
the statements a worker runs for every chunk of the push (about seventeen), that building was about a third of the
worker's CPU per chunk (docs/benchmarks.md). A prepared statement is written with the ORM like any other, its varying
values named by `Bind`. Its first run builds and compiles it; later runs reuse the SQL and the compiler (its select
list and converters), so rows come back exactly as the ORM gives them: model instances, with select_related, or
values_list tuples.

    _operation = Prepared(lambda: OutboundOperation.objects.filter(pk=Bind("pk")))
    row = next(iter(_operation.rows(pk=operation_id)), None)
    _operation.update({"state": "done"}, pk=operation_id)

A worker compiles every statement of the modules it imported once, before its pool's children fork
(`prepared_compile_all`, called by coordinoter/worker_start.py), so no child compiles at its first task.

What `rows` returns is for iterating only: chained further (filter, count, exists, update) it would build a new
statement from the template, so it refuses. A value a statement compares against is bound as it is given (ids,
strings, aware datetimes); one it stores goes through its field's preparation, as `QuerySet.update` does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, transaction
from django.db.models import Expression, Field, Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.subqueries import UpdateQuery
from django.db.transaction import TransactionManagementError


class _Slot:
    """Where a bound value goes among a compiled statement's parameters."""

    __slots__ = ("name", "field", "many", "vendor")

    def __init__(self, name: str, field: Field | None, many: bool, vendor: str) -> None:
        self.name, self.field, self.many, self.vendor = name, field, many, vendor

    def value(self, values: dict[str, Any], connection: Any) -> Any:
        try:
            value = values[self.name]
        except KeyError:
            raise TypeError(f"The prepared statement needs a value for {self.name!r}.") from None
        if self.many:
            ids = [item.pk if isinstance(item, Model) else item for item in value]
            return json.dumps(ids) if self.vendor == "sqlite" else ids
        if isinstance(value, Model):
            value = value.pk
        if self.field is not None:
            return self.field.get_db_prep_save(value, connection=connection)
        return value


class Bind(Expression):
    """A value named in a prepared statement, given at each run. `many`: a list of ids, as `__in` takes them
    (`filter(pk__in=Bind("ids", many=True))`), of the field `output_field` (a bigint key when not given)."""

    def __init__(self, name: str, output_field: Field | None = None, *, many: bool = False) -> None:
        super().__init__(output_field=output_field)
        self.name, self.many = name, many

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        field = self._output_field_or_none
        slot = _Slot(self.name, field, self.many, connection.vendor)
        if not self.many:
            return "%s", [slot]
        if connection.vendor == "sqlite":
            return "(SELECT value FROM json_each(%s))", [slot]
        db_type = field.cast_db_type(connection) if field is not None else "bigint"
        return f"(SELECT unnest(%s::{db_type}[]))", [slot]


class Prepared:
    """One statement's template: `build` returns its queryset, with `Bind` where values vary. Built at its first run
    or by `prepared_compile_all` (not at import: apps may not be ready), then shared by every run of the process and
    every thread."""

    def __init__(self, build: Callable[[], QuerySet]) -> None:
        self._build = build
        self._select: tuple[QuerySet, SQLCompiler, str, list[Any]] | None = None
        self._updates: dict[tuple[str, ...], tuple[str, list[Any], str]] = {}
        self._lock = threading.Lock()
        _STATEMENTS.append(self)

    def rows(self, **values: Any) -> QuerySet:
        """The queryset, its values bound, to iterate once."""
        template, compiler, sql, params = self._select or self._compile_select()
        queryset = QuerySet.__new__(type(template))
        queryset.__dict__ = {**template.__dict__, "_result_cache": None, "_prefetch_done": False}
        queryset._query = _BoundQuery(template.query, compiler, sql, params, values, queryset.db)
        return queryset

    def update(self, fields: dict[str, Any], **values: Any) -> int:
        """UPDATE the rows the statement selects, setting `fields` (the same names at every run of the template); how
        many rows matched."""
        names = tuple(fields)
        compiled = self._updates.get(names) or self._compile_update(names)
        sql, params, db = compiled
        connection = connections[db]
        bound = _bind(params, {**values, **{f"set:{name}": value for name, value in fields.items()}}, connection)
        with transaction.mark_for_rollback_on_error(using=db), connection.cursor() as cursor:
            cursor.execute(sql, bound)
            return cursor.rowcount

    def _compile_select(self) -> tuple[QuerySet, SQLCompiler, str, list[Any]]:
        with self._lock:
            if self._select is None:
                template = self._build()
                compiler = template.query.get_compiler(using=template.db)
                sql, params = compiler.as_sql()
                self._select = template, compiler, sql, list(params)
        return self._select

    def _compile_update(self, names: tuple[str, ...]) -> tuple[str, list[Any], str]:
        with self._lock:
            if names not in self._updates:
                template = self._build()
                meta = template.model._meta
                query = template.query.chain(UpdateQuery)
                fields = [
                    (meta.get_field(name), template.model, Bind(f"set:{name}", meta.get_field(name))) for name in names
                ]
                query.add_update_fields(fields)
                if len([alias for alias, count in query.alias_refcount.items() if count]) > 1:
                    raise ValueError("A prepared UPDATE must select its rows from its own table alone.")
                sql, params = query.get_compiler(using=template.db).as_sql()
                self._updates[names] = (sql, params, template.db)
        return self._updates[names]


# Every statement made, in the order of the modules' imports (module constants: the list does not grow at run time).
_STATEMENTS: list[Prepared] = []


def prepared_compile_all() -> int:
    """Build and compile every statement made so far (each as the SELECT it is written as; an UPDATE's SET list is
    compiled at its first run, by the names it is given). Returns how many there are. Compiling reads the server's
    version, so it connects; a locking read compiles only inside a transaction, so this opens one (nothing runs)."""
    with transaction.atomic():
        for statement in _STATEMENTS:
            statement._compile_select()
    return len(_STATEMENTS)


def _bind(params: Iterable[Any], values: dict[str, Any], connection: Any) -> list[Any]:
    return [param.value(values, connection) if isinstance(param, _Slot) else param for param in params]


class _BoundQuery:
    """The template's query, as one run sees it: everything read from the template, the compiler a copy of the
    template's whose SQL is the compiled one with this run's values."""

    def __init__(
        self, query: Any, compiler: SQLCompiler, sql: str, params: list[Any], values: dict[str, Any], db: str
    ) -> None:
        self._query, self._compiler, self._sql, self._params = query, compiler, sql, params
        self._values, self._db = values, db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._query, name)

    def get_compiler(self, using: str | None = None, connection: Any = None, elide_empty: bool = True) -> SQLCompiler:
        connection = connection or connections[using or self._db]
        if self._query.select_for_update and not connection.in_atomic_block:
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        compiler = object.__new__(type(self._compiler))
        compiler.__dict__ = {**self._compiler.__dict__, "connection": connection, "using": using or self._db}
        compiled = self._sql, _bind(self._params, self._values, connection)
        compiler.as_sql = lambda *args, **kwargs: compiled
        return compiler

    def chain(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("A prepared statement runs as it was built: iterate it, do not chain it.")

    # count(), exists(), aggregate() and the rest would build a statement of their own from the template.
    clone = get_count = has_results = get_aggregation = chain
