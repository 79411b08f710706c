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

**One chain per box.** Every row names the box that wrote it (``box``) and its place in that
box's chain (``seq``, the chain's "id" above: contiguous from 1, hashed); each box has its own
head (``audit_head:<box>``, whose MAC names the box) and its own checkpoints. A box appends
under a lock on its own chain's name only, so boxes sharing one database never wait for each
other's audit writes. ``id`` is a database-wide row number for paging (on one SQLite box it
equals ``seq``); it is not part of any hash.

Rows written before chains had boxes form the *legacy chain* (``box = ''``, head named
``audit_head``, hashed and framed exactly as they were). The first box that appends after the
upgrade adopts it, if it has no chain of its own yet: the rows get its box name and the head
its name and box-bound MAC, and no row hash changes, so history is not rewritten and a single
box's log stays one chain. Until then (and if a box already had a chain) the legacy chain is
verified, exported and pruned like any other.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

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

#: The head of the legacy chain; a box's chain's head is ``audit_head:<box>`` (:func:`head_name`).
HEAD_NAME: Final = "audit_head"
#: The chain name of rows written before chains had boxes, until a box adopts them.
LEGACY_CHAIN: Final = ""
MAX_PAGE: Final = 1000

_T = TypeVar("_T")

_SELECT_CHAIN: Final = (
    "SELECT seq, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
    " FROM audit WHERE box = ? ORDER BY seq"
)
#: The one chain of a file from before chains had boxes (no box or seq column): place = id.
#: The parameter (always the legacy chain's name) keeps the call the same as _SELECT_CHAIN's.
_SELECT_OLD_CHAIN: Final = (
    "SELECT id, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
    " FROM audit WHERE ? = '' ORDER BY id"
)
#: Every chain: those with rows, and those with a head (whose rows may all have been deleted).
_SELECT_CHAIN_NAMES: Final = (
    "SELECT box FROM audit UNION SELECT substr(name, 12) FROM meta"
    " WHERE substr(name, 1, 11) = 'audit_head:' UNION"
    " SELECT '' FROM meta WHERE name = 'audit_head'"
)
_SELECT_HEADS: Final = (
    "SELECT name, value FROM meta WHERE name = 'audit_head' OR substr(name, 1, 11) = 'audit_head:'"
)
_INSERT_HEAD: Final = (
    "INSERT INTO audit (box, seq, ts, kind, event, tenant, actor, source_ip, outcome, detail,"
    " prev_hash, hash, sig)"
)
_ROW_PLACEHOLDERS: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: A row's columns in ChainRow field order (the INSERT's order). Flat values only, so no copy
#: is needed: ``dataclasses.astuple`` deep-copied each one, a tenth of the audit cost per row.
_row_params: Final = attrgetter(*(f.name for f in fields(ChainRow)))
#: Rows per INSERT statement: 13 parameters each stays far below SQLite's 32766-variable cap.
_INSERT_CHUNK: Final = 500
_SELECT_RECORDS: Final = (
    "SELECT id, ts, event, tenant, actor, source_ip, outcome, detail, kind, box, seq FROM audit"
)


def head_name(box: str) -> str:
    """The ``meta`` row that holds the head of ``box``'s chain."""
    return HEAD_NAME if box == LEGACY_CHAIN else f"{HEAD_NAME}:{box}"


def chain_label(box: str) -> str:
    """``box`` as reports name its chain."""
    return box if box != LEGACY_CHAIN else "(legacy, not yet adopted by a box)"


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
    #: The box whose chain holds the row ("" for the legacy chain), and its place there.
    box: str = ""
    seq: int = 0


def _record(r: Sequence[Any]) -> AuditRecord:
    return AuditRecord(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8], r[9], int(r[10])
    )


@dataclass(frozen=True)
class ChainVerification:
    """One box's chain as verification found it."""

    box: str
    #: Rows in the chain (its checkpoint included).
    rows: int
    #: The chain's last row as its signed head names it (None: no head, or an altered one).
    head: int | None
    verification: AuditVerification

    @property
    def ok(self) -> bool:
        return self.verification.ok


def combined(chains: Sequence[ChainVerification]) -> AuditVerification:
    """One verdict for every chain: intact if all are, else the first broken chain's, naming
    its box."""
    checked = sum(chain.verification.rows_checked for chain in chains)
    for chain in chains:
        if not chain.ok:
            v = chain.verification
            message = f"The audit chain of box {chain_label(chain.box)}: {v.message}"
            return replace(v, rows_checked=checked, message=message)
    return AuditVerification(True, checked)


# Not frozen, though nothing changes an entry once made (see ChainRow): one is made per audited
# request.
@dataclass
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
    """``entry`` as it can be stored, with its detail as stored (:func:`detail_json`).

    Audit rows carry what clients sent (tool names, user agents, ids), so a row may hold text
    that is not valid UTF-8 (a lone surrogate from a ``"\\ud800"`` JSON escape), a non-finite
    number or a value JSON cannot spell. Such a row is stored with that text escaped
    (``\\ud800`` as six characters), numbers as strings and the rest as its ``repr``, and
    marked with ``_escaped``: one client's odd input never costs other rows their place in the
    batch, and what is stored is always valid UTF-8 JSON.
    """
    try:
        detail = detail_json(entry.detail)
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


#: orjson declines (TypeError) dataclasses, dates, and subclasses of str, int, dict and list,
#: which json spells by another rule or refuses. UUIDs and enum members, which json refuses (the
#: row is then stored escaped), orjson spells as their values; the box puts neither in a detail.
_DETAIL_OPTIONS: Final = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def detail_json(detail: dict[str, Any]) -> str:
    """A row's detail as stored: compact JSON with sorted keys, hashed exactly as stored (so
    any one spelling of a value verifies). orjson spells a usual detail ten times faster than
    :func:`canonical_json`, which differs from it only in how floats beyond 1e16 or below 1e-4
    are written; a detail orjson declines (a lone surrogate, an integer beyond 64 bits, a
    non-string key) or that holds ``null`` (orjson writes NaN and infinities so, where json
    refuses them) takes :func:`canonical_json`, and with it the same errors as ever."""
    try:
        spelled = orjson.dumps(detail, option=_DETAIL_OPTIONS)
    except TypeError:
        return canonical_json(detail)
    if b"null" in spelled:
        return canonical_json(detail)
    return spelled.decode()


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


#: What a judge makes of one chain: its rows in order, its head record, and its box.
Judge = Callable[[Iterable[ChainRow], bytes | None, str], _T]


def _read_chains(path: Path, judge: Judge[_T]) -> list[tuple[str, int, bytes | None, _T]]:
    """``judge`` on every chain of the database file at ``path``: (box, rows, head, verdict)
    per chain, in box order, all read in one snapshot. A file from before chains had boxes
    (a backup of an older release) is one legacy chain."""
    try:
        conn = open_snapshot(path)
        try:
            # One read transaction, so the heads and the rows come from the same snapshot.
            conn.execute("BEGIN")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(audit)")}
            heads = {name: bytes(value) for name, value in conn.execute(_SELECT_HEADS)}
            if "seq" not in columns:
                select_rows = _SELECT_OLD_CHAIN
                any_row = conn.execute("SELECT 1 FROM audit").fetchone()
                boxes = [LEGACY_CHAIN] if heads or any_row else []
                count_sql = "SELECT count(*) FROM audit WHERE ? = ''"
            else:
                select_rows = _SELECT_CHAIN
                boxes = sorted(row[0] for row in conn.execute(_SELECT_CHAIN_NAMES))
                count_sql = "SELECT count(*) FROM audit WHERE box = ?"
            found = []
            for box in boxes:
                (count,) = conn.execute(count_sql, (box,)).fetchone()
                rows = (ChainRow(*row) for row in conn.execute(select_rows, (box,)))
                head = heads.get(head_name(box))
                found.append((box, int(count), head, judge(rows, head, box)))
            return found
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise translate(exc) from exc


def _chain_verifications(
    found: Sequence[tuple[str, int, bytes | None, AuditVerification]], crypto: Crypto
) -> list[ChainVerification]:
    reports = []
    for box, count, head, verification in found:
        decoded = None if head is None else decode_head(crypto, head, box)
        reports.append(
            ChainVerification(box, count, None if decoded is None else decoded[0], verification)
        )
    return reports


def verify_file_chains(path: Path, crypto: Crypto) -> list[ChainVerification]:
    """Every chain of the database file at ``path`` (a live database or a backup), verified."""
    return _chain_verifications(_read_chains(path, partial(check_chain, crypto)), crypto)


def verify_file(path: Path, crypto: Crypto) -> AuditVerification:
    """Verify every chain of the database file at ``path``: one verdict (see :func:`combined`)."""
    return combined(verify_file_chains(path, crypto))


def scan_file(path: Path, crypto: Crypto) -> list[ChainFinding]:
    """:func:`scan_chain` on every chain of the database file at ``path``."""
    found = _read_chains(path, partial(scan_chain, crypto))
    return [finding for *_, findings in found for finding in findings]


class Audit:
    def __init__(
        self, db: Database, crypto: Crypto, clock: Callable[[], float], box_id: str
    ) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock
        self._box = box_id
        #: Whether this box has looked for a legacy chain to adopt (once per process).
        self._adopted = False

    @property
    def box_id(self) -> str:
        return self._box

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
        """Append ``entries`` in order to this box's chain, in one transaction; returns their
        ids (database-wide row numbers, in the entries' order).

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
            # The head is read, extended and moved: one writer per chain. Only this box
            # writes this chain, so other boxes never wait here.
            await tx.lock("audit", self._box)
            if not self._adopted:
                await self._adopt_legacy_chain(tx)
            last_id, prev = await self._head(tx)
            rows: list[ChainRow] = []
            for offset, (entry, detail) in enumerate(zip(entries, details, strict=True), 1):
                row = entry.chain_row(last_id + offset, now, detail, prev)
                row = row.with_hash(row_hash(self._crypto, prev, row))
                rows.append(row)
                prev = row.hash
            ids: dict[int, int] = {}
            for chunk_start in range(0, len(rows), _INSERT_CHUNK):
                chunk = rows[chunk_start : chunk_start + _INSERT_CHUNK]
                ids.update(await _insert_many(tx, self._box, chunk))
            await tx.run(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (
                    head_name(self._box),
                    encode_head(self._crypto, rows[-1].id, rows[-1].hash, self._box),
                ),
            )
        self._adopted = True
        return [ids[row.id] for row in rows]

    async def _adopt_legacy_chain(self, tx: Tx) -> None:
        """Make the legacy chain this box's, if there is one and this box has no chain yet
        (see the module doc): rows relabelled, head renamed and bound to the box, no row
        hash touched. Locks taken in the order own chain, then legacy, by every box."""
        await tx.lock("audit", LEGACY_CHAIN)
        legacy_head = await tx.one("SELECT value FROM meta WHERE name = ?", (HEAD_NAME,))
        legacy_row = await tx.one("SELECT 1 FROM audit WHERE box = ? LIMIT 1", (LEGACY_CHAIN,))
        if legacy_head is None and legacy_row is None:
            return
        own_head = await tx.one("SELECT 1 FROM meta WHERE name = ?", (head_name(self._box),))
        own_row = await tx.one("SELECT 1 FROM audit WHERE box = ? LIMIT 1", (self._box,))
        if own_head is not None or own_row is not None:
            return  # this box has its own chain: the legacy one stays as it is
        await tx.run("UPDATE audit SET box = ? WHERE box = ?", (self._box, LEGACY_CHAIN))
        if legacy_head is not None:
            blob = bytes(legacy_head[0])
            head = decode_head(self._crypto, blob)
            # An altered legacy head is moved as it is, so verification keeps reporting it.
            value = blob if head is None else encode_head(self._crypto, *head, self._box)
            await tx.run(
                "INSERT INTO meta (name, value) VALUES (?, ?)", (head_name(self._box), value)
            )
            await tx.run("DELETE FROM meta WHERE name = ?", (HEAD_NAME,))

    async def _head(self, tx: Tx) -> tuple[int, bytes]:
        head_row = await tx.one("SELECT value FROM meta WHERE name = ?", (head_name(self._box),))
        head = None
        if head_row is not None:
            head = decode_head(self._crypto, bytes(head_row[0]), self._box)
        if head is None:
            # Keep logging even if the head was tampered with: link to the real last row;
            # verification keeps reporting the head problem.
            last = await tx.one(
                "SELECT seq, hash FROM audit WHERE box = ? ORDER BY seq DESC LIMIT 1",
                (self._box,),
            )
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
        """A page of rows of every chain, by their database-wide ids.

        With ``since_id``: rows after it, oldest first (follow the log: pass the last id back).
        Otherwise: newest first, below ``before_id`` if given (page back: pass the last id).
        """
        where, params = _filters(tenant, event)
        for clause, value in (("id > ?", since_id), ("id < ?", before_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = _SELECT_RECORDS
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id " + ("ASC" if since_id is not None else "DESC") + " LIMIT ?"
        params.append(max(1, min(limit, MAX_PAGE)))
        async with self._db.read() as tx:
            rows = await tx.all(sql, params)
        return [_record(r) for r in rows]

    async def audit_by_time(
        self,
        *,
        after: tuple[float, str, int] | None = None,
        tenant: str | None = None,
        event: str | None = None,
        since_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """A page of every chain's rows merged in time order (ties by box, then place in the
        chain), after the row ``after`` = (ts, box, seq) if given: pass the last row's back."""
        where, params = _filters(tenant, event)
        if since_id is not None:
            where.append("id > ?")
            params.append(since_id)
        if after is not None:
            where.append("(ts > ? OR (ts = ? AND (box > ? OR (box = ? AND seq > ?))))")
            params += [after[0], after[0], after[1], after[1], after[2]]
        sql = _SELECT_RECORDS
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, box, seq LIMIT ?"
        params.append(max(1, min(limit, MAX_PAGE)))
        async with self._db.read() as tx:
            rows = await tx.all(sql, params)
        return [_record(r) for r in rows]

    async def verify_audit_chains(self) -> list[ChainVerification]:
        """Every box's chain, verified, in box order."""
        found = await self._judge_chains(partial(check_chain, self._crypto))
        return _chain_verifications(found, self._crypto)

    async def verify_audit_chain(self) -> AuditVerification:
        """Every chain, verified: one verdict (see :func:`combined`)."""
        return combined(await self.verify_audit_chains())

    async def scan_audit_chain(self) -> list[ChainFinding]:
        """Every problem in every chain (see :func:`scan_chain`), read like verification."""
        found = await self._judge_chains(partial(scan_chain, self._crypto))
        return [finding for *_, findings in found for finding in findings]

    async def _judge_chains(self, judge: Judge[_T]) -> list[tuple[str, int, bytes | None, _T]]:
        """``judge`` over each chain's head and rows, all read in one snapshot.

        On SQLite: a separate read-only connection in a worker thread, which under WAL sees a
        consistent snapshot and does not hold up the writer while it hashes every row. Other
        backends: the rows are held in memory, and hashed in a worker thread."""
        self._db.check_open()
        if isinstance(self._db, SqliteDatabase):
            return await asyncio.to_thread(_read_chains, self._db.path, judge)
        async with self._db.snapshot() as tx:
            heads = {str(r[0]): bytes(r[1]) for r in await tx.all(_SELECT_HEADS)}
            boxes = sorted(str(r[0]) for r in await tx.all(_SELECT_CHAIN_NAMES))
            chains = [
                (box, [ChainRow(*r) for r in await tx.all(_SELECT_CHAIN, (box,))]) for box in boxes
            ]

        def judge_all() -> list[tuple[str, int, bytes | None, _T]]:
            found = []
            for box, rows in chains:
                head = heads.get(head_name(box))
                found.append((box, len(rows), head, judge(rows, head, box)))
            return found

        return await asyncio.to_thread(judge_all)

    async def prune_audit(self, older_than: float) -> int:
        """Drop the oldest rows with ``ts < older_than`` from every chain; returns how many
        event rows went. Each chain is pruned under its own lock, and ends up starting at a
        signed checkpoint.

        Rows go as a prefix of each chain (up to its first row not old enough) so its places
        stay contiguous.

        When no event row is old enough, nothing would go, and the chains are not verified:
        verifying hashes every row in a worker thread that holds the interpreter's lock for
        most of it, which on a busy box slowed every request by a fifth for as long as it ran
        (seconds for a few hundred thousand rows), once an hour and 30 s after start.
        """
        async with self._db.snapshot() as tx:
            old_enough = await tx.one(
                "SELECT 1 FROM audit WHERE kind = 'event' AND ts < ? LIMIT 1", (older_than,)
            )
        if old_enough is None:
            return 0
        chains = await self.verify_audit_chains()
        broken = [chain for chain in chains if not chain.ok]
        if broken:
            raise StoreError(
                "Refusing to prune the audit log: verification failed "
                f"({combined(broken).message}) and pruning would discard the evidence."
            )
        pruned = 0
        for chain in chains:
            pruned += await self._prune_chain(chain.box, older_than)
        return pruned

    async def _prune_chain(self, box: str, older_than: float) -> int:
        async with self._db.write() as tx:
            await tx.lock("audit", box)
            bounds = await tx.one(
                "SELECT (SELECT min(seq) FROM audit WHERE box = ?1 AND ts >= ?2),"
                " (SELECT max(seq) FROM audit WHERE box = ?1),"
                " (SELECT min(seq) FROM audit WHERE box = ?1)",
                (box, older_than),
            )
            assert bounds is not None
            keep_from, max_seq, min_seq = bounds
            last_pruned = max_seq if keep_from is None else keep_from - 1
            if last_pruned is None or last_pruned < min_seq:
                return 0
            if last_pruned == min_seq:
                first = await tx.one(
                    "SELECT kind FROM audit WHERE box = ? AND seq = ?", (box, min_seq)
                )
                if first is not None and first[0] == "checkpoint":
                    return 0  # only the existing checkpoint is old enough
            counted = await tx.one(
                "SELECT count(*) FROM audit WHERE box = ? AND seq <= ? AND kind = 'event'",
                (box, last_pruned),
            )
            target = await tx.one(
                "SELECT id, ts, hash FROM audit WHERE box = ? AND seq = ?", (box, last_pruned)
            )
            assert counted is not None
            assert target is not None
            pruned = int(counted[0])
            detail = canonical_json(
                {"pruned_through": last_pruned, "rows_pruned": pruned, "pruned_at": self._clock()}
            )
            checkpoint = ChainRow(
                id=last_pruned, ts=float(target[1]), kind="checkpoint", event="audit.checkpoint",
                tenant=None, actor="smcp-box", source_ip=None, outcome="ok", detail=detail,
                prev_hash=ZERO_HASH, hash=bytes(target[2]), sig=None,
            )  # fmt: skip
            checkpoint = replace(checkpoint, sig=checkpoint_sig(self._crypto, checkpoint))
            await tx.run("DELETE FROM audit WHERE box = ? AND seq <= ?", (box, last_pruned))
            # The checkpoint takes the row number of the last row it stands for, so paging by
            # id still finds it first.
            await tx.run(
                "INSERT INTO audit (id, box, seq, ts, kind, event, tenant, actor, source_ip,"
                " outcome, detail, prev_hash, hash, sig)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (int(target[0]), box, *_row_params(checkpoint)),
            )
        return pruned


def _filters(tenant: str | None, event: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (("tenant = ?", tenant), ("event = ?", event)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return where, params


async def _insert_many(tx: Tx, box: str, rows: Sequence[ChainRow]) -> dict[int, int]:
    """Insert ``rows`` of ``box``'s chain; their database-wide ids by place in the chain."""
    # One multi-row INSERT per chunk: each statement is one hop to the connection thread, which
    # is most of the cost of a row once the commit is shared by the whole batch.
    values = ", ".join([_ROW_PLACEHOLDERS] * len(rows))
    params = [value for row in rows for value in (box, *_row_params(row))]
    returned = await tx.all(f"{_INSERT_HEAD} VALUES {values} RETURNING seq, id", params)
    return {int(seq): int(row_id) for seq, row_id in returned}
