"""Live request metrics, kept in memory as rolling per-second windows.

The hot path does O(1) work per request: find the current second's bucket for the tenant and
bump a few counters. Percentiles come from a log-scaled latency histogram per bucket, so a
snapshot over the whole window costs a few thousand additions, paid by the reader.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 600
#: Latency histogram buckets: upper bounds 10 µs * 1.25^i, covering 10 µs .. ~60 s.
_HIST_BASE_S = 10e-6
_HIST_RATIO = 1.25
_HIST_BUCKETS = 72


def _bucket_index(duration_s: float) -> int:
    if duration_s <= _HIST_BASE_S:
        return 0
    index = int(math.log(duration_s / _HIST_BASE_S, _HIST_RATIO)) + 1
    return min(index, _HIST_BUCKETS - 1)


def _bucket_upper(index: int) -> float:
    return float(_HIST_BASE_S * _HIST_RATIO**index)


@dataclass
class _Second:
    second: int
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=lambda: [0] * _HIST_BUCKETS)


@dataclass
class _TenantSeries:
    seconds: deque[_Second] = field(default_factory=lambda: deque(maxlen=WINDOW_SECONDS))
    total_requests: int = 0
    total_errors: dict[str, int] = field(default_factory=dict)
    open_streams: int = 0

    def current(self, second: int) -> _Second:
        if not self.seconds or self.seconds[-1].second != second:
            self.seconds.append(_Second(second))
        return self.seconds[-1]


class LiveMetrics:
    """Implements the transport's RequestObserver protocol."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._series: dict[str, _TenantSeries] = {}

    def _tenant(self, tenant: str) -> _TenantSeries:
        series = self._series.get(tenant)
        if series is None:
            series = self._series[tenant] = _TenantSeries()
        return series

    def observe(self, tenant: str, method: str, duration_s: float, error_kind: str | None) -> None:
        series = self._tenant(tenant)
        bucket = series.current(int(self._clock()))
        bucket.requests += 1
        bucket.latency[_bucket_index(duration_s)] += 1
        series.total_requests += 1
        if error_kind is not None:
            bucket.errors[error_kind] = bucket.errors.get(error_kind, 0) + 1
            series.total_errors[error_kind] = series.total_errors.get(error_kind, 0) + 1

    def stream_opened(self, tenant: str) -> None:
        self._tenant(tenant).open_streams += 1

    def stream_closed(self, tenant: str) -> None:
        series = self._tenant(tenant)
        series.open_streams = max(0, series.open_streams - 1)

    def tenants(self) -> list[str]:
        return sorted(self._series)

    def snapshot(self, tenant: str | None = None, window_s: int = 60) -> dict[str, Any]:
        """Requests/s, error counts and latency percentiles over the last ``window_s`` seconds,
        plus a per-second requests series for sparklines."""
        now = int(self._clock())
        names = [tenant] if tenant is not None else list(self._series)
        hist = [0] * _HIST_BUCKETS
        per_second = [0] * window_s
        errors: dict[str, int] = {}
        total = 0
        streams = 0
        for name in names:
            series = self._series.get(name)
            if series is None:
                continue
            streams += series.open_streams
            for bucket in series.seconds:
                age = now - bucket.second
                if not 0 <= age < window_s:
                    continue
                per_second[window_s - 1 - age] += bucket.requests
                total += bucket.requests
                for kind, count in bucket.errors.items():
                    errors[kind] = errors.get(kind, 0) + count
                for i, count in enumerate(bucket.latency):
                    hist[i] += count
        return {
            "window_s": window_s,
            "requests": total,
            "requests_per_s": total / window_s,
            "errors": errors,
            "latency_ms": {
                "p50": _percentile(hist, total, 0.50) * 1000,
                "p95": _percentile(hist, total, 0.95) * 1000,
                "p99": _percentile(hist, total, 0.99) * 1000,
            },
            "requests_series": per_second,
            "open_streams": streams,
        }


def _percentile(hist: list[int], total: int, q: float) -> float:
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return _bucket_upper(index)
    return _bucket_upper(len(hist) - 1)
