"""How much cheaper per row batched audit appends are than one transaction per row.

Usage: python -m bench.audit_batch_bench [--rows 400] [--batch 100] [--rounds 5]

Each round appends ``rows`` audit rows to a fresh store one per transaction, then as many again
in batches of ``batch``; the median round counts. (The unit tests check the mechanism, one
transaction per batch; this measures what it buys.)

Target: batches of 100 are at least 4x cheaper per row (typically 20-40x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from smcp_box.store import AuditEntry, Store


def entries(n: int, start: int = 0) -> list[AuditEntry]:
    return [
        AuditEntry("tool.call", "acme", f"key:{i}", "192.0.2.7", "ok", {"n": i})
        for i in range(start, start + n)
    ]


async def run_round(path: Path, rows: int, batch: int) -> float:
    """Seconds per row one at a time divided by seconds per row in batches."""
    store = await Store.open(path, os.urandom(32))
    try:
        started = time.perf_counter()
        for entry in entries(rows):
            await store.append_audit_many([entry])
        single = time.perf_counter() - started
        started = time.perf_counter()
        for chunk in range(0, rows, batch):
            await store.append_audit_many(entries(min(batch, rows - chunk), start=chunk))
        batched = time.perf_counter() - started
    finally:
        await store.close()
    return single / batched


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory(prefix="smcp-audit-bench-") as tmp:
        for n in range(args.rounds):
            ratios.append(await run_round(Path(tmp) / f"round-{n}.db", args.rows, args.batch))
    ratio = statistics.median(ratios)
    print(f"rows: {args.rows}, batch: {args.batch}, rounds: {args.rounds}")
    each = ", ".join(f"{r:.1f}" for r in ratios)
    print(f"batched is {ratio:.1f}x cheaper per row (rounds: {each})")
    print("target, at least 4x:", "MET" if ratio >= 4 else "NOT MET")


if __name__ == "__main__":
    asyncio.run(main())
