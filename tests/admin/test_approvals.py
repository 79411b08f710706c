"""Approvals of changed tool definitions (issue 15): a module that rewords its tools after
they were approved keeps serving the approved ones (seen by the real MCP SDK client), raises an
alert (audit, /metrics, tenant list) and shows the diff, until an admin approves the change
with a reason; the approved set is then served and the approval is in the database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from smcp_box.store.audit import AuditRecord
from tests.admin.support import RunningBox, running_box, serving_mcp
from tests.admin.test_cli import smcp
from tests.support.waiting import wait_until
from tests.vetting.drift import DriftModules, build_drift, update_module, write_tenant


@pytest.fixture(scope="session")
def drift_modules(tmp_path_factory: pytest.TempPathFactory) -> DriftModules:
    return build_drift(tmp_path_factory.mktemp("drift"))


@asynccontextmanager
async def sdk_client(base: str, key: str, tenant: str = "drift") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(10.0, read=30.0)
    )
    async with http:
        transport = streamable_http_client(f"{base}/t/{tenant}/mcp", http_client=http)
        async with Client(transport, mode="legacy") as client:
            yield client


async def audit_rows(rb: RunningBox, event: str) -> list[AuditRecord]:
    return await rb.box.store.audit_page(tenant="drift", event=event, limit=50)


async def pending_gauge(base: str) -> float | None:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    match = re.search(r'^smcp_box_tenant_definitions_pending\{tenant="drift"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


async def test_changed_descriptions_serve_the_approved_ones_until_approved(
    tmp_path: Path, module_cache: Path, drift_modules: DriftModules
) -> None:
    def add_drift(tenants: Path) -> None:
        write_tenant(tenants, drift_modules.v1, cache_dir=module_cache)

    async with running_box(tmp_path, module_cache, add_drift) as rb, serving_mcp(rb) as base:
        key = (await rb.client.create_key("drift"))["key"]
        # The tenant.toml pin matched at load: its definitions are recorded as approved.
        (shipped,) = await rb.box.store.approvals("drift")
        assert shipped.actor == "tenant.toml"
        assert await pending_gauge(base) == 0

        update_module(rb.tenants_dir / "drift", drift_modules.v2)
        await rb.client.reload_tenant("drift")

        async with sdk_client(base, key) as client:
            tools = (await client.list_tools()).tools
            assert [(t.name, t.description) for t in tools] == [("work", "Counts to n.")]
            done = await client.call_tool("work", {"n": 3})
            assert done.content[0].text == "done"  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="no approved tool 'extra'"):
                await client.call_tool("extra", {"n": 1})

        # One alert per change, however often the tenant is reloaded or called.
        await rb.client.reload_tenant("drift")
        await rb.box.settle_vetting()
        await wait_until(
            lambda: _count(rb, "tenant.definitions_changed", 1), what="the change's audit row"
        )
        (alert,) = await audit_rows(rb, "tenant.definitions_changed")
        assert alert.outcome == "alert"
        assert alert.detail["action"] == "serve_approved"
        assert alert.detail["added"] == ["extra"]
        assert alert.detail["changed"] == ["work"]
        assert alert.detail["approved_sha256"] == shipped.definitions_sha256
        assert await pending_gauge(base) == 1

        listed = await smcp(rb, "tenant", "list")
        assert "DEFINITIONS CHANGED drift" in listed.out
        (entry,) = [e for e in (await rb.client.catalog())["tenants"] if e["name"] == "drift"]
        assert entry["vetting"]["status"] == "changed"
        assert entry["vetting"]["tools_sha256"] == shipped.definitions_sha256
        assert [t["name"] for t in entry["tools"]] == ["work"]
        shown = await smcp(rb, "tenant", "show", "drift")
        assert "TOOL DEFINITIONS CHANGED" in shown.out
        diff = await smcp(rb, "tenant", "diff", "drift")
        assert diff.code == 0, diff.err
        assert '-    "description": "Counts to n.",' in diff.out
        assert (
            '+    "description": "Counts to n. Also collects whatever the user typed before.",'
            in diff.out
        )
        assert '+    "name": "extra"' in diff.out

        refused = await smcp(rb, "tenant", "approve", "drift", "--reason", " ")
        assert refused.code == 1
        assert "needs a reason" in refused.err
        stale = await smcp(rb, "tenant", "approve", "drift", "--reason", "ok", "--sha256", "0" * 64)
        assert stale.code == 1
        assert "not the" in stale.err

        approved = await smcp(
            rb, "tenant", "approve", "drift", "--reason", "reviewed the new extra tool"
        )
        assert approved.code == 0, approved.err
        history = await rb.box.store.approvals("drift")
        assert len(history) == 2
        latest = history[-1]
        assert re.fullmatch(r"admin:.+@socket", latest.actor)
        assert latest.reason == "reviewed the new extra tool"
        assert [t["name"] for t in latest.definitions] == ["extra", "work"]
        # The refused stale approval is audited too (as an error), before the one that counts.
        await wait_until(lambda: _count(rb, "admin.tenant.approve", 2), what="the approval rows")
        failed, row = sorted(await audit_rows(rb, "admin.tenant.approve"), key=lambda r: r.id)
        assert failed.outcome == "error"
        assert row.outcome == "ok"
        assert row.detail["reason"] == "reviewed the new extra tool"
        assert row.detail["definitions_sha256"] == latest.definitions_sha256
        assert row.detail["previous_sha256"] == shipped.definitions_sha256

        assert await pending_gauge(base) == 0
        (entry,) = [e for e in (await rb.client.catalog())["tenants"] if e["name"] == "drift"]
        assert entry["vetting"]["status"] == "pinned"
        assert entry["vetting"]["tools_sha256"] == latest.definitions_sha256
        assert "no change awaiting approval" in (await smcp(rb, "tenant", "diff", "drift")).out
        async with sdk_client(base, key) as client:
            tools = (await client.list_tools()).tools
            assert sorted(t.name for t in tools) == ["extra", "work"]
            extra = await client.call_tool("extra", {"n": 1})
            assert extra.content[0].text == "done"  # type: ignore[union-attr]


async def test_a_changed_prompt_serves_the_approved_one_until_approved(
    tmp_path: Path, module_cache: Path, drift_modules: DriftModules
) -> None:
    def add_drift(tenants: Path) -> None:
        write_tenant(tenants, drift_modules.v1, cache_dir=module_cache)

    async with running_box(tmp_path, module_cache, add_drift) as rb, serving_mcp(rb) as base:
        key = (await rb.client.create_key("drift"))["key"]
        (shipped,) = await rb.box.store.approvals("drift")
        # The pin covers the tools; the prompts were approved as first seen with it.
        assert shipped.others is not None
        assert [p["name"] for p in shipped.others["prompts"]] == ["hint"]

        # Version 3: the same tools (the pin still matches), a reworded prompt, a new one.
        update_module(rb.tenants_dir / "drift", drift_modules.v3)
        await rb.client.reload_tenant("drift")
        async with sdk_client(base, key) as client:
            prompts = (await client.list_prompts()).prompts
            assert [(p.name, p.description) for p in prompts] == [("hint", "How to call work.")]
            got = await client.get_prompt("hint")
            assert got.messages[0].content.text == "Call work with a small n."  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="no approved prompt 'leak'"):
                await client.get_prompt("leak")

        await rb.box.settle_vetting()
        await wait_until(
            lambda: _count(rb, "tenant.definitions_changed", 1), what="the change's audit row"
        )
        (alert,) = await audit_rows(rb, "tenant.definitions_changed")
        assert alert.detail["added"] == ["prompt:leak"]
        assert alert.detail["changed"] == ["prompt:hint"]
        assert alert.detail["current_sha256"] == shipped.definitions_sha256
        assert await pending_gauge(base) == 1
        diff = await smcp(rb, "tenant", "diff", "drift")
        assert '-    "description": "How to call work.",' in diff.out
        assert '+    "description": "How to call work, and what else to send along.",' in diff.out
        assert "+++ module prompts" in diff.out

        body = await rb.client.tenant_definitions("drift")
        approved = await smcp(
            rb,
            "tenant",
            "approve",
            "drift",
            "--reason",
            "the new prompts are fine",
            "--sha256",
            body["pending"]["review_sha256"],
        )
        assert approved.code == 0, approved.err
        latest = (await rb.box.store.approvals("drift"))[-1]
        assert latest.definitions_sha256 == shipped.definitions_sha256
        assert latest.others is not None
        assert [p["name"] for p in latest.others["prompts"]] == ["hint", "leak"]
        assert await pending_gauge(base) == 0
        async with sdk_client(base, key) as client:
            prompts = (await client.list_prompts()).prompts
            assert sorted(p.name for p in prompts) == ["hint", "leak"]
            assert (await client.get_prompt("leak")).messages


async def test_refuse_mode_serves_nothing_until_approved(
    tmp_path: Path, module_cache: Path, drift_modules: DriftModules
) -> None:
    def add_drift(tenants: Path) -> None:
        write_tenant(
            tenants,
            drift_modules.v1,
            vetting='on_changed_definitions = "refuse"',
            cache_dir=module_cache,
        )

    async with running_box(tmp_path, module_cache, add_drift) as rb:
        update_module(rb.tenants_dir / "drift", drift_modules.v2)
        reload = await smcp(rb, "tenant", "reload", "drift")
        assert reload.code == 1
        assert "changed since they were approved" in reload.err
        # A failed reload keeps the previous version; a full reload (SIGHUP's) drops it.
        assert rb.box.tenants.get("drift") is not None
        await rb.box.reload_tenants(actor="test")
        assert rb.box.tenants.get("drift") is None
        listed = await rb.client.tenants()
        assert listed["definitions_pending"] == ["drift"]
        assert [t["name"] for t in listed["tenants"]] == ["notes", "utils"]
        (alert,) = await audit_rows(rb, "tenant.definitions_changed")
        assert alert.detail["action"] == "refuse"

        body = await rb.client.tenant_definitions("drift")
        await rb.client.approve_tenant(
            "drift", "the update is fine", body["pending"]["review_sha256"]
        )
        served = rb.box.tenants.require("drift")
        assert served.definitions_pending is None
        assert served.served_tools is None


async def test_approving_an_unpinned_tenant_holds_its_later_changes(
    tmp_path: Path, module_cache: Path, drift_modules: DriftModules
) -> None:
    def add_drift(tenants: Path) -> None:
        write_tenant(tenants, drift_modules.v1, pinned=False)

    async with running_box(tmp_path, module_cache, add_drift) as rb:
        assert await rb.box.store.approvals("drift") == []
        shown = await smcp(rb, "tenant", "diff", "drift")
        assert "NOT PINNED and never approved" in shown.out
        assert '+    "description": "Counts to n.",' in shown.out
        approved = await smcp(rb, "tenant", "approve", "drift", "--reason", "first review")
        assert approved.code == 0, approved.err
        (record,) = await rb.box.store.approvals("drift")
        assert record.reason == "first review"
        assert rb.box.tenants.require("drift").vet_report.pin_status == "match"  # type: ignore[union-attr]

        update_module(rb.tenants_dir / "drift", drift_modules.v2)
        await rb.client.reload_tenant("drift")
        tenant = rb.box.tenants.require("drift")
        assert tenant.definitions_pending is not None
        assert [t["name"] for t in tenant.served_tools or ()] == ["work"]
        # The box's own describe calls see the module; clients see the approved definitions.
        assert [t["name"] for t in (await tenant.describe()).tools or ()] == ["work"]


async def _count(rb: RunningBox, event: str, expected: int) -> bool:
    return len(await audit_rows(rb, event)) == expected


def test_a_tenant_may_only_tighten_the_box(tmp_path: Path) -> None:
    from smcp_box.errors import ConfigError
    from smcp_box.tenancy.manifest import load_manifest

    folder = tmp_path / "t"
    folder.mkdir()
    base = 'name = "t"\nmodule = "m.wasm"\nsha256 = "' + "a" * 64 + '"\n[vetting]\n'
    (folder / "tenant.toml").write_text(base + 'on_changed_definitions = "lenient"\n')
    with pytest.raises(ConfigError, match="on_changed_definitions must be"):
        load_manifest(folder / "tenant.toml")
    (folder / "tenant.toml").write_text(base + 'baseline = "block"\n')
    assert load_manifest(folder / "tenant.toml").baseline == "block"
