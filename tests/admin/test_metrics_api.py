"""Admin API: live metrics, fed by real MCP traffic through the box's HTTP app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smcp_box.errors import AdminRequestFailed
from tests.admin.support import RunningBox, call_tool, mcp_session, serving_mcp
from tests.support.waiting import wait_until


async def test_metrics_after_real_traffic(rb: RunningBox) -> None:
    await rb.box.store.kv_set("notes", "k", "some value")
    async with serving_mcp(rb) as base, httpx.AsyncClient() as http:
        url = f"{base}/t/utils/mcp"
        key = (await rb.client.create_key("utils", "metrics test"))["key"]
        headers = await mcp_session(http, url, key)
        for i in range(5):
            reply = await call_tool(http, url, headers, "echo", {"text": f"hi {i}"})
            assert reply.status_code == 200, reply.text
        denied = await http.post(f"{base}/t/notes/mcp", json={}, headers={"accept": "*/*"})
        assert denied.status_code in (401, 406)
        # The admin server's sampler copies sandbox gauges into the metrics once a second.
        body: dict[str, Any] = {}

        async def sampled() -> bool:
            nonlocal body
            body = await rb.client.metrics(window_s=30)
            row = next(row for row in body["tenants"] if row["name"] == "utils")
            return bool(row["warm_instances"] >= 1 and row["memory_bytes"] and row["fuel_used"])

        await wait_until(sampled, what="the sampler to record utils' gauges", interval=0.1)
    assert body["window_s"] == 30
    utils = next(row for row in body["tenants"] if row["name"] == "utils")
    assert utils["requests"] >= 5
    assert utils["requests_per_s"] > 0
    assert utils["latency_ms"]["p95"] > 0
    assert utils["latency_ms"]["p50"] <= utils["latency_ms"]["p95"] <= utils["latency_ms"]["p99"]
    assert utils["warm_instances"] >= 1
    assert utils["memory_bytes"] > 0
    assert utils["fuel_used"] > 0
    assert utils["open_sessions"] == 1
    assert sum(utils["series"]["requests"]) == utils["requests"]
    assert set(utils["series"]) == {"requests", "errors", "latency_p95_ms", "fuel", "memory_bytes"}
    assert all(len(series) == 30 for series in utils["series"].values())
    notes = next(row for row in body["tenants"] if row["name"] == "notes")
    assert notes["kv_keys"] == 1
    assert notes["kv_bytes"] > 0
    total = body["total"]
    assert total["requests"] >= utils["requests"]
    assert total["memory_bytes"] >= utils["memory_bytes"]
    assert total["open_sessions"] == 1


async def test_metrics_of_one_tenant_and_bad_window(rb: RunningBox) -> None:
    body = await rb.client.metrics(tenant="notes")
    assert [row["name"] for row in body["tenants"]] == ["notes"]
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.metrics(window_s=100_000)
    assert caught.value.status == 400
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.metrics(tenant="nope")
    assert caught.value.status == 404
