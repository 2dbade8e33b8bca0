"""Bulk writes whose foreign keys are checked once per column instead of once per row.

PostgreSQL checks a foreign key with a trigger per inserted row (a lookup and a
``FOR KEY SHARE`` lock of the referenced row). For the import of a million sessions
that is some nine million lookups, about 45 % of the import (bench/README.md). Where
the database role may set ``session_replication_role`` (a superuser, or on PostgreSQL
15+ a role given ``GRANT SET ON PARAMETER session_replication_role``, see
``manage.py db_app_role --bulk-import``), :class:`BulkWrite` switches those triggers off
for its own writes only and checks the same guarantee set-based before the transaction
commits:

* every referenced row that existed before the import is locked ``FOR KEY SHARE`` (as
  the trigger would), so no other transaction can delete it until the import commits;
* then, per foreign-key column, one anti-join finds written rows whose referenced row
  does not exist; any such row aborts the import with an ``IntegrityError``.

Rows referenced within the written ranges were created by this transaction and are
invisible to others, so they need no lock. Triggers marked ``ENABLE ALWAYS`` (the access
log's append-only trigger) fire regardless. Everything else (unique and check
constraints, NOT NULL) is unaffected. Without the right, or on SQLite, the writes run
with the ordinary per-row triggers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import IntegrityError, connection
from django.db.models import ForeignKey, Model

# Sequence values that other transactions may draw between the two halves of one
# reservation statement (see reserve_ids); far more than a server can hand out in the
# microseconds between them.
RESERVE_SLACK = 1000
# pg_advisory_xact_lock(BULK_LOCK_SPACE, organisation id): one bulk write (import, demo
# data) per organisation at a time.
BULK_LOCK_SPACE = 0x426C_6B57


def reserve_ids(model: type[Model], n: int) -> np.ndarray:
    """``n`` consecutive primary keys of ``model`` that no other transaction will use.

    On PostgreSQL the table's own sequence is moved past them in one statement,
    ``setval(seq, nextval(seq) + n + RESERVE_SLACK)``: ``nextval`` gives ``v``, and the
    keys are ``v + RESERVE_SLACK + 1 ... v + RESERVE_SLACK + n``. Sequences are not
    transactional, so the reservation holds at once for every other transaction: an
    ordinary insert elsewhere draws a value below the block (if it came between the two
    calls) or above it, and no table is locked, so other organisations keep writing while
    an import runs. (Were more than ``RESERVE_SLACK`` values drawn between the two calls,
    the bulk write would meet a duplicate key and roll back, never overwrite.) The
    sequences are Django's identity columns with the default CACHE 1.

    On SQLite (embedded mode, one writer at a time) the keys follow the largest one."""
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    table, column = model._meta.db_table, model._meta.pk.column
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                "SELECT setval(s, nextval(s) + %s) FROM pg_get_serial_sequence(%s, %s) s",
                [n + RESERVE_SLACK, table, column],
            )
            end = int(cur.fetchone()[0])
    else:
        with connection.cursor() as cur:
            cur.execute(f"SELECT MAX({column}) FROM {table}")  # noqa: S608 (model names)
            end = int(cur.fetchone()[0] or 0) + n
    return np.arange(end - n + 1, end + 1, dtype=np.int64)


def lock_organisation_for_bulk_write(organisation_id: int) -> None:
    """Serialise bulk writes (imports, demo data) into one organisation until the
    transaction ends. Nothing else waits: other organisations' writes and this
    organisation's pages go on (single writes into the episodes an import matched wait
    for the import's row locks, see measures.importer)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [BULK_LOCK_SPACE, organisation_id])


def copy_frame(
    table: str,
    frame: pd.DataFrame,
    *,
    chunk: int = 50_000,
    wrote: Callable[[int], None] | None = None,
) -> None:
    """COPY ``frame`` into ``table`` (PostgreSQL), in one COPY statement.

    Arrow's CSV writer (ten times pandas' speed) quotes every string and leaves a null
    unquoted and empty, which is what PostgreSQL's CSV format reads as an empty string
    and as NULL. The rows are formatted ``chunk`` at a time; a chunk's write returns
    once libpq has handed it to the socket, so ``wrote(rows)`` after each (progress)
    follows the server within a socket buffer. (psycopg's queued writer, which formats
    ahead in parallel, gained nothing measurable: the server's inserts are the
    bottleneck, bench/README.md, and its progress ran ahead of the server.)"""
    zoned = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if zoned:  # as ISO text with the offset (arrow would go through a zone-less array)
        frame = frame.assign(**{c: frame[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z") for c in zoned})
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    cols = ", ".join(frame.columns)
    sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg's own cursor under Django's wrapper
        with raw.copy(sql) as copy:
            for start in range(0, len(frame), chunk):
                out = pa.BufferOutputStream()
                pa_csv.write_csv(arrow.slice(start, chunk), out, options)
                copy.write(out.getvalue().to_pybytes())
                if wrote is not None:
                    wrote(min(chunk, len(frame) - start))


def set_based_checks_permitted() -> bool:
    """Whether this connection may switch per-row foreign-key triggers off."""
    if connection.vendor != "postgresql" or not getattr(settings, "IMPORT_SET_BASED_FK", True):
        return False
    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('server_version_num')::int")
        version = cur.fetchone()[0]
        if version >= 150000:
            cur.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        else:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cur.fetchone()
    return bool(row and row[0])


class BulkWrite:
    """``with BulkWrite() as bulk:`` around bulk inserts inside ``transaction.atomic``;
    ``bulk.record(Model, ids)`` after each write. Leaving the block without an exception
    checks every foreign key of the recorded rows (see the module's docstring)."""

    def __init__(self) -> None:
        self.set_based = set_based_checks_permitted()
        self.ranges: dict[type[Model], tuple[int, int]] = {}

    def record(self, model: type[Model], ids: Any) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids)
        lo, hi = int(ids.min()), int(ids.max())
        if model in self.ranges:
            old_lo, old_hi = self.ranges[model]
            lo, hi = min(lo, old_lo), max(hi, old_hi)
        self.ranges[model] = (lo, hi)

    def __enter__(self) -> BulkWrite:
        if self.set_based:
            with connection.cursor() as cur:
                cur.execute("SET LOCAL session_replication_role = replica")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.set_based:
            return
        if exc_type is not None:
            # The transaction is being rolled back; SET LOCAL ends with it.
            return
        with connection.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = origin")
        self.check()

    def check(self) -> None:
        """Lock the pre-existing referenced rows, then prove every reference resolves.

        Per written table, one scan groups each foreign-key column's values (grouping
        sets); a value inside the parent's own written id range becomes NULL there. Those
        resolve if the parent's written range is complete (its count equals its width:
        every id in it exists); the other values, referenced rows that existed before,
        are locked ``FOR KEY SHARE`` and must all be found."""
        complete: dict[type[Model], bool] = {}
        for model, (lo, hi) in self.ranges.items():
            fields = [
                f
                for f in model._meta.concrete_fields
                if isinstance(f, ForeignKey) and f.db_constraint  # type: ignore[attr-defined]
            ]
            if not fields:
                continue
            external = self._external_refs(model, fields, lo, hi)
            for field, values in zip(fields, external, strict=True):
                parent: Any = field.related_model
                if parent in self.ranges and parent not in complete:
                    complete[parent] = self._complete(parent)
                if not complete.get(parent, True):
                    raise IntegrityError(f"written ids of {parent._meta.db_table} have gaps")
                if values and self._lock(parent, field, values) != len(values):
                    raise IntegrityError(
                        f"new rows of {model._meta.db_table} reference a missing row of "
                        f"{parent._meta.db_table} ({field.column})"
                    )

    def _external_refs(
        self, model: type[Model], fields: list[ForeignKey], lo: int, hi: int
    ) -> list[list[int]]:
        """For each field, the distinct non-null values outside the parent's written
        range, from one scan of the written rows (identifiers are the models' own)."""
        exprs, params = [], []
        for f in fields:
            own_lo, own_hi = self.ranges.get(f.related_model, (1, 0))  # type: ignore[arg-type]
            exprs.append(f"CASE WHEN {f.column} BETWEEN %s AND %s THEN NULL ELSE {f.column} END")
            params += [own_lo, own_hi]
        cols = ", ".join(f"{e} AS r{i}" for i, e in enumerate(exprs))
        sets = ", ".join(f"(r{i})" for i in range(len(exprs)))
        grouping = ", ".join(f"GROUPING(r{i})" for i in range(len(exprs)))
        sql = (
            f"SELECT {grouping}, {', '.join(f'r{i}' for i in range(len(exprs)))} "  # noqa: S608
            f"FROM (SELECT {cols} FROM {model._meta.db_table} "
            f"WHERE {model._meta.pk.column} BETWEEN %s AND %s) w GROUP BY GROUPING SETS ({sets})"
        )
        found: list[list[int]] = [[] for _ in fields]
        with connection.cursor() as cur:
            cur.execute(sql, [*params, lo, hi])
            n = len(fields)
            for row in cur.fetchall():
                for i in range(n):
                    # GROUPING(ri) is 0 in the rows grouped by ri.
                    if row[i] == 0 and row[n + i] is not None:
                        found[i].append(int(row[n + i]))
        return found

    def _complete(self, model: type[Model]) -> bool:
        lo, hi = self.ranges[model]
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT count(*) FROM {model._meta.db_table} "  # noqa: S608
                f"WHERE {model._meta.pk.column} BETWEEN %s AND %s",
                [lo, hi],
            )
            return int(cur.fetchone()[0]) == hi - lo + 1

    def _lock(self, parent: Any, field: ForeignKey, values: list[int]) -> int:
        col = field.target_field.column
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {parent._meta.db_table} "  # noqa: S608
                # A semi-join (linear), not "= ANY(array)" as a row filter, which a seq
                # scan evaluates against the whole array for every row.
                f"WHERE {col} IN (SELECT unnest(%s::bigint[])) FOR KEY SHARE) locked",
                [values],
            )
            return int(cur.fetchone()[0])
