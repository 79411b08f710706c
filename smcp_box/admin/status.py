"""Admin routes for the box's status and its live metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from quart import Blueprint, Response

from smcp_box import __version__
from smcp_box.admin.context import AdminContext, json_response, query_int, query_str
from smcp_box.admin.fleet_routes import fleet_json
from smcp_box.admin.urls import mcp_base_url
from smcp_box.config import settings_as_dict
from smcp_box.errors import NotFound
from smcp_box.seams import JsonObject

#: Settings whose names contain one of these are shown as "<redacted>" when set.
_SECRET_MARKERS = ("token", "secret", "password", "passphrase", "data_key")
MAX_WINDOW_S = 600


def redact(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {key: redact(item, key) for key, item in value.items()}
    if value and any(marker in name.lower() for marker in _SECRET_MARKERS):
        return "<redacted>"
    return value


def status_metrics_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_status_metrics", __name__, url_prefix="/v1")
    box = ctx.box

    @bp.get("/status")
    async def status() -> Response:
        now = box.clock()
        tenants = box.tenants.all()
        failed = [
            {"folder": folder, "name": Path(folder).name, "reason": reason}
            for folder, reason in sorted(box.tenants.last_report.failed.items())
        ]
        return json_response(
            {
                "version": __version__,
                "pid": os.getpid(),
                "started_at": box.started_at,
                "now": now,
                "uptime_s": max(0.0, now - box.started_at),
                "mcp_base_url": mcp_base_url(box.settings),
                "tenants": {
                    "loaded": len(tenants),
                    "enabled": sum(1 for t in tenants if t.enabled),
                    "failed": len(failed),
                },
                "failed": failed,
                # Served, but their tenant.toml names secrets this box has no value for.
                "missing_secrets": {
                    t.name: t.missing_secrets() for t in tenants if t.missing_secrets()
                },
                "sandbox": {"ticker_alive": box.sandbox.ticker_alive()},
                "open_sessions": await box.store.count_open_sessions(),
                "paths": {
                    "state": str(box.settings.state_path().resolve()),
                    "database": str(box.settings.database_path().resolve()),
                    "tenants": str(box.settings.tenants_path().resolve()),
                },
                "config": redact(settings_as_dict(box.settings)),
                # This box, every box of the fleet from the heartbeats, the database's health.
                **await fleet_json(box),
            }
        )

    @bp.get("/metrics")
    async def metrics() -> Response:
        window = query_int("window", 60, low=1, high=MAX_WINDOW_S) or 60
        only = query_str("tenant")
        if only is not None and box.tenants.get(only) is None:
            raise NotFound(f"no tenant named {only!r} is loaded")
        names = [only] if only is not None else box.tenants.names()
        rows = [await _tenant_metrics(ctx, name, window) for name in names]
        return json_response(
            {
                "now": box.clock(),
                "window_s": window,
                "total": _total(ctx, rows, window),
                "tenants": rows,
            }
        )

    return bp


def _common(snapshot: dict[str, Any], series: dict[str, list[float]], window: int) -> JsonObject:
    fuel_window = sum(series["fuel"])
    return {
        "requests": snapshot["requests"],
        "requests_per_s": snapshot["requests_per_s"],
        "latency_ms": snapshot["latency_ms"],
        "errors": snapshot["errors"],
        "error_total": sum(snapshot["errors"].values()),
        "open_streams": snapshot["open_streams"],
        "fuel_used": fuel_window,
        "fuel_per_s": fuel_window / window,
        "series": series,
    }


async def _tenant_metrics(ctx: AdminContext, name: str, window: int) -> JsonObject:
    box = ctx.box
    tenant = box.tenants.get(name)
    gauges = box.metrics.latest_gauges(name) or {}
    kv_keys, kv_bytes = await box.store.kv_usage(name)
    blob_usage = await box.store.blobs.usage(name)
    row: JsonObject = {"name": name, "enabled": tenant.enabled if tenant is not None else False}
    row.update(
        _common(box.metrics.snapshot(name, window), box.metrics.series(name, window), window)
    )
    row.update(
        memory_bytes=gauges.get("memory_bytes", 0),
        warm_instances=gauges.get("warm_instances", 0),
        fuel_total=gauges.get("fuel_total", 0),
        open_sessions=await box.store.count_open_sessions(name),
        kv_keys=kv_keys,
        kv_bytes=kv_bytes,
        blobs=blob_usage.blobs,
        blob_bytes=blob_usage.bytes,
    )
    return row


def _total(ctx: AdminContext, rows: list[JsonObject], window: int) -> JsonObject:
    metrics = ctx.box.metrics
    total = _common(metrics.snapshot(None, window), metrics.series(None, window), window)
    for field in (
        "memory_bytes",
        "warm_instances",
        "open_sessions",
        "kv_keys",
        "kv_bytes",
        "blobs",
        "blob_bytes",
    ):
        total[field] = sum(int(row[field]) for row in rows)
    return total
