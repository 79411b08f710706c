"""bench/wakeup_probe.py at toy size: the ping-pong answers every round trip, and the command
runs beside a spinner and prints its figures."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import wakeup_probe
from bench.procs import REPO


def test_every_round_trip_is_answered_and_timed() -> None:
    trips = wakeup_probe.probe(0.2, 100)
    assert len(trips) == 20  # one every 10 ms for 200 ms
    assert all(trip > 0 for trip in trips)


def test_the_command_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.wakeup_probe", "--seconds", "0.3", "--spinners", "1"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "1 spinner(s) at nice 0: p50" in done.stdout
    assert "p99" in done.stdout
