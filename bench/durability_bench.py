"""What durability against power loss costs: kv sets per second with SQLite's synchronous=NORMAL
against FULL (the box's setting), both under WAL.

Usage: python bench/durability_bench.py [--sets 2000] [--rounds 5] [--block 100] [--dir DIR]

Each kv_set is one transaction, as a tenant's kv_set is. FULL fsyncs the WAL at every commit;
NORMAL only at checkpoints. Each round opens a fresh store per mode in ``--dir`` (default: a
temporary directory; pass a directory on the disk the box's state lives on, since fsync costs
are the disk's), and the modes take turns in blocks so that drift in machine load hits both
alike; the median round counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from smcp_box.store import Store
from smcp_box.store.db import Synchronous

MODES: tuple[Synchronous, ...] = ("NORMAL", "FULL")
Rates = dict[Synchronous, float]


async def run_round(directory: Path, sets: int, block: int) -> Rates:
    """Both modes, interleaved in blocks of ``block`` sets; returns kv sets/s per mode."""
    stores: dict[Synchronous, Store] = {}
    for mode in MODES:
        name = f"durability-{mode.lower()}-{time.monotonic_ns()}.sqlite3"
        stores[mode] = await Store.open(directory / name, os.urandom(32), synchronous=mode)
    elapsed: dict[Synchronous, float] = dict.fromkeys(MODES, 0.0)
    try:
        value = "v" * 200
        for store in stores.values():
            for i in range(20):  # warm the connection and statement cache, untimed
                await store.kv_set("bench", f"warm-{i}", value)
        for n, start_at in enumerate(range(0, sets, block)):
            for mode in MODES if n % 2 == 0 else tuple(reversed(MODES)):
                store = stores[mode]
                start = time.perf_counter()
                for i in range(start_at, min(start_at + block, sets)):
                    await store.kv_set("bench", f"key-{i % 500}", value)
                elapsed[mode] += time.perf_counter() - start
    finally:
        for store in stores.values():
            await store.close()
    return {mode: sets / seconds for mode, seconds in elapsed.items()}


async def measure(directory: Path, sets: int, rounds: int, block: int) -> list[Rates]:
    return [await run_round(directory, sets, block) for _ in range(rounds)]


def report(rounds: list[Rates], sets: int, block: int) -> list[str]:
    ratio = statistics.median(r["FULL"] / r["NORMAL"] for r in rounds)
    lines = [f"kv sets per mode per round: {sets}, rounds: {len(rounds)}, blocks of {block}"]
    for mode in MODES:
        rates = [r[mode] for r in rounds]
        each = ", ".join(f"{rate:.0f}" for rate in rates)
        median = statistics.median(rates)
        lines.append(f"synchronous={mode:<6}: {median:8.0f} kv set/s  (rounds: {each})")
    lines.append(f"ratio FULL/NORMAL (median of rounds): {ratio:.3f}  (cost {1 - ratio:+.1%})")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None, help="where the store files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smcp-durability-", dir=args.dir) as tmp:
        rounds = await measure(Path(tmp), args.sets, args.rounds, args.block)
    print("\n".join(report(rounds, args.sets, args.block)))


if __name__ == "__main__":
    asyncio.run(main())
