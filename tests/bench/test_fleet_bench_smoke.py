"""bench/fleet_bench.py end to end at toy size: the SQLite box, one and three boxes on
PostgreSQL behind HAProxy, a kill -9 timed idle and under load, and every figure reported."""

from __future__ import annotations

import pytest

from bench import fleet_bench
from tests.support.haproxy import find_haproxy
from tests.support.postgres import find_initdb

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_initdb() is None, reason="PostgreSQL is not installed (initdb)"),
    pytest.mark.skipif(find_haproxy() is None, reason="HAProxy is not installed"),
]


def test_fleet_bench_reports_every_figure() -> None:
    result = fleet_bench.run(duration_s=1.0, concurrency=4, kills=1)
    for phase in ("sqlite_1_box_direct", "pg_1_box_haproxy", "pg_3_boxes_haproxy"):
        row = result[phase]
        assert row["requests"] > 0, result
        assert row["errors"] == 0, result
        assert row["cpu_s_per_1000"] > 0, result
    # The PostgreSQL phases count round trips: a stateless call makes some, and far from many.
    for phase in ("pg_1_box_haproxy", "pg_3_boxes_haproxy"):
        assert 0 < result[phase]["pg_round_trips_per_call"] < 5, result
    down = result["kill_to_down_s"]
    assert 0 < down["idle"]["median"] < 30
    assert 0 < down["under_load"]["median"] < 30
    assert result["ratios"]["pg_1_box_vs_sqlite_rps"] > 0
