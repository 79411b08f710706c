"""How long a woken process waits for a core: a two-process ping-pong, optionally beside spinners.

    python -m bench.wakeup_probe [--seconds 10] [--rate 40] [--spinners 2] [--nice 0|10|19|idle]

A parent and a forked child pass one byte back and forth over a socketpair ``--rate`` times a
second; each round trip is two wake-ups of a sleeping process. ``--spinners N`` starts N
processes that only burn CPU, at ``--nice`` (a nice value, or ``idle`` for SCHED_IDLE), for
the length of the run. Prints the round trip's p50, p99 and max.

What it is for (docs/benchmarks.md, "Inline attempts for kv-importing modules"): on a 2-core
machine two spinners at nice 0 raise the round trip's p99 from ~0.1 ms to ~4 ms, and the same
two at nice 10 or SCHED_IDLE leave it at ~0.1 ms. Run it beside a flooded box to see how much
of a neighbour's latency the machine adds by itself. Bounded: ``--seconds`` plus a second.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable


def _spin(nice: str, stop_at: float) -> None:
    if nice == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(int(nice))
    count = 0
    while time.monotonic() < stop_at:
        for _ in range(10_000):
            count += 1


def _fork(target: Callable[..., object], *args: object) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            target(*args)
        finally:
            os._exit(0)
    return pid


def _echo(end: socket.socket, other: socket.socket) -> None:
    other.close()  # the parent's end: its close is what ends this loop
    while data := end.recv(1):
        end.send(data)


def probe(seconds: float, rate: float) -> list[float]:
    """Round trips in milliseconds, one every 1/rate seconds for ``seconds``."""
    ours, theirs = socket.socketpair()
    child = _fork(_echo, theirs, ours)
    theirs.close()
    trips: list[float] = []
    try:
        start = time.monotonic()
        # A count fixed up front: summing 1/rate step by step drifts by a rounding error,
        # which made it one trip more or less from run to run.
        for index in range(round(seconds * rate)):
            next_at = start + (index + 1) / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
            started = time.perf_counter()
            ours.send(b"x")
            ours.recv(1)
            trips.append((time.perf_counter() - started) * 1000)
    finally:
        ours.close()
        os.waitpid(child, 0)
    return trips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--spinners", type=int, default=0)
    parser.add_argument("--nice", default="0", help="0-19, or idle for SCHED_IDLE")
    args = parser.parse_args()
    if args.nice != "idle" and not 0 <= int(args.nice) <= 19:
        parser.error("--nice takes 0-19 or idle")
    spinners = [
        _fork(_spin, args.nice, time.monotonic() + args.seconds + 1) for _ in range(args.spinners)
    ]
    try:
        trips = sorted(probe(args.seconds, args.rate))
    finally:
        for pid in spinners:  # each stops by itself a second after the probe's end
            os.waitpid(pid, 0)
    p99 = trips[min(len(trips) - 1, int(len(trips) * 0.99))]
    print(
        f"{len(trips)} round trips, {args.spinners} spinner(s) at nice {args.nice}: "
        f"p50 {statistics.median(trips):.3f} ms, p99 {p99:.3f} ms, max {trips[-1]:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
