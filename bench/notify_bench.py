"""NOTIFY fan-out latency: from ``publish`` on one box's change feed to delivery on another's.

Usage: python bench/notify_bench.py [--notices 2000] [--boxes 3] [--dsn DSN] [--json]

Starts a throwaway PostgreSQL (tests/support/postgres.py) unless ``--dsn`` names one, opens one
:class:`~smcp_box.store.pg_notify.PgChangeFeed` per box, and has box 0 publish ``--notices``
changes one at a time, each waiting until every other box heard it (so the figure is the
latency of one change, not of a queue). Prints p50/p99/max in milliseconds over every
(change, receiving box) pair. Bounded: a change not heard within 10 s fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smcp_box.seams import Change
from smcp_box.store.changes import TOPIC_TENANT
from smcp_box.store.pg_notify import PgChangeFeed

HEARD_WITHIN_S = 10.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(dsn: str, notices: int, boxes: int) -> dict[str, float]:
    feeds = [PgChangeFeed(dsn, f"bench_{n}", channel="bench_changes") for n in range(boxes)]
    for feed in feeds:
        await feed.start()
    latencies: list[float] = []
    try:
        sent_at: dict[str, float] = {}
        waiting: dict[str, int] = {}
        all_heard: dict[str, asyncio.Event] = {}

        def heard(change: Change) -> None:
            now = time.perf_counter()
            if change.origin == feeds[0].box_id:
                latencies.append(now - sent_at[change.payload])
                waiting[change.payload] -= 1
                if waiting[change.payload] == 0:
                    all_heard[change.payload].set()

        for feed in feeds[1:]:
            feed.subscribe(TOPIC_TENANT, heard)
        for number in range(notices):
            payload = f"tenant_{number}"
            waiting[payload] = boxes - 1
            all_heard[payload] = asyncio.Event()
            sent_at[payload] = time.perf_counter()
            await feeds[0].publish(TOPIC_TENANT, payload)
            await asyncio.wait_for(all_heard[payload].wait(), HEARD_WITHIN_S)
    finally:
        for feed in feeds:
            await feed.close()
    millis = [value * 1000 for value in latencies]
    return {
        "notices": notices,
        "receivers": boxes - 1,
        "p50_ms": round(statistics.median(millis), 3),
        "p99_ms": round(percentile(millis, 0.99), 3),
        "max_ms": round(max(millis), 3),
    }


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    from tests.support.postgres import throwaway_postgres

    with throwaway_postgres() as started:
        yield started


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=2000)
    parser.add_argument("--boxes", type=int, default=3)
    parser.add_argument("--dsn", help="an existing PostgreSQL; default: a throwaway one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def run(args: argparse.Namespace) -> dict[str, float]:
    if args.boxes < 2 or args.notices < 1:
        raise SystemExit("--boxes must be at least 2 and --notices at least 1")
    with server(args.dsn) as dsn:
        return asyncio.run(measure(dsn, args.notices, args.boxes))


def main() -> None:
    args = arguments().parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"NOTIFY fan-out over {result['notices']} changes to {result['receivers']} other "
        f"box(es): p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
        f"max {result['max_ms']} ms"
    )


if __name__ == "__main__":
    main()
