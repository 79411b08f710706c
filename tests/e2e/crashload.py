"""Write load on the notes tenant while the box is SIGKILLed, and the checks after each restart.

Shared by the suite's crash test (tests/e2e/test_crash_durability.py, a few rounds) and the
bounded soak script (tests/soak/crash_soak.py, many). Clients speak the stateless 2026-07-28
era, one POST per call. Each client creates notes and updates its own earlier ones, one call
at a time, and records what the box acknowledged. The box is killed when the acknowledged
writes of a round reach a number drawn from the seeded generator, with calls in flight: those
are unacknowledged and may or may not have landed.

After each restart: every acknowledged create is there with its title, no two acknowledged
creates share an id, every note's body is its last acknowledged one or a later write of the
same client (an unacknowledged one may have committed), and SQLite's integrity_check is ok.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import modern_call_tool


@dataclass
class Ledger:
    """What the box acknowledged, across every round."""

    #: note id -> title, for every acknowledged note_create.
    created: dict[int, str] = field(default_factory=dict)
    #: note id -> every body sent for it in order, and how many of them were acknowledged.
    bodies: dict[int, list[str]] = field(default_factory=dict)
    acked_bodies: dict[int, int] = field(default_factory=dict)
    duplicate_ids: list[int] = field(default_factory=list)
    creates: int = 0
    updates: int = 0
    unacknowledged: int = 0


@dataclass
class RoundResult:
    acknowledged: int
    kill_after: int


class _Killed(Exception):
    """The box went away under this client: its call is unacknowledged."""


async def _call(
    http: httpx.AsyncClient, box: BoxProcess, key: str, tool: str, args: dict[str, Any]
) -> dict[str, Any]:
    try:
        reply = await modern_call_tool(http, box.url("notes"), key, tool, args)
    except (httpx.TransportError, ValueError) as exc:
        raise _Killed from exc
    result = reply.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        raise AssertionError(f"{tool} failed while the box was up: {reply}")
    return result


async def run_round(
    box: BoxProcess, key: str, ledger: Ledger, rng: random.Random, clients: int, kill_after: int
) -> RoundResult:
    """Load the box until ``kill_after`` writes are acknowledged, then SIGKILL it."""
    acknowledged = 0
    killed = asyncio.Event()

    def kill_if_due() -> None:
        if acknowledged >= kill_after and not killed.is_set():
            killed.set()
            assert box.proc is not None
            box.proc.send_signal(signal.SIGKILL)

    async def client(number: int, seed: int) -> None:
        nonlocal acknowledged
        mine: list[int] = []
        crng = random.Random(seed)
        async with httpx.AsyncClient(timeout=30) as http:
            while not killed.is_set():
                try:
                    if mine and crng.random() < 0.4:
                        note = crng.choice(mine)
                        sent = ledger.bodies[note]
                        body = f"c{number} v{len(sent)}"
                        sent.append(body)
                        await _call(http, box, key, "note_update", {"id": note, "body": body})
                        ledger.acked_bodies[note] = len(sent)
                        ledger.updates += 1
                    else:
                        title = f"c{number} n{ledger.creates}-{crng.randrange(1 << 30)}"
                        result = await _call(
                            http, box, key, "note_create", {"title": title, "body": "v0"}
                        )
                        note = int(result["structuredContent"]["id"])
                        if note in ledger.created:
                            ledger.duplicate_ids.append(note)
                        ledger.created[note] = title
                        ledger.bodies[note] = ["v0"]
                        ledger.acked_bodies[note] = 1
                        ledger.creates += 1
                        mine.append(note)
                except _Killed:
                    ledger.unacknowledged += 1
                    return
                acknowledged += 1
                kill_if_due()

    seeds = [rng.randrange(1 << 30) for _ in range(clients)]
    await asyncio.gather(*(client(n, seed) for n, seed in enumerate(seeds)))
    assert box.proc is not None
    await asyncio.to_thread(box.proc.wait, 30)
    box.proc = None
    return RoundResult(acknowledged, kill_after)


def integrity_check(box: BoxProcess) -> str:
    """SQLite's verdict on the box's database (the box is down: nothing writes meanwhile)."""
    conn = sqlite3.connect(state_file(box))
    try:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


async def verify(box: BoxProcess, key: str, ledger: Ledger) -> int:
    """Check every acknowledged write against the restarted box; returns notes checked."""
    assert ledger.duplicate_ids == [], f"ids handed out twice: {ledger.duplicate_ids}"
    async with httpx.AsyncClient(timeout=30) as http:
        listing = await _call(http, box, key, "note_list", {})
        listed = {n["id"]: n["title"] for n in listing["structuredContent"]["notes"]}
        missing = {i: t for i, t in ledger.created.items() if listed.get(i) != t}
        assert not missing, f"acknowledged notes lost or changed: {missing}"
        for note, sent in ledger.bodies.items():
            got = await _call(http, box, key, "note_get", {"id": note})
            body = got["structuredContent"]["body"]
            acked = ledger.acked_bodies[note]
            assert body in sent[acked - 1 :], (
                f"note {note}: body {body!r}, but {sent[acked - 1]!r} was acknowledged "
                f"(sent in order: {sent})"
            )
            # What the box holds is now the baseline: a later body sent was not in flight.
            ledger.acked_bodies[note] = sent.index(body, acked - 1) + 1
            del sent[ledger.acked_bodies[note] :]
    return len(ledger.created)


def state_file(box: BoxProcess) -> Path:
    return box.workdir / "state" / "smcp-box.db"
