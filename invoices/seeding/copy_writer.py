"""Rows for PostgreSQL's COPY: one writer a model, ids taken ahead of the rows, sequences set after them."""

import datetime
import io
import json
import random
import uuid

from django.db import connection, models
from django.utils import timezone


def copy_cell(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value)
    elif isinstance(value, datetime.datetime | datetime.date):
        value = value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class CopyWriter:
    """Rows for one model: fills every concrete column from the given values, the field's default, or now."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields]
        self.buffer = io.StringIO()
        self.count = 0
        self.now = timezone.now()

    def add(self, **values) -> None:
        cells = []
        for field in self.fields:
            if field.attname in values:
                value = values[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = self.now
            else:
                value = field.get_default()  # "" for blank text columns, None for nullable ones
            cells.append(copy_cell(value))
        self.buffer.write("\t".join(cells) + "\n")
        self.count += 1

    def flush(self, cursor) -> None:
        if not self.count:
            return
        self.buffer.seek(0)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        cursor.copy_expert(f"COPY {self.model._meta.db_table} ({columns}) FROM STDIN", self.buffer)
        self.buffer = io.StringIO()
        self.count = 0


def first_free_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(m=models.Max("pk"))["m"] or 0) + 1


def seeded_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sequences_reset(cursor, *models_: type[models.Model]) -> None:
    for model in models_:
        table = model._meta.db_table
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - model meta
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )
