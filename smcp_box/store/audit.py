"""The tamper-evident audit log.

Rows are clear text (admins read them; callers must never put secrets in them). Integrity comes
from a keyed hash chain::

    hash[n] = HMAC-SHA256(audit sub-key, hash[n-1] || canonical JSON of row n)

with ``hash[0]`` = 32 zero bytes and ids assigned as head + 1, so ids have no gaps. Without the
data key nobody can recompute the chain, so editing, inserting or deleting rows shows up as a
hash mismatch, a broken link or a gap in ids. A *head* record in ``meta`` (the last id and hash,
with its own MAC) catches rows deleted from the end, which leave no gap behind.

Pruning replaces the oldest rows with one *checkpoint* row that keeps the id and hash of the last
pruned row, signed with the audit key: the chain then starts at the checkpoint, and verification
still passes. Pruning first verifies the chain, so it never signs over evidence of tampering.

Rows are appended one at a time or as a batch (:meth:`Audit.append_audit_many`): one
transaction, the rows chained in order and the head moved once, all or nothing. The hashing and
the checks themselves are I/O-free, in :mod:`.chain`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, TypeVar

from smcp_box.errors import StoreError

from .chain import (
    ZERO_HASH,
    AuditVerification,
    ChainFinding,
    ChainRow,
    check_chain,
    checkpoint_sig,
    decode_head,
    encode_head,
    row_hash,
    scan_chain,
)
from .crypto import Crypto, canonical_json
from .db import Database, SqliteDatabase, Tx, open_snapshot, translate

HEAD_NAME: Final = "audit_head"
MAX_PAGE: Final = 1000

_T = TypeVar("_T")

_SELECT_CHAIN: Final = (
    "SELECT id, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
    " FROM audit ORDER BY id"
)
_INSERT_HEAD: Final = (
    "INSERT INTO audit (id, ts, kind, event, tenant, actor, source_ip, outcome, detail,"
    " prev_hash, hash, sig)"
)
_ROW_PLACEHOLDERS: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_ROW: Final = f"{_INSERT_HEAD} VALUES {_ROW_PLACEHOLDERS}"
#: A row's columns in ChainRow field order (the INSERT's order). Flat values only, so no copy
#: is needed: ``dataclasses.astuple`` deep-copied each one, a tenth of the audit cost per row.
_row_params: Final = attrgetter(*(f.name for f in fields(ChainRow)))
#: Rows per INSERT statement: 12 parameters each stays far below SQLite's 32766-variable cap.
_INSERT_CHUNK: Final = 500


@dataclass(frozen=True)
class AuditRecord:
    id: int
    ts: float
    event: str
    tenant: str | None
    actor: str
    source_ip: str | None
    outcome: str
    detail: dict[str, Any]
    #: "event", or "checkpoint" for the row that stands for pruned rows.
    kind: str = "event"


@dataclass(frozen=True)
class AuditEntry:
    """One row to append: what happened, to which tenant, who did it, from where, and how it
    ended. ``detail`` must be JSON and must hold no secrets. ``ts`` is when it happened (the
    store's clock at append time when None), so a row written later by a batch keeps its time.
    """

    event: str
    tenant: str | None
    actor: str
    source_ip: str | None
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)
    ts: float | None = None

    def chain_row(self, row_id: int, now: float, detail: str, prev_hash: bytes) -> ChainRow:
        # REAL columns hand back floats; hash a float now so verification sees the same JSON.
        ts = float(now if self.ts is None else self.ts)
        return ChainRow(
            id=row_id, ts=ts, kind="event", event=self.event, tenant=self.tenant,
            actor=self.actor, source_ip=self.source_ip, outcome=self.outcome, detail=detail,
            prev_hash=prev_hash, hash=b"", sig=None,
        )  # fmt: skip


#: Set in a row's detail when some of its text had to be escaped to be stored (see below).
ESCAPED_KEY: Final = "_escaped"


def storable(entry: AuditEntry) -> tuple[AuditEntry, str]:
    """``entry`` as it can be stored, with its canonical detail JSON.

    Audit rows carry what clients sent (tool names, user agents, ids), so a row may hold text
    that is not valid UTF-8 (a lone surrogate from a ``"\\ud800"`` JSON escape), a non-finite
    number or a value JSON cannot spell. Such a row is stored with that text escaped
    (``\\ud800`` as six characters), numbers as strings and the rest as its ``repr``, and
    marked with ``_escaped``: one client's odd input never costs other rows their place in the
    batch, and what is stored is always valid UTF-8 JSON.
    """
    try:
        detail = canonical_json(entry.detail)
        for text in (
            entry.event,
            entry.tenant,
            entry.actor,
            entry.source_ip,
            entry.outcome,
            detail,
        ):
            if text is not None:
                text.encode()
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        fixed = replace(
            entry,
            event=_text(entry.event),
            tenant=None if entry.tenant is None else _text(entry.tenant),
            actor=_text(entry.actor),
            source_ip=None if entry.source_ip is None else _text(entry.source_ip),
            outcome=_text(entry.outcome),
            detail={**_json_safe(entry.detail), ESCAPED_KEY: True},
        )
        return fixed, canonical_json(fixed.detail)
    return entry, detail


def _text(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {_text(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _text(value)


def _read_chain(path: Path, judge: Callable[[Iterable[ChainRow], bytes | None], _T]) -> _T:
    try:
        conn = open_snapshot(path)
        try:
            # One read transaction, so the head and the rows come from the same snapshot.
            conn.execute("BEGIN")
            head = conn.execute("SELECT value FROM meta WHERE name = ?", (HEAD_NAME,)).fetchone()
            rows = (ChainRow(*row) for row in conn.execute(_SELECT_CHAIN))
            return judge(rows, None if head is None else head[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise translate(exc) from exc


def verify_file(path: Path, crypto: Crypto) -> AuditVerification:
    """Verify the chain of the database file at ``path`` (a live database or a backup)."""
    return _read_chain(path, lambda rows, head: check_chain(crypto, rows, head))


def scan_file(path: Path, crypto: Crypto) -> list[ChainFinding]:
    """:func:`scan_chain` on the database file at ``path``."""
    return _read_chain(path, lambda rows, head: scan_chain(crypto, rows, head))


class Audit:
    def __init__(self, db: Database, crypto: Crypto, clock: Callable[[], float]) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock

    async def init_head(self, tx: Tx) -> None:
        """Start the chain on a new database (called once, with the key check)."""
        await tx.run(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (HEAD_NAME, encode_head(self._crypto, 0, ZERO_HASH)),
        )

    async def append_audit(
        self,
        event: str,
        *,
        tenant: str | None,
        actor: str,
        source_ip: str | None,
        outcome: str,
        detail: dict[str, Any],
    ) -> int:
        """Append one row; returns its id. ``detail`` must be JSON and must hold no secrets."""
        entry = AuditEntry(event, tenant, actor, source_ip, outcome, detail, ts=self._clock())
        ids = await self.append_audit_many([entry])
        return ids[0]

    async def append_audit_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Append ``entries`` in order, in one transaction; returns their ids.

        All or nothing: on any error no row of the batch is written and the head is unchanged.
        Entries without a ``ts`` get the store clock's time now.
        """
        if not entries:
            return []
        # Made storable before the transaction: a row with odd text is stored escaped, and
        # never fails the rows beside it.
        entries, details = zip(*(storable(entry) for entry in entries), strict=True)
        now = self._clock()
        async with self._db.write() as tx:
            # The head is read, extended and moved: one writer at a time, whichever box.
            await tx.lock("audit")
            last_id, prev = await self._head(tx)
            rows: list[ChainRow] = []
            for offset, (entry, detail) in enumerate(zip(entries, details, strict=True), 1):
                row = entry.chain_row(last_id + offset, now, detail, prev)
                row = replace(row, hash=row_hash(self._crypto, prev, row))
                rows.append(row)
                prev = row.hash
            for chunk_start in range(0, len(rows), _INSERT_CHUNK):
                await _insert_many(tx, rows[chunk_start : chunk_start + _INSERT_CHUNK])
            await tx.run(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (HEAD_NAME, encode_head(self._crypto, rows[-1].id, rows[-1].hash)),
            )
        return [row.id for row in rows]

    async def _head(self, tx: Tx) -> tuple[int, bytes]:
        head_row = await tx.one("SELECT value FROM meta WHERE name = ?", (HEAD_NAME,))
        head = None if head_row is None else decode_head(self._crypto, head_row[0])
        if head is None:
            # Keep logging even if the head was tampered with: link to the real last row;
            # verification keeps reporting the head problem.
            last = await tx.one("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
            head = (0, ZERO_HASH) if last is None else (int(last[0]), bytes(last[1]))
        return head

    async def audit_page(
        self,
        *,
        tenant: str | None = None,
        event: str | None = None,
        since_id: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """A page of rows.

        With ``since_id``: rows after it, oldest first (follow the log: pass the last id back).
        Otherwise: newest first, below ``before_id`` if given (page back: pass the last id).
        """
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("tenant = ?", tenant),
            ("event = ?", event),
            ("id > ?", since_id),
            ("id < ?", before_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = "SELECT id, ts, event, tenant, actor, source_ip, outcome, detail, kind FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id " + ("ASC" if since_id is not None else "DESC") + " LIMIT ?"
        params.append(max(1, min(limit, MAX_PAGE)))
        async with self._db.read() as tx:
            rows = await tx.all(sql, params)
        return [
            AuditRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8])
            for r in rows
        ]

    async def verify_audit_chain(self) -> AuditVerification:
        # A separate read-only connection in a worker thread: under WAL it sees a consistent
        # snapshot and does not hold up the writer while it hashes every row.
        self._db.check_open()
        if isinstance(self._db, SqliteDatabase):
            return await asyncio.to_thread(verify_file, self._db.path, self._crypto)
        return await self._judge(lambda rows, head: check_chain(self._crypto, rows, head))

    async def scan_audit_chain(self) -> list[ChainFinding]:
        """Every problem in the chain (see :func:`scan_chain`), read like verification."""
        self._db.check_open()
        if isinstance(self._db, SqliteDatabase):
            return await asyncio.to_thread(scan_file, self._db.path, self._crypto)
        return await self._judge(lambda rows, head: scan_chain(self._crypto, rows, head))

    async def _judge(self, judge: Callable[[Iterable[ChainRow], bytes | None], _T]) -> _T:
        """``judge`` over the head and every row read in one snapshot of the database (other
        backends than SQLite, whose own path reads a file snapshot off the writer's lock).
        The rows are held in memory, and hashed in a worker thread."""
        async with self._db.snapshot() as tx:
            head = await tx.one("SELECT value FROM meta WHERE name = ?", (HEAD_NAME,))
            rows = [ChainRow(*row) for row in await tx.all(_SELECT_CHAIN)]
        return await asyncio.to_thread(judge, rows, None if head is None else bytes(head[0]))

    async def prune_audit(self, older_than: float) -> int:
        """Drop the oldest rows with ``ts < older_than``; returns how many event rows went.

        Rows go as a prefix (up to the first row not old enough) so ids stay contiguous.
        """
        verification = await self.verify_audit_chain()
        if not verification.ok:
            raise StoreError(
                "Refusing to prune the audit log: verification failed "
                f"({verification.message}) and pruning would discard the evidence."
            )
        async with self._db.write() as tx:
            await tx.lock("audit")
            bounds = await tx.one(
                "SELECT (SELECT min(id) FROM audit WHERE ts >= ?), (SELECT max(id) FROM audit),"
                " (SELECT min(id) FROM audit)",
                (older_than,),
            )
            assert bounds is not None
            keep_from, max_id, min_id = bounds
            last_pruned = max_id if keep_from is None else keep_from - 1
            if last_pruned is None or last_pruned < min_id:
                return 0
            if last_pruned == min_id:
                first = await tx.one("SELECT kind FROM audit WHERE id = ?", (min_id,))
                if first is not None and first[0] == "checkpoint":
                    return 0  # only the existing checkpoint is old enough
            counted = await tx.one(
                "SELECT count(*) FROM audit WHERE id <= ? AND kind = 'event'", (last_pruned,)
            )
            target = await tx.one("SELECT ts, hash FROM audit WHERE id = ?", (last_pruned,))
            assert counted is not None
            assert target is not None
            pruned = int(counted[0])
            detail = canonical_json(
                {"pruned_through": last_pruned, "rows_pruned": pruned, "pruned_at": self._clock()}
            )
            checkpoint = ChainRow(
                id=last_pruned, ts=float(target[0]), kind="checkpoint", event="audit.checkpoint",
                tenant=None, actor="smcp-box", source_ip=None, outcome="ok", detail=detail,
                prev_hash=ZERO_HASH, hash=bytes(target[1]), sig=None,
            )  # fmt: skip
            checkpoint = replace(checkpoint, sig=checkpoint_sig(self._crypto, checkpoint))
            await tx.run("DELETE FROM audit WHERE id <= ?", (last_pruned,))
            await _insert(tx, checkpoint)
        return pruned


async def _insert(tx: Tx, row: ChainRow) -> None:
    await tx.run(_INSERT_ROW, _row_params(row))


async def _insert_many(tx: Tx, rows: Sequence[ChainRow]) -> None:
    # One multi-row INSERT per chunk: each statement is one hop to the connection thread, which
    # is most of the cost of a row once the commit is shared by the whole batch.
    values = ", ".join([_ROW_PLACEHOLDERS] * len(rows))
    params = [value for row in rows for value in _row_params(row)]
    await tx.run(f"{_INSERT_HEAD} VALUES {values}", params)
