"""Rolling live metrics: rates, error kinds, percentiles and the window edge."""

from __future__ import annotations

import pytest

from smcp_box.metrics import WINDOW_SECONDS, LiveMetrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_rates_errors_and_percentiles() -> None:
    clock = FakeClock()
    metrics = LiveMetrics(clock)
    for i in range(100):
        metrics.observe("a", "tools/call", 0.001 if i < 90 else 0.100, None if i % 10 else "fuel")
        clock.now += 0.1  # 100 requests over 10 seconds
    metrics.observe("b", "ping", 0.0001, None)
    snap = metrics.snapshot("a", window_s=60)
    assert snap["requests"] == 100
    assert snap["requests_per_s"] == pytest.approx(100 / 60)
    assert snap["errors"] == {"fuel": 10}
    # p50 lies in the 1 ms bucket, p99 in the 100 ms one (buckets are 25% wide).
    assert 1.0 <= snap["latency_ms"]["p50"] <= 1.25
    assert 100.0 <= snap["latency_ms"]["p99"] <= 125.0
    assert sum(snap["requests_series"]) == 100
    total = metrics.snapshot(None, window_s=60)
    assert total["requests"] == 101
    assert metrics.tenants() == ["a", "b"]


def test_old_seconds_leave_the_window() -> None:
    clock = FakeClock()
    metrics = LiveMetrics(clock)
    metrics.observe("a", "x", 0.01, None)
    clock.now += 61
    assert metrics.snapshot("a", window_s=60)["requests"] == 0
    clock.now += WINDOW_SECONDS * 2
    for _ in range(WINDOW_SECONDS + 5):
        clock.now += 1
        metrics.observe("a", "x", 0.01, None)
    assert metrics.snapshot("a", window_s=WINDOW_SECONDS)["requests"] == WINDOW_SECONDS


def test_streams_never_go_negative() -> None:
    metrics = LiveMetrics(FakeClock())
    metrics.stream_opened("a")
    metrics.stream_closed("a")
    metrics.stream_closed("a")
    assert metrics.snapshot("a")["open_streams"] == 0
    assert metrics.snapshot("unknown")["requests"] == 0
