"""Copying a single box's SQLite database into an empty PostgreSQL one (``smcp-box store
migrate``), table by table, with no knowledge of any one table.

Invariants:

* The tables and their columns come from the two schemas, never from a list here: every table
  of the SQLite file that also exists on PostgreSQL is copied, in the order SQLite created them
  (so a table comes after the tables its foreign keys name); a table PostgreSQL does not have
  yet (its area not ported) is skipped and reported, never half-copied. A column the SQLite
  table has and the PostgreSQL one lacks refuses the whole copy before anything is written.
* Values are copied exactly as stored: sealed columns stay sealed with the same data key (the
  copied key check is what a box opening the database checks), audit rows keep their ids,
  places and hashes, so every chain verifies on the other side.
* One PostgreSQL transaction: the copy is all or nothing. User triggers (the kv, blob and event
  counters) are off while rows go in, since the counters are copied too; identity columns are
  set past the copied ids afterwards, so new rows never collide with copied ones.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from smcp_box.errors import StoreError

from .db import open_snapshot, translate
from .pg import PgDatabase, PgTx

#: Rows read from SQLite and sent with one COPY.
CHUNK_ROWS: Final = 5000
#: A table this long reports its progress every this many rows.
PROGRESS_ROWS: Final = 20_000
_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class TableCount:
    table: str
    source_rows: int
    target_rows: int

    @property
    def equal(self) -> bool:
        return self.source_rows == self.target_rows


@dataclass
class TransferReport:
    copied: list[TableCount] = field(default_factory=list)
    #: Tables of the SQLite file not copied, each with the reason.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def counts_equal(self) -> bool:
        return all(count.equal for count in self.copied)


@dataclass(frozen=True)
class _Plan:
    table: str
    columns: list[str]
    rows: int


def _identifier(name: str) -> str:
    """``name`` (a table or column from a schema) checked to be a plain identifier, so it can be
    written into SQL text."""
    if not _IDENTIFIER.fullmatch(name):
        raise StoreError(f"Cannot copy {name!r}: not a plain table or column name.")
    return name


def _source_plan(conn: sqlite3.Connection) -> list[_Plan]:
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY rowid"
        )
    ]
    plans = []
    for table in tables:
        name = _identifier(table)
        columns = [_identifier(str(row[1])) for row in conn.execute(f"PRAGMA table_info({name})")]
        (rows,) = conn.execute(f"SELECT count(*) FROM {name}").fetchone()  # noqa: S608 (checked name)
        plans.append(_Plan(name, columns, int(rows)))
    return plans


async def _target_columns(tx: PgTx) -> dict[str, set[str]]:
    rows = await tx.all(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
    )
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), set()).add(str(column))
    return found


def _chunks(path: Path, plan: _Plan) -> Generator[list[tuple[Any, ...]], None, None]:
    """``plan``'s table's rows, a chunk at a time, from a read-only snapshot of the file."""
    conn = open_snapshot(path)
    try:
        columns = ", ".join(plan.columns)
        cursor = conn.execute(f"SELECT {columns} FROM {plan.table}")  # noqa: S608 (checked names)
        while chunk := cursor.fetchmany(CHUNK_ROWS):
            yield chunk
    finally:
        conn.close()


async def copy_sqlite_to_postgres(
    source: Path, target: PgDatabase, progress: Callable[[str], None]
) -> TransferReport:
    """Copy every table of the SQLite database at ``source`` that ``target`` has (see the
    module doc), then count both sides. ``target`` must be empty (the caller checks);
    ``progress`` gets one line per table and more for long ones."""
    try:
        conn = open_snapshot(source)
        try:
            plans = _source_plan(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    report = TransferReport()
    async with target.write() as tx:
        target_columns = await _target_columns(tx)
        chosen = []
        for plan in plans:
            if plan.table not in target_columns:
                reason = f"no such table on PostgreSQL yet ({plan.rows} row(s) left behind)"
                report.skipped.append((plan.table, reason))
                continue
            missing = [c for c in plan.columns if c not in target_columns[plan.table]]
            if missing:
                raise StoreError(
                    f"Cannot copy table {plan.table}: PostgreSQL's {plan.table} has no column "
                    f"{', '.join(missing)}. Upgrade smcp-box so both schemas match; nothing "
                    "was copied."
                )
            chosen.append(plan)
        for plan in chosen:
            await _copy_table(tx, source, plan, progress)
        for plan in chosen:
            await _restart_identities(tx, plan.table)
    async with target.read() as tx:
        for plan in chosen:
            row = await tx.one(f"SELECT count(*) FROM {plan.table}")  # noqa: S608 (checked name)
            assert row is not None
            report.copied.append(TableCount(plan.table, plan.rows, int(row[0])))
    return report


async def _copy_table(tx: PgTx, source: Path, plan: _Plan, progress: Callable[[str], None]) -> None:
    await tx.run(f"ALTER TABLE {plan.table} DISABLE TRIGGER USER")
    chunks = _chunks(source, plan)
    done, reported = 0, 0
    try:
        # Read on this thread (sqlite3 connections stay on theirs): the box is stopped and
        # this command does nothing else meanwhile.
        for chunk in chunks:
            await tx.copy_rows(plan.table, plan.columns, chunk)
            done += len(chunk)
            if plan.rows >= PROGRESS_ROWS and done - reported >= PROGRESS_ROWS:
                progress(f"  {plan.table}: {done} of {plan.rows} rows")
                reported = done
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    finally:
        chunks.close()
    await tx.run(f"ALTER TABLE {plan.table} ENABLE TRIGGER USER")
    progress(f"{plan.table}: {done} row(s) copied")


async def _restart_identities(tx: PgTx, table: str) -> None:
    """Move ``table``'s identity sequences past the copied ids."""
    rows = await tx.all(
        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = ? AND is_identity = 'YES'",
        (table,),
    )
    for (column,) in rows:
        name = _identifier(str(column))
        await tx.run(
            f"SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max({name}), 0) + 1, false)"  # noqa: S608 (checked names)
            f" FROM {table}",
            (table, name),
        )


def summary_lines(report: TransferReport) -> Sequence[str]:
    """The per-table counts, for the command's summary."""
    lines = [
        f"  {count.table:<24} {count.source_rows:>10} -> {count.target_rows:>10}"
        + ("" if count.equal else "  MISMATCH")
        for count in report.copied
    ]
    lines += [f"  {table:<24} skipped: {reason}" for table, reason in report.skipped]
    return lines
