"""The audit log's hash chain, without I/O: row hashes, the signed head and checkpoint, and
the checks that find edited, inserted and deleted rows (see :mod:`.audit` for the scheme)."""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from json.encoder import encode_basestring
from typing import Any, Final, Literal

from .crypto import Crypto, canonical_json, frame

ZERO_HASH: Final = bytes(32)

Problem = Literal["edited", "inserted", "deleted"]


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    problem: Problem | None = None
    message: str = "The audit chain is intact."


# Not frozen, though nothing changes a row once made: a frozen dataclass's constructor sets each
# field through object.__setattr__, which made building a row (twice per audit row written,
# once per row verified) cost seven times as much.
@dataclass
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
        return spell_flat_list(fields).encode()

    def with_hash(self, hash: bytes) -> ChainRow:
        """This row with its hash (``dataclasses.replace`` costs three constructors)."""
        return ChainRow(
            self.id, self.ts, self.kind, self.event, self.tenant, self.actor, self.source_ip,
            self.outcome, self.detail, self.prev_hash, hash, self.sig,
        )  # fmt: skip


def spell_flat_list(values: list[Any]) -> str:
    """``canonical_json(values)``, byte for byte, spelled directly when every value is an int,
    a finite float, a str or None (a row's content, written and verified for every audit row):
    the same per-value spellings ``json`` uses, without building an encoder per list."""
    parts: list[str] = []
    for value in values:
        kind = type(value)
        if kind is str:
            parts.append(encode_basestring(value))
        elif value is None:
            parts.append("null")
        elif kind is int:
            parts.append(int.__repr__(value))
        elif kind is float and math.isfinite(value):
            parts.append(float.__repr__(value))
        else:
            return canonical_json(values)  # anything else (and its errors): json's own way
    return "[" + ",".join(parts) + "]"


def row_hash(crypto: Crypto, prev_hash: bytes, row: ChainRow) -> bytes:
    return crypto.audit_mac(prev_hash + row.content())


def checkpoint_sig(crypto: Crypto, row: ChainRow) -> bytes:
    return crypto.audit_mac(frame("audit checkpoint", row.id, row.hash) + row.content())


def _head_mac(crypto: Crypto, body: bytes, box: str) -> bytes:
    # A box's head names its box, so that one chain's head cannot stand for another's; the
    # legacy chain (box "", written before chains had boxes) keeps its original framing.
    framed = frame("audit head", box, body) if box else frame("audit head", body)
    return crypto.audit_mac(framed)


def encode_head(crypto: Crypto, last_id: int, last_hash: bytes, box: str = "") -> bytes:
    body = last_id.to_bytes(8, "big") + last_hash
    return body + _head_mac(crypto, body, box)


def decode_head(crypto: Crypto, blob: bytes, box: str = "") -> tuple[int, bytes] | None:
    """The (id, hash) of the last row of ``box``'s chain, or None if the head was altered."""
    body, tag = blob[:40], blob[40:]
    if len(blob) != 72 or not hmac.compare_digest(tag, _head_mac(crypto, body, box)):
        return None
    return int.from_bytes(body[:8], "big"), body[8:]


def _bad(checked: int, bad_id: int, problem: Problem, message: str) -> AuditVerification:
    return AuditVerification(False, checked, bad_id, problem, message)


def check_chain(
    crypto: Crypto, rows: Iterable[ChainRow], head_blob: bytes | None, box: str = ""
) -> AuditVerification:
    """Verify one chain's rows (in id order, ``id`` being the row's place in the chain of
    ``box``) against the chain rules and its head record. No I/O."""
    it = iter(rows)
    current = next(it, None)
    if head_blob is None:
        if current is None:
            return AuditVerification(True, 0)
        return _bad(0, current.id, "deleted", "The audit head record is missing.")
    head = decode_head(crypto, head_blob, box)
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


@dataclass(frozen=True)
class ChainFinding:
    """One row (or run of ids) the chain says was tampered with."""

    id: int
    problem: Problem
    message: str
    #: The box whose chain holds the row ("" for the legacy chain).
    box: str = ""


#: A scan stops listing after this many findings (a wholesale rewrite would list every row).
MAX_FINDINGS: Final = 1000
#: How far a renumbered row's id is searched for, and for how many rows at most: enough for a
#: hand-made insertion or deletion, bounded for a log rewritten wholesale.
MAX_SHIFT: Final = 64
MAX_SEARCHES: Final = 256


class _Scan:
    """The state of :func:`scan_chain` as it walks the rows in id order."""

    def __init__(self, crypto: Crypto, head: tuple[int, bytes] | None) -> None:
        self.crypto = crypto
        self.head = head
        self.findings: list[ChainFinding] = []
        self.expected_id = 1
        self.expected_prev = ZERO_HASH
        self.before_prev = ZERO_HASH
        #: Claimed id minus the id the row was written with, after renumbering.
        self.shift = 0
        self.searches = MAX_SEARCHES
        self.last_bad: int | None = None

    def add(self, row_id: int, problem: Problem, message: str) -> None:
        self.findings.append(ChainFinding(row_id, problem, message))

    def written_id(self, row: ChainRow) -> int | None:
        """The id ``row`` was written with if its hash is genuine (None if it is not)."""
        if row.kind != "event":
            return None
        for original in dict.fromkeys((row.id, row.id - self.shift)):
            if self._made_as(row, original):
                return original
        if self.searches <= 0:
            return None
        self.searches -= 1
        for shift in range(-MAX_SHIFT, MAX_SHIFT + 1):
            if shift not in (0, self.shift) and self._made_as(row, row.id - shift):
                return row.id - shift
        return None

    def _made_as(self, row: ChainRow, row_id: int) -> bool:
        probe = row if row_id == row.id else replace(row, id=row_id)
        return row_id > 0 and hmac.compare_digest(
            row.hash, row_hash(self.crypto, row.prev_hash, probe)
        )

    def step(self, row: ChainRow) -> None:
        gap = row.id > self.expected_id
        if gap:
            first, last = self.expected_id, row.id - 1
            self.add(first, "deleted", f"Audit rows {first}..{last} are missing (deleted).")
        linked = hmac.compare_digest(row.prev_hash, self.expected_prev)
        original = self.written_id(row)
        if original is None:
            past_head = self.head is not None and row.id - self.shift > self.head[0]
            if past_head:
                self.add(row.id, "inserted", f"Audit row {row.id} was inserted.")
            else:
                self.add(row.id, "edited", f"Audit row {row.id} does not match its hash (edited).")
            self.last_bad = row.id
        else:
            follows_bad = self.last_bad == row.id - 1
            if follows_bad and not linked and hmac.compare_digest(row.prev_hash, self.before_prev):
                # This row links past the bad row before it: that row was slipped in.
                self.findings[-1] = ChainFinding(
                    row.id - 1, "inserted", f"Audit row {row.id - 1} was inserted."
                )
            if row.id - original != self.shift:
                self._renumbered(row, original)
            elif not linked and not gap and not follows_bad:
                self.add(
                    row.id, "deleted", f"Rows before audit row {row.id} were deleted or replaced."
                )
        self.expected_id = row.id + 1
        self.before_prev, self.expected_prev = self.expected_prev, row.hash

    def _renumbered(self, row: ChainRow, original: int) -> None:
        moved = row.id - original - self.shift
        self.shift = row.id - original
        problem: Problem = "inserted" if moved > 0 else "deleted"
        what = "inserted before it" if moved > 0 else "deleted before it"
        self.add(
            row.id,
            problem,
            f"Audit row {row.id} was written as row {original}: {abs(moved)} row(s) were {what} "
            "and the later rows renumbered.",
        )

    def finish(self, head_blob: bytes | None) -> None:
        last_id = self.expected_id - 1
        if self.head is None:
            if head_blob is None and last_id > 0:
                self.add(0, "deleted", "The audit head record is missing.")
            return
        head_id, head_hash = self.head
        last_written = last_id - self.shift
        if last_written < head_id:
            first = last_id + 1
            self.add(first, "deleted", f"Audit rows from {first} on are missing from the end.")
        elif (
            last_written == head_id
            and self.last_bad != last_id
            and not hmac.compare_digest(self.expected_prev, head_hash)
        ):
            self.add(last_id, "edited", f"Audit row {last_id} was replaced.")


def scan_chain(
    crypto: Crypto, rows: Iterable[ChainRow], head_blob: bytes | None, box: str = ""
) -> list[ChainFinding]:
    """Every problem in the chain, not only the first (which :func:`check_chain` classifies
    best). No I/O.

    Each row is judged on its own (its hash must be the MAC of its own content and link, which
    nobody without the key can forge) and by its link to the row stored before it, so that the
    scan resynchronises after a problem instead of flagging every later row: an edited row
    keeps its stored hash, which the next row still links to; an inserted row is skipped over by
    the next row's link; deleted rows leave a gap in ids or a broken link; and rows renumbered
    to hide either are recognised by the id their hash was made with.
    """
    head = None if head_blob is None else decode_head(crypto, head_blob, box)
    scan = _Scan(crypto, head)
    if head_blob is not None and head is None:
        scan.add(0, "edited", "The audit head record was altered.")
    it = iter(rows)
    row = next(it, None)
    if row is not None and row.kind == "checkpoint":
        if not hmac.compare_digest(row.sig or b"", checkpoint_sig(crypto, row)):
            scan.add(row.id, "edited", f"Checkpoint row {row.id} was altered.")
        scan.expected_id, scan.expected_prev = row.id + 1, row.hash
        row = next(it, None)
    while row is not None and len(scan.findings) < MAX_FINDINGS:
        scan.step(row)
        row = next(it, None)
    if len(scan.findings) < MAX_FINDINGS:
        scan.finish(head_blob)
    return [replace(finding, box=box) for finding in scan.findings]
