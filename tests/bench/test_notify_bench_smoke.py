"""bench/notify_bench.py at toy size on a throwaway PostgreSQL: every change is heard by every
other box, and the figures it prints are consistent."""

from __future__ import annotations

import pytest

from bench import notify_bench
from tests.support.postgres import find_initdb


def test_notify_bench_measures_every_change_on_every_other_box() -> None:
    if find_initdb() is None:
        pytest.skip("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)")
    args = notify_bench.arguments().parse_args(["--notices", "30", "--boxes", "3"])
    result = notify_bench.run(args)
    assert result["notices"] == 30
    assert result["receivers"] == 2
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
