"""Live request metrics, kept in memory as rolling per-second windows.

The hot path does O(1) work per request: find the current second's bucket for the tenant and
bump a few counters. Percentiles come from a log-scaled latency histogram per bucket, so a
snapshot over the whole window costs a few thousand additions, paid by the reader.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from smcp_box.sandbox import PoolStats

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
class _Gauge:
    """One per-second sample of a tenant's sandbox, taken off the hot path by a sampler."""

    second: int
    #: Cumulative fuel burned by the tenant's current module (resets when it is reloaded).
    fuel_total: int
    memory_bytes: int
    warm_instances: int


@dataclass
class _TenantSeries:
    seconds: deque[_Second] = field(default_factory=lambda: deque(maxlen=WINDOW_SECONDS))
    total_requests: int = 0
    total_errors: dict[str, int] = field(default_factory=dict)
    open_streams: int = 0
    gauges: deque[_Gauge] = field(default_factory=lambda: deque(maxlen=WINDOW_SECONDS + 1))

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

    # --- sandbox gauges and per-second series (for the admin API's sparklines) ------------

    def record_gauges(
        self, tenant: str, *, fuel_total: int, memory_bytes: int, warm_instances: int
    ) -> None:
        """Record this second's sandbox sample of ``tenant`` (a later one in the same second
        replaces it)."""
        series = self._tenant(tenant)
        gauge = _Gauge(int(self._clock()), fuel_total, memory_bytes, warm_instances)
        if series.gauges and series.gauges[-1].second == gauge.second:
            series.gauges[-1] = gauge
        else:
            series.gauges.append(gauge)

    def latest_gauges(self, tenant: str) -> dict[str, int] | None:
        series = self._series.get(tenant)
        if series is None or not series.gauges:
            return None
        last = series.gauges[-1]
        return {
            "fuel_total": last.fuel_total,
            "memory_bytes": last.memory_bytes,
            "warm_instances": last.warm_instances,
        }

    def forget(self, tenant: str) -> None:
        """Drop everything about ``tenant`` (after it is removed from the box)."""
        self._series.pop(tenant, None)

    def series(self, tenant: str | None = None, window_s: int = 60) -> dict[str, list[float]]:
        """Per-second series over the last ``window_s`` seconds, oldest first: requests,
        errors, p95 latency (ms; 0 in seconds without requests), fuel burned and memory of
        live instances (carried forward between samples). ``tenant=None`` sums all tenants."""
        now = int(self._clock())
        names = [tenant] if tenant is not None else list(self._series)
        requests = [0.0] * window_s
        errors = [0.0] * window_s
        hists = [[0] * _HIST_BUCKETS for _ in range(window_s)]
        fuel = [0.0] * window_s
        memory = [0.0] * window_s
        for name in names:
            series = self._series.get(name)
            if series is None:
                continue
            for bucket in series.seconds:
                slot = window_s - 1 - (now - bucket.second)
                if not 0 <= slot < window_s:
                    continue
                requests[slot] += bucket.requests
                errors[slot] += sum(bucket.errors.values())
                for i, count in enumerate(bucket.latency):
                    hists[slot][i] += count
            self._fill_gauges(series, now, window_s, fuel, memory)
        latency = [
            _percentile(hist, int(count), 0.95) * 1000
            for hist, count in zip(hists, requests, strict=True)
        ]
        return {
            "requests": requests,
            "errors": errors,
            "latency_p95_ms": latency,
            "fuel": fuel,
            "memory_bytes": memory,
        }

    @staticmethod
    def _fill_gauges(
        series: _TenantSeries, now: int, window_s: int, fuel: list[float], memory: list[float]
    ) -> None:
        previous: _Gauge | None = None
        sampled: list[float | None] = [None] * window_s
        carried = 0.0
        for gauge in series.gauges:
            slot = window_s - 1 - (now - gauge.second)
            if slot < 0:
                carried = float(gauge.memory_bytes)
            elif slot < window_s:
                sampled[slot] = float(gauge.memory_bytes)
                if previous is not None:
                    # A reload restarts the module's counter: a negative delta is not fuel.
                    fuel[slot] += max(0, gauge.fuel_total - previous.fuel_total)
            previous = gauge
        for slot, value in enumerate(sampled):
            if value is not None:
                carried = value
            memory[slot] += carried


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


# --- one snapshot of every figure per tenant, shared by /metrics and the admin API ---------


class _PoolSource(Protocol):
    def stats(self, tenant: str) -> PoolStats: ...


class _BlobUsageSource(Protocol):
    async def usage(self, tenant: str) -> tuple[int, int]: ...


class _TaskCountSource(Protocol):
    async def open_by_status(self, tenant: str) -> dict[str, int]: ...


class _TenantDataSource(Protocol):
    async def count_open_sessions(self, tenant: str | None = None) -> int: ...

    @property
    def tasks(self) -> _TaskCountSource: ...

    async def kv_usage(self, tenant: str) -> tuple[int, int]: ...

    @property
    def blobs(self) -> _BlobUsageSource: ...


@dataclass(frozen=True)
class BoxFigures:
    """The box-wide figures of one scrape."""

    started_at: float
    tenants_failed: int
    ticker_alive: bool
    cache: dict[str, int]
    audit: dict[str, int]
    #: Tenants whose module's tool definitions changed and await approval (served or refused).
    definitions_pending: tuple[str, ...] = ()
    #: (tenant, tool) -> calls flagged far outside the tool's baseline since the box started.
    baseline_flags: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (tenant, tool) blocked by ``baseline = "block"`` until ``tenant baseline-reset``.
    baseline_blocked: tuple[tuple[str, str], ...] = ()
    #: Per-address caps and deadlines (web/connections.py): ``dropped.<kind>`` counters and
    #: the ``open_connections`` and ``open_streams`` gauges.
    connections: dict[str, int] = field(default_factory=dict)
    #: The sandbox's run slots (see smcp_box.sandbox.fair): ``slots``, ``running`` and
    #: ``waiting`` now; ``granted`` and ``yielded`` (slices given up to a waiting call) since
    #: the start.
    scheduler: dict[str, int] = field(default_factory=dict)
    #: Round trips to the database server since the start, by backend (none on SQLite, which
    #: has no server).
    store_round_trips: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TenantFigures:
    """Everything the box measures about one tenant, read at one moment."""

    name: str
    enabled: bool
    #: The rolling window of ``requests``, ``errors`` and ``latency_ms``.
    window_s: int
    requests: int
    errors: dict[str, int]
    #: p50, p95 and p99 over the window, in milliseconds (0 without requests).
    latency_ms: dict[str, float]
    #: Since the box started (or the tenant was first seen): monotonic, for counters.
    requests_total: int
    errors_total: dict[str, int]
    open_streams: int
    open_sessions: int
    kv_keys: int
    kv_bytes: int
    #: The tenant's instance pool now; None while the tenant is being reloaded or removed.
    pool: PoolStats | None
    #: The tenant's blobs: how many, and their bytes.
    blobs: int = 0
    blob_bytes: int = 0
    #: Open tasks (docs/tasks.md) by status: ``working``, ``input_required``.
    open_tasks: dict[str, int] = field(default_factory=dict)


async def tenant_figures(
    metrics: LiveMetrics,
    sandbox: _PoolSource,
    store: _TenantDataSource,
    tenants: Sequence[tuple[str, bool]],
    window_s: int = 60,
) -> list[TenantFigures]:
    """Figures of ``tenants`` (name, enabled): the in-memory ones read without awaiting, so
    they are one consistent moment; the store's two queries per tenant gathered, so they
    queue on its connection together instead of one round trip after another."""
    rows = []
    for name, enabled in tenants:
        snap = metrics.snapshot(name, window_s)
        series = metrics._series.get(name)
        try:
            pool: PoolStats | None = sandbox.stats(name)
        except KeyError:
            pool = None
        rows.append((name, enabled, snap, series, pool))
    stored = await asyncio.gather(*(_stored_figures(store, name) for name, *_ in rows))
    return [
        TenantFigures(
            name=name,
            enabled=enabled,
            window_s=window_s,
            requests=int(snap["requests"]),
            errors=dict(snap["errors"]),
            latency_ms=dict(snap["latency_ms"]),
            requests_total=series.total_requests if series is not None else 0,
            errors_total=dict(series.total_errors) if series is not None else {},
            open_streams=int(snap["open_streams"]),
            open_sessions=sessions,
            kv_keys=kv_keys,
            kv_bytes=kv_bytes,
            pool=pool,
            blobs=blobs,
            blob_bytes=blob_bytes,
            open_tasks=open_tasks,
        )
        for (name, enabled, snap, series, pool), (
            sessions,
            (kv_keys, kv_bytes),
            (blobs, blob_bytes),
            open_tasks,
        ) in zip(rows, stored, strict=True)
    ]


async def _stored_figures(
    store: _TenantDataSource, name: str
) -> tuple[int, tuple[int, int], tuple[int, int], dict[str, int]]:
    return await asyncio.gather(
        store.count_open_sessions(name),
        store.kv_usage(name),
        store.blobs.usage(name),
        store.tasks.open_by_status(name),
    )
