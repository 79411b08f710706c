"""The fleet's figures (issue 19): boxes on PostgreSQL behind HAProxy against one box on SQLite.

    python -m bench.fleet_bench [--duration 10] [--concurrency 32] [--json]

Runs, on loopback, with the fleet harness of the tests (tests/support/fleet.py: a throwaway
PostgreSQL, box processes, HAProxy from ``smcp-box lb-config``) and the suite's load generator
(bench/loadgen.py: wrk when installed), stateless 2026-07-28 ``tools/call`` of utils' ``echo``
(a tool that touches no kv) with an API key:

1. one box on SQLite, called directly: req/s at c=32, CPU-seconds per 1,000 calls;
2. one box on PostgreSQL behind HAProxy: the same, CPU summed over the box, HAProxy and every
   PostgreSQL process, and PostgreSQL round trips per call (the box's counter in /metrics);
3. three boxes on PostgreSQL behind HAProxy: the same, CPU over all of them;
4. ``kill -9`` of one of the three: time until HAProxy marks it down, idle (health checks
   only) and under load (a refused connection fails a check at once).

On 2 cores the boxes, HAProxy, PostgreSQL and the load generator share the processor, so more
boxes add contention, not capacity: the figures are printed, none is a gate. Bounded: each
load phase lasts ``--duration`` seconds after a 2 s warm-up; starting each fleet takes seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from bench.peers import payload
from bench.procs import cpu_seconds
from tests.e2e.boxproc import copy_tenants
from tests.support.fleet import Fleet, fresh_database, running_fleet
from tests.support.postgres import throwaway_postgres

WARMUP_S = 2.0
#: Quiet boxes: an access-log line per request would be part of what is measured.
QUIET = {"SMCP_BOX_LOG_LEVEL": "warning"}
ROUND_TRIPS = re.compile(
    r'^smcp_box_store_round_trips(?:_total)?\{backend="postgres"\} (\S+)$', re.M
)


def postgres_pid(dsn: str) -> int:
    """The postmaster of the throwaway server (its data folder sits beside its socket's)."""
    socket_dir = Path(re.search(r"host=([^&]+)", dsn)[1])  # type: ignore[index]
    return int((socket_dir.parent / "data" / "postmaster.pid").read_text().split()[0])


def cpu_probe(fleet: Fleet, pg_pid: int | None) -> Callable[[], float]:
    """CPU seconds so far of every box, HAProxy and (when given) PostgreSQL with its backends."""

    def total() -> float:
        pids = [box.proc.pid for box in fleet.boxes.values() if box.proc is not None]
        if fleet.lb.proc is not None:
            pids.append(fleet.lb.proc.pid)
        if pg_pid is not None:
            pids.append(pg_pid)
        return sum(cpu_seconds(pid) for pid in pids)

    return total


def round_trips(fleet: Fleet) -> float:
    total = 0.0
    for box in fleet.boxes.values():
        found = ROUND_TRIPS.search(httpx.get(f"{box.base_url}/metrics", timeout=10).text)
        total += float(found[1]) if found else 0.0
    return total


def measure(
    fleet: Fleet,
    url: str,
    key: str,
    *,
    pg_pid: int | None,
    concurrency: int,
    duration_s: float,
) -> dict[str, Any]:
    target = loadgen.Target(
        url, payload.call_headers("modern", None, key), payload.call_body("modern")
    )
    trips_before = round_trips(fleet) if pg_pid is not None else 0.0
    probe = cpu_probe(fleet, pg_pid)
    result = loadgen.run_load(
        target,
        protocol="http1",
        concurrency=concurrency,
        duration_s=duration_s,
        warmup_s=WARMUP_S,
        cpu_probe=probe,
    )
    row: dict[str, Any] = {
        "generator": result.tool,
        "requests": result.requests,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "cpu_s_per_1000": round((result.server_cpu_us_per_request or 0.0) / 1000, 3),
    }
    if pg_pid is not None:
        # Counted over the warm-up and the measured phase alike; wrk does not say how many
        # calls its warm-up made, so this divides by the measured ones: an upper bound.
        trips = round_trips(fleet) - trips_before
        row["pg_round_trips_per_call"] = round(trips / max(result.requests, 1), 3)
    return row


def time_to_down(fleet: Fleet, box_id: str, load: Callable[[], None] | None) -> float:
    """Seconds from ``kill -9`` of ``box_id`` until HAProxy's stats say DOWN."""
    stop = threading.Event()
    worker = None
    if load is not None:

        def loop() -> None:
            while not stop.is_set():
                load()

        worker = threading.Thread(target=loop, daemon=True)
        worker.start()
    try:
        killed = time.monotonic()
        fleet.kill(box_id)
        while fleet.lb.servers().get(box_id, "").split(" ")[0] != "DOWN":
            if time.monotonic() - killed > 30:
                raise RuntimeError(f"HAProxy did not mark {box_id} down within 30 s")
            time.sleep(0.005)
        return time.monotonic() - killed
    finally:
        stop.set()
        if worker is not None:
            worker.join(10)


@contextmanager
def fleet_of(
    tenants: Path, dsn: str | None, box_ids: tuple[str, ...], cache: Path
) -> Iterator[tuple[Fleet, str]]:
    with running_fleet(
        tenants, dsn=dsn, box_ids=box_ids, extra_env=QUIET, cache_dir=cache
    ) as fleet:
        yield fleet, fleet.create_key("utils")


def _summary(runs: list[float]) -> dict[str, Any]:
    return {"runs": [round(x, 3) for x in runs], "median": round(statistics.median(runs), 3)}


def run(duration_s: float, concurrency: int, kills: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="smcp-fleet-bench-"))
    try:
        return _run(work, duration_s, concurrency, kills)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, duration_s: float, concurrency: int, kills: int) -> dict[str, Any]:
    tenants = copy_tenants(work / "tenants", ["utils"])
    cache = work / "cache"
    results: dict[str, Any] = {
        "concurrency": concurrency,
        "duration_s": duration_s,
        "generator": loadgen.describe_generator()["http1"],
    }

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log("1/4 one box on SQLite, direct")
    with fleet_of(tenants, None, ("solo",), cache) as (fleet, key):
        url = fleet.box("solo").url("utils")
        results["sqlite_1_box_direct"] = measure(
            fleet, url, key, pg_pid=None, concurrency=concurrency, duration_s=duration_s
        )
    with throwaway_postgres() as server:
        pg_pid = postgres_pid(server)

        def through_haproxy(fleet: Fleet, key: str) -> dict[str, Any]:
            return measure(
                fleet,
                fleet.url("utils"),
                key,
                pg_pid=pg_pid,
                concurrency=concurrency,
                duration_s=duration_s,
            )

        log("2/4 one box on PostgreSQL behind HAProxy")
        with fleet_of(tenants, fresh_database(server), ("box1",), cache) as (fleet, key):
            results["pg_1_box_haproxy"] = through_haproxy(fleet, key)
        log("3/4 three boxes on PostgreSQL behind HAProxy")
        boxes = ("box1", "box2", "box3")
        with fleet_of(tenants, fresh_database(server), boxes, cache) as (fleet, key):
            results["pg_3_boxes_haproxy"] = through_haproxy(fleet, key)
            log("4/4 kill -9 to HAProxy marking the box down")
            idle, busy = [], []
            with httpx.Client(timeout=30) as http:
                headers = payload.call_headers("modern", None, key)

                def one_call() -> None:
                    http.post(
                        fleet.url("utils"), content=payload.call_body("modern"), headers=headers
                    )

                for _ in range(kills):
                    idle.append(time_to_down(fleet, "box2", None))
                    fleet.restart("box2")
                    fleet.wait_lb_sees("box2", "UP")
                    busy.append(time_to_down(fleet, "box2", one_call))
                    fleet.restart("box2")
                    fleet.wait_lb_sees("box2", "UP")
            results["kill_to_down_s"] = {
                "idle": {
                    "runs": [round(x, 3) for x in idle],
                    "median": round(statistics.median(idle), 3),
                },
                "under_load": {
                    "runs": [round(x, 3) for x in busy],
                    "median": round(statistics.median(busy), 3),
                },
            }
    one, three = results["pg_1_box_haproxy"], results["pg_3_boxes_haproxy"]
    base = results["sqlite_1_box_direct"]
    results["ratios"] = {
        "pg_1_box_vs_sqlite_rps": round(one["rps"] / base["rps"], 2) if base["rps"] else None,
        "cpu_3_boxes_vs_1": round(three["cpu_s_per_1000"] / one["cpu_s_per_1000"], 2)
        if one["cpu_s_per_1000"]
        else None,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--kills", type=int, default=3, help="kill -9 rounds (idle and loaded)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.duration, args.concurrency, args.kills)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"c={args.concurrency}, {args.duration:g} s per phase, generator {results['generator']}")
    for name in ("sqlite_1_box_direct", "pg_1_box_haproxy", "pg_3_boxes_haproxy"):
        row = results[name]
        extra = (
            f", {row['pg_round_trips_per_call']} PG round trips/call"
            if "pg_round_trips_per_call" in row
            else ""
        )
        print(
            f"  {name:<22} {row['rps']:>8.1f} req/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
            f"  errors {row['errors']}  CPU {row['cpu_s_per_1000']} s/1000 calls{extra}"
        )
    ratios = results["ratios"]
    print(f"  PostgreSQL+HAProxy 1 box vs SQLite: {ratios['pg_1_box_vs_sqlite_rps']}x req/s")
    print(f"  CPU per 1000 calls, 3 boxes vs 1: {ratios['cpu_3_boxes_vs_1']}x")
    down = results["kill_to_down_s"]
    print(
        f"  kill -9 to HAProxy DOWN: idle median {down['idle']['median']} s {down['idle']['runs']},"
        f" under load median {down['under_load']['median']} s {down['under_load']['runs']}"
    )


if __name__ == "__main__":
    main()
