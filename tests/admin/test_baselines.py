"""Behaviour baselines (issue 15): after its warm-up a tool's call with 100x its usual fuel is
flagged in audit and /metrics (and served); under ``baseline = "block"`` the tool's later calls
are refused until ``smcp-box tenant baseline-reset``. Profiles survive in the database."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.errors import MODULE_UNAVAILABLE
from smcp_box.tenancy.baselines import TenantBaselines
from tests.admin.support import RunningBox, call_tool, mcp_session, running_box, serving_mcp
from tests.admin.test_approvals import drift_modules  # noqa: F401 - the session fixture
from tests.admin.test_cli import smcp
from tests.support.waiting import wait_until
from tests.vetting.drift import DriftModules, write_tenant

USUAL_N = 1_000
#: Loop iterations of the far-off call: far more than 100x the usual call's whole fuel.
FAR_N = 5_000_000


def reply_of(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    if "json" in response.headers["content-type"]:
        body: dict[str, Any] = response.json()
        return body
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    parsed: dict[str, Any] = json.loads(data[-1])
    return parsed


class Caller:
    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.http, self.url, self.headers = http, url, headers

    async def work(self, n: int) -> dict[str, Any]:
        return reply_of(await call_tool(self.http, self.url, self.headers, "work", {"n": n}))


async def caller(rb: RunningBox, base: str, http: httpx.AsyncClient, tenant: str) -> Caller:
    key = (await rb.client.create_key(tenant))["key"]
    url = f"{base}/t/{tenant}/mcp"
    return Caller(http, url, await mcp_session(http, url, key))


async def metric(base: str, name: str, tenant: str) -> float | None:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    pattern = rf'^smcp_box_{name}\{{tenant="{tenant}",tool="work"\}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else None


async def flags(rb: RunningBox, tenant: str) -> list[Any]:
    return await rb.box.store.audit_page(tenant=tenant, event="tool.baseline_flag", limit=50)


async def test_a_call_with_100x_its_usual_fuel_is_flagged_and_block_mode_refuses(
    tmp_path: Path,
    module_cache: Path,
    drift_modules: DriftModules,  # noqa: F811 - the session fixture imported above
) -> None:
    def add_tenants(tenants: Path) -> None:
        write_tenant(tenants, drift_modules.v1, pinned=False)
        write_tenant(
            tenants,
            drift_modules.v1,
            name="drift-block",
            vetting='baseline = "block"',
            pinned=False,
        )

    async with (
        running_box(tmp_path, module_cache, add_tenants) as rb,
        serving_mcp(rb) as base,
        httpx.AsyncClient(timeout=30) as http,
    ):
        warmup = rb.box.tenants.baselines.rule.warmup
        flagging = await caller(rb, base, http, "drift")
        for _ in range(warmup):
            assert "result" in await flagging.work(USUAL_N)
        assert await flags(rb, "drift") == []

        far = await flagging.work(FAR_N)
        assert "result" in far, "flag mode still answers the call"
        await wait_until(lambda: _has_rows(rb, "drift", 1), what="the flag's audit row")
        (row,) = await flags(rb, "drift")
        assert row.outcome == "flagged"
        fuel = next(d for d in row.detail["deviations"] if d["figure"] == "fuel")
        assert fuel["value"] >= 100 * fuel["mean"]
        assert await metric(base, "baseline_flags_total", "drift") == 1
        # Flags are counted each time but audited at most once a minute per tool.
        assert "result" in await flagging.work(FAR_N)
        assert await metric(base, "baseline_flags_total", "drift") == 2
        assert "result" in await flagging.work(USUAL_N)
        await rb.box.auditor.flush()
        assert len(await flags(rb, "drift")) == 1

        blocking = await caller(rb, base, http, "drift-block")
        for _ in range(warmup):
            await blocking.work(USUAL_N)
        assert "result" in await blocking.work(FAR_N)
        refused = await blocking.work(USUAL_N)
        assert refused["error"]["code"] == MODULE_UNAVAILABLE
        assert "baseline-reset drift-block work" in refused["error"]["message"]
        assert await metric(base, "tool_blocked", "drift-block") == 1
        await wait_until(lambda: _has_rows(rb, "drift-block", 1), what="the block's audit row")
        assert (await flags(rb, "drift-block"))[0].outcome == "blocked"

        shown = await smcp(rb, "tenant", "baselines", "drift-block")
        assert "baseline mode block" in shown.out
        assert "work: BLOCKED" in shown.out
        details = await rb.client.tenant("drift-block")
        assert details["blocked_tools"] == ["work"]
        (profile,) = details["baselines"]
        assert profile["calls"] == warmup

        reset = await smcp(rb, "tenant", "baseline-reset", "drift-block", "work")
        assert reset.code == 0, reset.err
        assert "result" in await blocking.work(USUAL_N)
        assert await metric(base, "tool_blocked", "drift-block") is None

        # Profiles are written to the database (in batches) and read back at start.
        await rb.box.flush_baselines()
        rows = {(r.tenant, r.tool): r for r in await rb.box.store.baselines()}
        assert rows[("drift", "work")].profile["calls"] == warmup + 1
        assert rows[("drift", "work")].profile["flags"] == 2
        assert rows[("drift-block", "work")].profile["calls"] == 1
        restarted = TenantBaselines(rb.box.tenants.baselines.rule)
        restarted.replace_all(rows.values())
        (again,) = restarted.tools_json("drift")
        assert again["calls"] == warmup + 1
        assert not again["warming_up"]


async def _has_rows(rb: RunningBox, tenant: str, count: int) -> bool:
    return len(await flags(rb, tenant)) == count


def test_unknown_baseline_mode_is_refused() -> None:
    from smcp_box.config import load_settings
    from smcp_box.errors import ConfigError

    with pytest.raises(ConfigError, match=r"vetting\.baseline must be"):
        load_settings(None, environ={"SMCP_BOX_VETTING_BASELINE": "ignore"})
    settings = load_settings(None, environ={"SMCP_BOX_VETTING_ON_CHANGED_DEFINITIONS": "refuse"})
    assert settings.vetting.on_changed_definitions == "refuse"
