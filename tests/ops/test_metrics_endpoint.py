"""``GET /metrics`` on a real box behind a real Hypercorn, parsed with prometheus_client's own
parser after real traffic: per-tenant requests, errors, latency, fuel, memory, instances,
sessions, streams and kv."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from smcp_box.box import Box
from smcp_box.config import load_settings, read_token
from smcp_box.errors import ConfigError
from smcp_box.store.blobs import BlobQuotas
from smcp_box.web.app import create_app
from smcp_box.web.metrics_endpoint import is_loopback
from tests.e2e.clients import legacy_session, modern_call_tool
from tests.ops.support import add_ops_tenant, box_settings, copy_examples, serving, started

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
async def metrics_box(
    tmp_path: Path, ops_module: Path, module_cache: Path
) -> AsyncIterator[tuple[Box, str, dict[str, str]]]:
    tenants = copy_examples(tmp_path / "tenants")
    add_ops_tenant(tenants, ops_module, limits="fuel = 100000000000\ntimeout_ms = 300\n")
    async with started(box_settings(tmp_path, tenants, module_cache)) as box:
        keys = {name: (await box.store.create_api_key(name, "m"))[1] for name in ("notes", "ops")}
        async with serving(box) as base:
            yield box, base, keys


async def scrape(base: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/metrics", headers=headers)
    assert response.status_code == 200
    return response


async def test_metrics_after_real_traffic(metrics_box: tuple[Box, str, dict[str, str]]) -> None:
    box, base, keys = metrics_box
    async with httpx.AsyncClient(timeout=30) as http:
        notes = f"{base}/t/notes/mcp"
        ops = f"{base}/t/ops/mcp"
        for i in range(3):
            args: dict[str, Any] = {"title": f"n{i}", "body": "text"}
            reply = await modern_call_tool(http, notes, keys["notes"], "note_create", args, i)
            assert "result" in reply, reply
        for i in range(2):
            assert "result" in await modern_call_tool(http, ops, keys["ops"], "hello", {}, i)
        spun = await modern_call_tool(http, ops, keys["ops"], "spin", {}, 9)
        assert spun["error"]["code"] == -32052
        await legacy_session(http, notes, keys["notes"])
        bad = await http.post(notes, json={}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401

    async def blob(data: bytes) -> AsyncIterator[bytes]:
        yield data

    for name in ("a", "b"):
        await box.store.blobs.put("ops", name, blob(b"x" * 1000), quotas=BlobQuotas())
    for _ in range(2):
        await box.store.tasks.create(
            "ops",
            "key:x",
            "hello",
            {"name": "hello"},
            ttl_ms=60_000,
            poll_interval_ms=1000,
            timeout_s=10,
            max_open=5,
        )
    response = await scrape(base)
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    assert value(found, "smcp_box_build_info", version="0.1.0") == 1
    assert value(found, "smcp_box_tenants", state="loaded") == 3
    assert value(found, "smcp_box_sandbox_ticker_up") == 1
    assert value(found, "smcp_box_sandbox_run_slots", state="total") == box.sandbox.scheduler.slots
    assert value(found, "smcp_box_sandbox_run_slots", state="running") == 0
    assert value(found, "smcp_box_sandbox_slot_events_total", event="granted") >= 6
    # Requests and errors are counters per tenant (and kind).
    assert value(found, "smcp_box_requests_total", tenant="ops") == 3
    assert value(found, "smcp_box_request_errors_total", tenant="ops", kind="timeout") == 1
    assert value(found, "smcp_box_request_errors_total", tenant="notes", kind="auth") == 1
    assert value(found, "smcp_box_requests_total", tenant="notes") >= 5
    # Latency quantiles over the last minute: the runaway call dominates the tail.
    p50 = value(found, "smcp_box_request_latency_seconds", tenant="ops", quantile="0.5")
    p99 = value(found, "smcp_box_request_latency_seconds", tenant="ops", quantile="0.99")
    assert 0 < p50 <= p99
    assert p99 >= 0.25
    # The sandbox's figures.
    assert value(found, "smcp_box_fuel_used_total", tenant="ops") > 0
    assert value(found, "smcp_box_module_call_failures_total", tenant="ops", kind="timeout") == 1
    assert value(found, "smcp_box_warm_instances", tenant="notes") >= 1
    assert value(found, "smcp_box_instance_memory_bytes", tenant="notes") >= 65536
    # utils saw no traffic: its only instance is the one vetting ran at load, kept warm.
    assert value(found, "smcp_box_live_instances", tenant="utils") == 1
    assert value(found, "smcp_box_warm_instances", tenant="utils") == 1
    # The store's figures.
    assert value(found, "smcp_box_open_sessions", tenant="notes") == 1
    assert value(found, "smcp_box_kv_keys", tenant="notes") >= 3
    assert value(found, "smcp_box_kv_bytes", tenant="notes") > 0
    assert value(found, "smcp_box_blobs", tenant="ops") == 2
    assert value(found, "smcp_box_blob_bytes", tenant="ops") == 2000
    assert value(found, "smcp_box_blobs", tenant="notes") == 0
    # Open tasks by status (docs/tasks.md): every open status, zero included.
    assert value(found, "smcp_box_open_tasks", tenant="ops", status="working") == 2
    assert value(found, "smcp_box_open_tasks", tenant="ops", status="input_required") == 0
    assert value(found, "smcp_box_open_tasks", tenant="notes", status="working") == 0
    assert value(found, "smcp_box_open_streams", tenant="notes") == 0
    assert value(found, "smcp_box_tenant_enabled", tenant="utils") == 1
    await box.auditor.flush()
    assert value(found, "smcp_box_audit_rows_dropped_total") == 0
    assert value(found, "smcp_box_audit_rows_written_total") > 0


async def test_openmetrics_on_request(metrics_box: tuple[Box, str, dict[str, str]]) -> None:
    _, base, _ = metrics_box
    response = await scrape(base, accept="application/openmetrics-text; version=1.0.0")
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {family.name for family in openmetrics_families(response.text)}
    assert {"smcp_box_requests", "smcp_box_open_sessions", "smcp_box_fuel_used"} <= names


async def test_a_disabled_tenant_and_one_being_removed(
    metrics_box: tuple[Box, str, dict[str, str]],
) -> None:
    box, base, _ = metrics_box
    box.tenants.require("utils").set_enabled(False)
    # A tenant whose pool is gone (mid-removal) is still listed, without sandbox figures.
    box.sandbox.unload("ops")
    found = samples((await scrape(base)).text)
    assert value(found, "smcp_box_tenant_enabled", tenant="utils") == 0
    assert value(found, "smcp_box_tenants", state="enabled") == 2
    assert ("smcp_box_warm_instances", (("tenant", "ops"),)) not in found
    assert value(found, "smcp_box_open_sessions", tenant="ops") == 0


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.168.1.10", False),
        ("::ffff:192.168.1.10", False),
        ("fe80::1", False),
        ("", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_what_counts_as_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


async def test_without_a_token_only_loopback_clients_may_scrape(
    tmp_path: Path, module_cache: Path
) -> None:
    """/metrics names every tenant: it is off the LAN by default."""
    async with started(box_settings(tmp_path, copy_examples(tmp_path / "t"), module_cache)) as box:
        app = create_app(box.settings, box.app_services())
        client = app.test_client()
        lan = await client.get("/metrics", scope_base={"client": ("192.168.1.10", 40000)})
        assert lan.status_code == 403
        assert "token_file" in (await lan.get_data(as_text=True))
        local = await client.get("/metrics", scope_base={"client": ("127.0.0.1", 40000)})
        assert local.status_code == 200
        async with serving(box) as base:
            await scrape(base)  # a real loopback connection


async def test_with_a_token_a_scraper_must_send_it(tmp_path: Path, module_cache: Path) -> None:
    token = "m" * 40
    token_file = tmp_path / "metrics-token"
    token_file.write_text(token + "\n")
    settings = box_settings(
        tmp_path,
        copy_examples(tmp_path / "t"),
        module_cache,
        **{"metrics.token_file": str(token_file)},
    )
    async with started(settings) as box, serving(box) as base, httpx.AsyncClient() as http:
        missing = await http.get(f"{base}/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await http.get(f"{base}/metrics", headers={"authorization": f"Bearer {'x' * 40}"})
        assert wrong.status_code == 401
        right = await scrape(base, authorization=f"Bearer {token}")
        assert "smcp_box_build_info" in right.text
        app = create_app(box.settings, box.app_services())
        lan = await app.test_client().get(
            "/metrics",
            headers={"authorization": f"Bearer {token}"},
            scope_base={"client": ("192.168.1.10", 40000)},
        )
        assert lan.status_code == 200


def test_a_short_metrics_token_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text("short")
    settings = load_settings(None, environ={}, overrides={"metrics.token_file": str(token_file)})
    with pytest.raises(ConfigError, match="at least 32 characters"):
        read_token(settings, settings.metrics.token_file, "metrics-token", "metrics token")
