"""How many SSE events per second the store persists, with encryption on and off.

Usage: python bench/store_bench.py [--events 3000] [--rounds 5] [--payload-bytes 400]

Each round opens a fresh store file per mode and appends events to one session over two
interleaved streams (as a client with a GET stream and a POST stream would), with the default
per-session event cap, so pruning is part of the steady state. The two modes take turns in small
blocks, so drift in machine load hits both alike; the median round counts. ``encrypt=False``
exists only for this comparison and must never be used in production.

Target: encryption costs at most 15% of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from smcp_box.store import Store

Rates = dict[bool, float]


def make_payload(size: int, i: int) -> str:
    message = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"i": i}}
    filler = size - len(json.dumps(message)) - len(',"pad":""')
    message["params"]["pad"] = "x" * max(0, filler)  # type: ignore[index]
    return json.dumps(message)


async def run_round(directory: Path, events: int, block: int, payload_bytes: int) -> Rates:
    """Both modes, interleaved in blocks of ``block`` events; returns events/s per mode."""
    stores = {}
    for encrypt in (True, False):
        name = f"bench-{'enc' if encrypt else 'plain'}-{time.monotonic_ns()}.sqlite3"
        stores[encrypt] = await Store.open(directory / name, os.urandom(32), encrypt=encrypt)
    elapsed = {True: 0.0, False: 0.0}
    try:
        payloads = [make_payload(payload_bytes, i) for i in range(events)]
        for store in stores.values():
            await store.create_session("bench", "session-1", "2025-06-18", {"name": "bench"})
            for i in range(50):  # warm the connection and statement cache, untimed
                await store.append_event("bench", "session-1", "warmup", payloads[i])
        for n, start_at in enumerate(range(0, events, block)):
            # Alternate which mode goes first, so load drift hits both alike.
            for encrypt in (True, False) if n % 2 == 0 else (False, True):
                store = stores[encrypt]
                start = time.perf_counter()
                for i in range(start_at, min(start_at + block, events)):
                    stream = "get" if i % 2 else "post-1"
                    await store.append_event("bench", "session-1", stream, payloads[i])
                elapsed[encrypt] += time.perf_counter() - start
    finally:
        for store in stores.values():
            await store.close()
    return {mode: events / seconds for mode, seconds in elapsed.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--payload-bytes", type=int, default=400)
    args = parser.parse_args()

    rounds: list[Rates] = []
    with tempfile.TemporaryDirectory(prefix="smcp-store-bench-") as tmp:
        for _ in range(args.rounds):
            rounds.append(await run_round(Path(tmp), args.events, args.block, args.payload_bytes))

    enc = statistics.median(r[True] for r in rounds)
    plain = statistics.median(r[False] for r in rounds)
    ratio = statistics.median(r[True] / r[False] for r in rounds)
    print(f"events per mode per round: {args.events}, payload: {args.payload_bytes} B,")
    print(f"rounds: {args.rounds}, modes interleaved in blocks of {args.block} events")
    print(f"encrypt=False: {plain:8.0f} events/s  (rounds: {_fmt([r[False] for r in rounds])})")
    print(f"encrypt=True:  {enc:8.0f} events/s  (rounds: {_fmt([r[True] for r in rounds])})")
    print(f"ratio encrypted/plain (median of rounds): {ratio:.3f}  (cost {1 - ratio:+.1%})")
    print("target, encryption costs at most 15%:", "MET" if ratio >= 0.85 else "NOT MET")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    asyncio.run(main())
