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
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

from smcp_box.errors import StoreError

from .crypto import Crypto, canonical_json, frame
from .db import Database, Tx, open_snapshot, translate

ZERO_HASH: Final = bytes(32)
HEAD_NAME: Final = "audit_head"
MAX_PAGE: Final = 1000

Problem = Literal["edited", "inserted", "deleted"]

_SELECT_CHAIN: Final = (
    "SELECT id, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
    " FROM audit ORDER BY id"
)
_INSERT_ROW: Final = (
    "INSERT INTO audit (id, ts, kind, event, tenant, actor, source_ip, outcome, detail,"
    " prev_hash, hash, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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
class AuditVerification:
    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    problem: Problem | None = None
    message: str = "The audit chain is intact."


@dataclass(frozen=True)
class ChainRow:
    id: int
    ts: float
    kind: str
    event: str
    tenant: str | None
    actor: str
    source_ip: str | None
    outcome: str
    detail: str
    prev_hash: bytes
    hash: bytes
    sig: bytes | None

    def content(self) -> bytes:
        fields = [self.id, self.ts, self.kind, self.event, self.tenant, self.actor]
        fields += [self.source_ip, self.outcome, self.detail]
        return canonical_json(fields).encode()


def row_hash(crypto: Crypto, prev_hash: bytes, row: ChainRow) -> bytes:
    return crypto.audit_mac(prev_hash + row.content())


def checkpoint_sig(crypto: Crypto, row: ChainRow) -> bytes:
    return crypto.audit_mac(frame("audit checkpoint", row.id, row.hash) + row.content())


def encode_head(crypto: Crypto, last_id: int, last_hash: bytes) -> bytes:
    body = last_id.to_bytes(8, "big") + last_hash
    return body + crypto.audit_mac(frame("audit head", body))


def decode_head(crypto: Crypto, blob: bytes) -> tuple[int, bytes] | None:
    """The (id, hash) of the last row, or None if the head record was altered."""
    body, tag = blob[:40], blob[40:]
    if len(blob) != 72 or not hmac.compare_digest(tag, crypto.audit_mac(frame("audit head", body))):
        return None
    return int.from_bytes(body[:8], "big"), body[8:]


def _bad(checked: int, bad_id: int, problem: Problem, message: str) -> AuditVerification:
    return AuditVerification(False, checked, bad_id, problem, message)


def check_chain(
    crypto: Crypto, rows: Iterable[ChainRow], head_blob: bytes | None
) -> AuditVerification:
    """Verify rows (in id order) against the chain rules and the head record. No I/O."""
    it = iter(rows)
    current = next(it, None)
    if head_blob is None:
        if current is None:
            return AuditVerification(True, 0)
        return _bad(0, current.id, "deleted", "The audit head record is missing.")
    head = decode_head(crypto, head_blob)
    if head is None:
        return _bad(0, 0, "edited", "The audit head record was altered.")
    head_id, head_hash = head
    expected_id, expected_prev, checked = 1, ZERO_HASH, 0
    if current is not None and current.kind == "checkpoint":
        sig = current.sig or b""
        if not hmac.compare_digest(sig, checkpoint_sig(crypto, current)):
            return _bad(0, current.id, "edited", f"Checkpoint row {current.id} was altered.")
        expected_id, expected_prev, checked = current.id + 1, current.hash, 1
        current = next(it, None)
    while current is not None:
        nxt = next(it, None)
        row = current
        if row.id != expected_id:
            return _bad(
                checked,
                expected_id,
                "deleted",
                f"Audit rows {expected_id}..{row.id - 1} are missing (deleted).",
            )
        linked = hmac.compare_digest(row.prev_hash, expected_prev)
        genuine = row.kind == "event" and hmac.compare_digest(
            row.hash, row_hash(crypto, row.prev_hash, row)
        )
        if not (linked and genuine):
            # The next row still linking to this row's predecessor means this one was slipped in;
            # so does a row past the signed head.
            if row.id > head_id or (nxt is not None and nxt.prev_hash == expected_prev):
                return _bad(checked, row.id, "inserted", f"Audit row {row.id} was inserted.")
            if not linked and hmac.compare_digest(row.hash, row_hash(crypto, expected_prev, row)):
                return _bad(checked, row.id, "edited", f"Audit row {row.id}'s link was altered.")
            if not linked:
                return _bad(
                    checked,
                    row.id,
                    "deleted",
                    f"Audit row {row.id} does not follow the row before it: rows before it were "
                    "deleted and later ids renumbered, or replaced.",
                )
            return _bad(
                checked, row.id, "edited", f"Audit row {row.id} does not match its hash (edited)."
            )
        expected_id, expected_prev, checked = expected_id + 1, row.hash, checked + 1
        current = nxt
    last_id = expected_id - 1
    if last_id < head_id:
        return _bad(
            checked,
            last_id + 1,
            "deleted",
            f"Audit rows {last_id + 1}..{head_id} are missing from the end (deleted).",
        )
    if last_id > head_id:
        return _bad(checked, head_id + 1, "inserted", f"Audit row {head_id + 1} was inserted.")
    if not hmac.compare_digest(expected_prev, head_hash):
        return _bad(checked, last_id, "edited", f"Audit row {last_id} was replaced.")
    return AuditVerification(True, checked)


def _verify_file(path: Path, crypto: Crypto) -> AuditVerification:
    try:
        conn = open_snapshot(path)
        try:
            # One read transaction, so the head and the rows come from the same snapshot.
            conn.execute("BEGIN")
            head = conn.execute("SELECT value FROM meta WHERE name = ?", (HEAD_NAME,)).fetchone()
            rows = (ChainRow(*row) for row in conn.execute(_SELECT_CHAIN))
            return check_chain(crypto, rows, None if head is None else head[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise translate(exc) from exc


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
        detail_text = canonical_json(detail)
        # REAL columns hand back floats; hash a float now so verification sees the same JSON.
        ts = float(self._clock())
        async with self._db.write() as tx:
            head_row = await tx.one("SELECT value FROM meta WHERE name = ?", (HEAD_NAME,))
            head = None if head_row is None else decode_head(self._crypto, head_row[0])
            if head is None:
                # Keep logging even if the head was tampered with: link to the real last row;
                # verification keeps reporting the head problem.
                last = await tx.one("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
                head = (0, ZERO_HASH) if last is None else (int(last[0]), bytes(last[1]))
            row_id, prev = head[0] + 1, head[1]
            row = ChainRow(
                id=row_id, ts=ts, kind="event", event=event, tenant=tenant, actor=actor,
                source_ip=source_ip, outcome=outcome, detail=detail_text, prev_hash=prev,
                hash=b"", sig=None,
            )  # fmt: skip
            row = replace(row, hash=row_hash(self._crypto, prev, row))
            await _insert(tx, row)
            await tx.run(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (HEAD_NAME, encode_head(self._crypto, row_id, row.hash)),
            )
        return row_id

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
        return await asyncio.to_thread(_verify_file, self._db.path, self._crypto)

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
    await tx.run(_INSERT_ROW, astuple(row))
