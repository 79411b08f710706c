"""The fleet area: one heartbeat row per box sharing the store (docs/scale-out.md, "Box
identity and drain").

A box claims its row at start (:meth:`Fleet.claim`), rewrites it every ``[cluster]
heartbeat_s`` (:meth:`Fleet.beat`) and marks it stopped on a clean stop (:meth:`Fleet.stop`).
Readers (``smcp-box status``, the TUI, ``lb-config``) get every row with a derived status from
:meth:`Fleet.boxes`.

Invariants:

* A row belongs to the process whose ``instance`` (:func:`new_instance`: host, PID, random)
  it carries. Only that process beats it or marks it stopped; a claim by another instance
  succeeds only when the row is stopped, its last beat is at least ``dead_after_s`` old (the
  other box is gone), or its writer was a process of this host that no longer runs (a box
  restarted after a crash need not wait ``dead_after_s``); so two live boxes never share an id.
* The claim is a read-modify-write under :meth:`~.backend.Tx.lock` on the box id: two
  processes claiming one id at once are serialized, on SQLite and across PostgreSQL clients.
* Times are the writer's clock; boxes of a fleet are assumed to keep their clocks in step
  (NTP) to well within ``dead_after_s``.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from smcp_box.errors import ConfigError

from .backend import Database, Row

#: What a box writes in its row.
BoxState = Literal["up", "draining", "stopped"]
#: What readers see: the written state, or ``gone`` when stopped or silent too long.
BoxStatus = Literal["up", "draining", "gone"]

_SELECT: Final = (
    "SELECT box_id, instance, address, state, started_at, last_beat, sessions, version FROM boxes"
)


@dataclass(frozen=True)
class BoxRecord:
    """One box's heartbeat row, with its status derived at the time it was read."""

    box_id: str
    instance: str
    #: host:port of the box's MCP listener (what a load balancer sends requests to).
    address: str
    state: BoxState
    started_at: float
    last_beat: float
    #: Open sessions the box counted at its last beat.
    sessions: int
    version: str
    status: BoxStatus
    #: Seconds between the last beat and the read.
    beat_age_s: float


def new_instance() -> str:
    """A new process's instance id: ``<host>/<pid>/<random>``."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(6)}"


def ended_on_this_host(instance: str) -> bool:
    """Whether ``instance`` was a process of this host, other than this one, that has ended."""
    host, _, rest = instance.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # a process of another user has that PID: it runs
    return False


def derive_status(state: str, beat_age_s: float, dead_after_s: float) -> BoxStatus:
    """``gone`` for a stopped box or one silent for ``dead_after_s``; else its state."""
    if state == "stopped" or beat_age_s >= dead_after_s:
        return "gone"
    return "draining" if state == "draining" else "up"


@dataclass(frozen=True)
class Beat:
    """What a box reports about itself in each heartbeat."""

    box_id: str
    instance: str
    address: str
    version: str
    state: BoxState = "up"
    sessions: int = 0


class Fleet:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, beat: Beat, *, dead_after_s: float) -> None:
        """Take ``beat.box_id``'s row for this process (``beat.instance``) and write its first
        beat. ConfigError naming the other box's address and last beat, and the fix, when a
        live box of another instance holds the id."""
        now = self._clock()
        async with self._db.write() as tx:
            await tx.lock("fleet", beat.box_id)
            row = await tx.one(_SELECT + " WHERE box_id = ?", (beat.box_id,))
            if row is not None:
                held = _record(row, now, dead_after_s)
                taken = held.instance != beat.instance and held.status != "gone"
                if taken and not ended_on_this_host(held.instance):
                    raise ConfigError(
                        f"Box id {beat.box_id!r} is in use by a running box at {held.address} "
                        f"(last heartbeat {held.beat_age_s:.1f} s ago, {held.status}). Every box "
                        "sharing a database needs its own id: set [cluster] box_id (or "
                        "SMCP_BOX_CLUSTER_BOX_ID) to a name no other box uses, or stop that "
                        f"box; a silent box's id is free again after {dead_after_s:g} s."
                    )
            await tx.run(
                "INSERT INTO boxes (box_id, instance, address, state, started_at, last_beat,"
                " sessions, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (box_id) DO UPDATE SET instance = excluded.instance,"
                " address = excluded.address, state = excluded.state,"
                " started_at = excluded.started_at, last_beat = excluded.last_beat,"
                " sessions = excluded.sessions, version = excluded.version",
                (
                    beat.box_id,
                    beat.instance,
                    beat.address,
                    beat.state,
                    now,
                    now,
                    beat.sessions,
                    beat.version,
                ),
            )

    async def beat(self, beat: Beat) -> bool:
        """Rewrite this process's row with ``beat`` and the time now. False when the row is no
        longer this instance's (another process claimed the id after this one fell silent for
        ``dead_after_s``): the caller must not serve as that box any more."""
        rows = await self._db.write_one(
            "UPDATE boxes SET address = ?, state = ?, last_beat = ?, sessions = ?, version = ?"
            " WHERE box_id = ? AND instance = ? RETURNING box_id",
            (
                beat.address,
                beat.state,
                self._clock(),
                beat.sessions,
                beat.version,
                beat.box_id,
                beat.instance,
            ),
        )
        return bool(rows)

    async def stop(self, box_id: str, instance: str) -> bool:
        """Mark this process's row stopped (a clean stop: readers see the box gone at once and
        its id is free); False when the row was no longer this instance's."""
        rows = await self._db.write_one(
            "UPDATE boxes SET state = 'stopped', last_beat = ?"
            " WHERE box_id = ? AND instance = ? RETURNING box_id",
            (self._clock(), box_id, instance),
        )
        return bool(rows)

    async def boxes(self, *, dead_after_s: float) -> list[BoxRecord]:
        """Every box that ever beat on this store, by box id, with its status now."""
        async with self._db.read() as tx:
            rows = await tx.all(_SELECT + " ORDER BY box_id")
        now = self._clock()
        return [_record(row, now, dead_after_s) for row in rows]

    async def forget(self, box_id: str) -> bool:
        """Delete a box's row (a box taken out of the fleet for good); whether there was one."""
        rows = await self._db.write_one(
            "DELETE FROM boxes WHERE box_id = ? RETURNING box_id", (box_id,)
        )
        return bool(rows)


def _record(row: Row, now: float, dead_after_s: float) -> BoxRecord:
    box_id, instance, address, state, started_at, last_beat, sessions, version = row
    age = max(0.0, now - float(last_beat))
    return BoxRecord(
        box_id=box_id,
        instance=instance,
        address=address,
        state=state,
        started_at=float(started_at),
        last_beat=float(last_beat),
        sessions=int(sessions),
        version=version,
        status=derive_status(state, age, dead_after_s),
        beat_age_s=age,
    )
