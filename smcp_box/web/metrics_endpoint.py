"""``GET /metrics``: the box's figures in the Prometheus text format (or OpenMetrics on request).

Each scrape builds a fresh ``CollectorRegistry`` from one snapshot
(:func:`smcp_box.metrics.tenant_figures`), instead of keeping prometheus_client metric objects
updated on the hot path: requests already cost O(1) in :class:`~smcp_box.metrics.LiveMetrics`,
and a scrape every few seconds pays for the rest. Labels are per tenant (and per error kind);
tenant names are the only label values, so cardinality is bounded by the tenants folder.

Counters (``*_total``) count since the box started, or, for the sandbox's counters, since the
tenant's current module was loaded: Prometheus treats a drop as a counter reset. Latency is
given as quantile gauges over the last 60 s, the figure the TUI shows.

It reveals tenant names and traffic figures (never data), so it is not for everyone on the LAN:
without a token only loopback clients may read it; with ``[metrics] token_file`` a scraper
anywhere sends that bearer token (and a loopback client too: one rule once a token is set).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector, CollectorRegistry
from quart import Blueprint, Response, request

from smcp_box import __version__
from smcp_box.metrics import BoxFigures, TenantFigures
from smcp_box.protocol.http import parse_address
from smcp_box.web.services import MetricsSnapshot

PREFIX = "smcp_box_"
LATENCY_WINDOW_S = 60
QUANTILES = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))


class _Snapshot(Collector):
    """Turns one snapshot into metric families; lives for one scrape."""

    def __init__(self, box: BoxFigures, tenants: list[TenantFigures]) -> None:
        self._box = box
        self._tenants = tenants

    def collect(self) -> Iterator[Metric]:
        yield from self._box_families()
        yield from self._request_families()
        yield from self._sandbox_families()
        yield from self._state_families()
        yield from self._vetting_families()

    def _box_families(self) -> Iterator[Metric]:
        box = self._box
        info = GaugeMetricFamily(f"{PREFIX}build_info", "smcp-box version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily(
            f"{PREFIX}start_time_seconds", "When the box started (Unix time)", box.started_at
        )
        tenants = GaugeMetricFamily(
            f"{PREFIX}tenants", "Tenants by state (failed: not loaded)", labels=["state"]
        )
        tenants.add_metric(["loaded"], len(self._tenants))
        tenants.add_metric(["enabled"], sum(1 for t in self._tenants if t.enabled))
        tenants.add_metric(["failed"], box.tenants_failed)
        yield tenants
        yield GaugeMetricFamily(
            f"{PREFIX}sandbox_ticker_up",
            "1 while the sandbox's wall-clock ticker runs (calls can time out)",
            int(box.ticker_alive),
        )
        cache = CounterMetricFamily(
            f"{PREFIX}module_cache_events",
            "Compiled-module cache: hits, compiles, discarded entries, write failures",
            labels=["event"],
        )
        for event, count in sorted(box.cache.items()):
            cache.add_metric([event], count)
        yield cache
        if box.scheduler:
            slots = GaugeMetricFamily(
                f"{PREFIX}sandbox_run_slots",
                "Wasm run slots shared fairly by the tenants: total, running, calls waiting",
                labels=["state"],
            )
            for state in ("slots", "running", "waiting"):
                slots.add_metric(["total" if state == "slots" else state], box.scheduler[state])
            yield slots
            events = CounterMetricFamily(
                f"{PREFIX}sandbox_slot_events",
                "Run slots granted, and slices given up to a waiting call",
                labels=["event"],
            )
            for event in ("granted", "yielded"):
                events.add_metric([event], box.scheduler[event])
            yield events
        audit = box.audit
        yield CounterMetricFamily(
            f"{PREFIX}audit_rows_written", "Audit rows committed", audit["rows_written"]
        )
        yield CounterMetricFamily(
            f"{PREFIX}audit_rows_dropped",
            "Audit rows lost because the database refused them (see the log)",
            audit["rows_dropped"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}audit_rows_pending", "Audit rows queued, not yet committed", audit["pending"]
        )
        if box.store_round_trips:
            trips = CounterMetricFamily(
                f"{PREFIX}store_round_trips",
                "Round trips to the database server: statements, preparing, BEGIN and COMMIT",
                labels=["backend"],
            )
            for backend, count in sorted(box.store_round_trips.items()):
                trips.add_metric([backend], count)
            yield trips
        yield from self._connection_families()

    def _connection_families(self) -> Iterator[Metric]:
        figures = self._box.connections
        if not figures:
            return
        dropped = CounterMetricFamily(
            f"{PREFIX}connections_dropped",
            "Connections and streams refused past a per-address cap, or closed at the header "
            "or body deadline, by kind",
            labels=["kind"],
        )
        for name, count in sorted(figures.items()):
            if name.startswith("dropped."):
                dropped.add_metric([name.removeprefix("dropped.")], count)
        yield dropped
        yield GaugeMetricFamily(
            f"{PREFIX}connections_open",
            "TCP connections open now (not counting those from trusted proxies)",
            figures.get("open_connections", 0),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}event_streams_open",
            "GET (SSE) streams open now, over every tenant",
            figures.get("open_streams", 0),
        )

    def _request_families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}requests", "MCP requests answered", labels=["tenant"]
        )
        errors = CounterMetricFamily(
            f"{PREFIX}request_errors",
            "MCP requests that failed, by kind",
            labels=["tenant", "kind"],
        )
        latency = GaugeMetricFamily(
            f"{PREFIX}request_latency_seconds",
            f"Request latency quantiles over the last {LATENCY_WINDOW_S} s (0 without requests)",
            labels=["tenant", "quantile"],
        )
        streams = GaugeMetricFamily(
            f"{PREFIX}open_streams", "SSE streams open now", labels=["tenant"]
        )
        for t in self._tenants:
            requests.add_metric([t.name], t.requests_total)
            for kind, count in sorted(t.errors_total.items()):
                errors.add_metric([t.name, kind], count)
            for quantile, key in QUANTILES:
                latency.add_metric([t.name, quantile], t.latency_ms.get(key, 0.0) / 1000)
            streams.add_metric([t.name], t.open_streams)
        yield from (requests, errors, latency, streams)

    def _sandbox_families(self) -> Iterator[Metric]:
        def counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}{name}", doc, labels=["tenant", *labels])

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}{name}", doc, labels=["tenant"])

        fuel = counter(
            "fuel_used", "Fuel burned by the module (a call out of fuel counts its limit)"
        )
        calls = counter("module_calls", "Calls into the module, finished")
        failures = counter(
            "module_call_failures", "Failed module calls: fuel, timeout, trap…", "kind"
        )
        busy = counter("module_calls_rejected", "Calls turned away: max_concurrent_calls reached")
        host_calls = counter("host_calls", "Host imports the module called")
        memory = gauge("instance_memory_bytes", "Linear memory of the module's live instances")
        warm = gauge("warm_instances", "Idle instances ready for the next call")
        live = gauge("live_instances", "Instances alive (warm and busy)")
        running = gauge("busy_calls", "Module calls running now")
        for t in self._tenants:
            pool = t.pool
            if pool is None:
                continue
            fuel.add_metric([t.name], pool.fuel_used)
            calls.add_metric([t.name], pool.calls)
            for kind, count in sorted(pool.errors_by_kind.items()):
                failures.add_metric([t.name, kind], count)
            busy.add_metric([t.name], pool.rejected_busy)
            host_calls.add_metric([t.name], pool.host_calls)
            memory.add_metric([t.name], pool.memory_bytes)
            warm.add_metric([t.name], pool.warm_instances)
            live.add_metric([t.name], pool.live_instances)
            running.add_metric([t.name], pool.busy_calls)
        yield from (fuel, calls, failures, busy, host_calls, memory, warm, live, running)

    def _state_families(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}{name}", doc, labels=["tenant"])

        enabled = gauge("tenant_enabled", "1 when the tenant is served, 0 when disabled")
        sessions = gauge("open_sessions", "Handshake-era sessions open now")
        kv_keys = gauge("kv_keys", "Keys in the tenant's key-value store")
        kv_bytes = gauge("kv_bytes", "Bytes of keys and values in the tenant's key-value store")
        for t in self._tenants:
            enabled.add_metric([t.name], int(t.enabled))
            sessions.add_metric([t.name], t.open_sessions)
            kv_keys.add_metric([t.name], t.kv_keys)
            kv_bytes.add_metric([t.name], t.kv_bytes)
        blobs = gauge("blobs", "Blobs the tenant keeps")
        blob_bytes = gauge("blob_bytes", "Bytes of the tenant's blobs")
        for t in self._tenants:
            blobs.add_metric([t.name], t.blobs)
            blob_bytes.add_metric([t.name], t.blob_bytes)
        tasks = GaugeMetricFamily(
            f"{PREFIX}open_tasks",
            "Tasks (docs/tasks.md) working or waiting for input, by status",
            labels=["tenant", "status"],
        )
        for t in self._tenants:
            for status, count in sorted(t.open_tasks.items()):
                tasks.add_metric([t.name, status], count)
        yield from (enabled, sessions, kv_keys, kv_bytes, blobs, blob_bytes, tasks)

    def _vetting_families(self) -> Iterator[Metric]:
        box = self._box
        pending = GaugeMetricFamily(
            f"{PREFIX}tenant_definitions_pending",
            "1 while the tenant's module's tool definitions differ from the approved ones "
            "(smcp-box tenant diff / approve)",
            labels=["tenant"],
        )
        waiting = set(box.definitions_pending)
        for name in sorted(waiting | {t.name for t in self._tenants}):
            pending.add_metric([name], int(name in waiting))
        flags = CounterMetricFamily(
            f"{PREFIX}baseline_flags",
            "Tool calls flagged far outside their behaviour baseline",
            labels=["tenant", "tool"],
        )
        for (tenant, tool), count in sorted(box.baseline_flags.items()):
            flags.add_metric([tenant, tool], count)
        blocked = GaugeMetricFamily(
            f"{PREFIX}tool_blocked",
            "1 for a tool blocked by its behaviour baseline (smcp-box tenant baseline-reset)",
            labels=["tenant", "tool"],
        )
        for tenant, tool in box.baseline_blocked:
            blocked.add_metric([tenant, tool], 1)
        yield from (pending, flags, blocked)


def render(box_figures: BoxFigures, tenants: list[TenantFigures], accept: str) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(box_figures, tenants))
    if "application/openmetrics-text" in accept:
        body: Any = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        content_type = openmetrics.CONTENT_TYPE_LATEST
    else:
        body = generate_latest(registry)
        content_type = CONTENT_TYPE_LATEST
    return Response(body, status=200, content_type=content_type)


def create_metrics_blueprint(snapshot: MetricsSnapshot, token: str | None) -> Blueprint:
    blueprint = Blueprint("metrics", __name__)

    @blueprint.get("/metrics")
    async def metrics() -> Response:
        refusal = _refusal(token)
        if refusal is not None:
            return refusal
        box_figures, tenants = await snapshot()
        return render(box_figures, tenants, request.headers.get("accept", ""))

    return blueprint


def _refusal(token: str | None) -> Response | None:
    """None when this request may read the figures, else the answer that says why not."""
    if token is None:
        if is_loopback(request.remote_addr):
            return None
        return Response(
            "/metrics answers loopback clients only; set [metrics] token_file to scrape it "
            "from the network\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    offered = request.headers.get("authorization", "")
    scheme, _, credential = offered.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        credential.strip().encode(), token.encode()
    ):
        return None
    return Response(
        "/metrics needs the metrics bearer token\n",
        status=401,
        content_type="text/plain; charset=utf-8",
        headers={"WWW-Authenticate": 'Bearer realm="smcp-box metrics"'},
    )


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` (an IP, maybe an IPv4-mapped IPv6 one) is this machine's."""
    ip = parse_address(address)
    return ip is not None and ip.is_loopback
