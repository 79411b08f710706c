"""Resource receipts and the audit rows of real traffic: a real box served by Hypercorn, real
keys, the ops tenant's module built from C."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.box import Box
from smcp_box.errors import ConfigError
from smcp_box.store import AuditRecord
from smcp_box.tenancy.manifest import load_manifest
from smcp_box.tenancy.runtime import RECEIPT_META_KEY
from tests.e2e.clients import modern_headers, modern_request, parse_single_response
from tests.ops.support import add_ops_tenant, box_settings, serving, started

RECEIPT_FIELDS = {"fuel", "wall_ms", "memory_bytes", "host_calls"}


@dataclass
class Served:
    box: Box
    base: str
    keys: dict[str, str]
    key_ids: dict[str, str]
    tenants_dir: Path

    def url(self, tenant: str) -> str:
        return f"{self.base}/t/{tenant}/mcp"

    async def rows(self, event: str | None = None) -> list[AuditRecord]:
        await self.box.auditor.flush()
        rows = await self.box.store.audit_page(since_id=0, limit=1000)
        return [row for row in rows if event is None or row.event == event]


@pytest.fixture
async def served(tmp_path: Path, ops_module: Path, module_cache: Path) -> AsyncIterator[Served]:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module, name="ops", receipts=True)
    add_ops_tenant(tenants, ops_module, name="ops-quiet")
    add_ops_tenant(tenants, ops_module, name="ops-public", auth="none")
    add_ops_tenant(
        tenants, ops_module, name="ops-strict", limits="fuel = 100000000000\ntimeout_ms = 200\n"
    )
    async with started(box_settings(tmp_path, tenants, module_cache)) as box:
        keys, key_ids = {}, {}
        for name in ("ops", "ops-quiet", "ops-strict"):
            key_ids[name], keys[name] = await box.store.create_api_key(name, "test")
        async with serving(box) as base:
            yield Served(box, base, keys, key_ids, tenants)


async def call(
    served: Served, tenant: str, tool: str, args: dict[str, Any] | None = None, **headers: str
) -> tuple[dict[str, Any], httpx.Response]:
    body = modern_request(1, "tools/call", {"name": tool, "arguments": args or {}})
    sent = modern_headers(served.keys.get(tenant, "none"), "tools/call", tool) | headers
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(served.url(tenant), json=body, headers=sent)
    return parse_single_response(response), response


async def test_receipt_in_meta_when_the_tenant_allows_it(served: Served) -> None:
    reply, _ = await call(served, "ops", "hello")
    receipt = reply["result"]["_meta"][RECEIPT_META_KEY]
    assert set(receipt) == RECEIPT_FIELDS
    assert receipt["fuel"] > 0
    assert receipt["memory_bytes"] >= 65536
    assert receipt["wall_ms"] > 0
    # The box's own _meta (serverInfo) is still there beside it.
    assert len(reply["result"]["_meta"]) >= 2
    quiet, _ = await call(served, "ops-quiet", "hello")
    assert RECEIPT_META_KEY not in quiet["result"].get("_meta", {})


async def test_every_tool_call_leaves_a_receipt_in_its_audit_row(served: Served) -> None:
    reply, response = await call(served, "ops", "sleep", {"ms": 30}, **{"X-Request-Id": "req-42"})
    assert reply["result"]["content"][0]["text"] == "awake"
    assert response.headers["x-request-id"] == "req-42"
    await call(served, "ops-quiet", "hello")
    rows = await served.rows("tool.call")
    assert [(r.tenant, r.detail["tool"]) for r in rows] == [
        ("ops", "sleep"),
        ("ops-quiet", "hello"),
    ]
    first = rows[0]
    assert first.actor == f"key:{served.key_ids['ops']}"
    assert first.source_ip == "127.0.0.1"
    assert first.outcome == "ok"
    assert first.detail["request_id"] == "req-42"
    assert first.detail["receipt"] == reply["result"]["_meta"][RECEIPT_META_KEY]
    assert first.detail["receipt"]["wall_ms"] >= 25  # the guest clock ticks in whole ms
    assert set(rows[1].detail["receipt"]) == RECEIPT_FIELDS


async def test_authentication_successes_are_audited(served: Served) -> None:
    await call(served, "ops", "hello")
    await call(served, "ops-public", "hello")
    successes = await served.rows("auth.success")
    assert [(r.tenant, r.actor, r.source_ip, r.outcome) for r in successes] == [
        ("ops", f"key:{served.key_ids['ops']}", "127.0.0.1", "ok")
    ]
    # A public tenant checks no credential; its calls are still audited, as anonymous.
    public = [r for r in await served.rows("tool.call") if r.tenant == "ops-public"]
    assert [r.actor for r in public] == ["anonymous"]


async def test_failed_authentication_is_audited(served: Served) -> None:
    served.keys["ops"] = "smcp_not-a-real-key-0000000000000000"
    _, response = await call(served, "ops", "hello")
    assert response.status_code == 401
    failures = await served.rows("auth.failure")
    assert failures
    assert all(r.outcome == "denied" and r.tenant == "ops" for r in failures)
    assert served.keys["ops"] not in str([r.detail for r in failures])


@pytest.mark.parametrize(
    ("tool", "kind", "code"), [("spin", "timeout", -32052), ("trap", "trap", -32050)]
)
async def test_limit_hits_are_audited_with_what_is_known(
    served: Served, tool: str, kind: str, code: int
) -> None:
    reply, _ = await call(served, "ops-strict", tool)
    assert reply["error"]["code"] == code
    (hit,) = await served.rows("limit.hit")
    assert (hit.tenant, hit.outcome, hit.actor) == (
        "ops-strict",
        "error",
        f"key:{served.key_ids['ops-strict']}",
    )
    assert hit.detail["limit"] == kind
    assert hit.detail["tool"] == tool
    assert hit.detail["method"] == "tools/call"
    assert hit.detail["receipt"]["wall_ms"] > 0
    if kind == "timeout":
        assert hit.detail["receipt"]["wall_ms"] >= 200
    # A call stopped by a limit leaves its limit row instead of a tool.call row.
    assert await served.rows("tool.call") == []


async def test_tenant_loads_reloads_and_failures_are_audited(
    served: Served, ops_module: Path
) -> None:
    loads = await served.rows("tenant.load")
    assert sorted(r.tenant for r in loads) == ["ops", "ops-public", "ops-quiet", "ops-strict"]
    assert all(r.actor == "system" and r.detail["sha256"] for r in loads)
    shutil.rmtree(served.tenants_dir / "ops-quiet")
    broken = add_ops_tenant(served.tenants_dir, ops_module, name="broken")
    (broken / "ops.wasm").write_bytes(b"\0asm garbage")
    await served.box.reload_tenants(actor="admin:test")
    (unloaded,) = await served.rows("tenant.unload")
    assert (unloaded.tenant, unloaded.actor) == ("ops-quiet", "admin:test")
    (failed,) = await served.rows("tenant.load_failed")
    assert failed.outcome == "error"
    assert "sha256" in failed.detail["reason"]
    # Unchanged tenants leave no row on a reload.
    assert len(await served.rows("tenant.load")) == 4


def test_manifest_receipts_key(tmp_path: Path, ops_module: Path) -> None:
    folder = add_ops_tenant(tmp_path, ops_module, receipts=True)
    assert load_manifest(folder / "tenant.toml").receipts is True
    folder = add_ops_tenant(tmp_path, ops_module, name="plain")
    assert load_manifest(folder / "tenant.toml").receipts is False
    manifest = folder / "tenant.toml"
    manifest.write_text(
        manifest.read_text().replace('auth = "api_key"', 'auth = "api_key"\nreceipts = "yes"')
    )
    with pytest.raises(ConfigError, match="receipts must be true or false"):
        load_manifest(manifest)


async def test_retention_prunes_behind_a_checkpoint(
    tmp_path: Path, ops_module: Path, module_cache: Path
) -> None:
    now = [1_800_000_000.0]
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, module_cache, **{"audit.retention_days": 7})
    box = await Box.start(settings, clock=lambda: now[0])
    try:
        for i in range(5):
            await box.auditor.record(
                "admin.test", tenant=None, actor="t", source_ip=None, outcome="ok", detail={"i": i}
            )
        now[0] += 6 * 86_400
        await box.auditor.record(
            "admin.recent", tenant=None, actor="t", source_ip=None, outcome="ok", detail={}
        )
        assert await box.prune_audit() == 0  # nothing is 7 days old yet
        now[0] += 2 * 86_400
        pruned = await box.prune_audit()
        # box.start, the tenant.load row and the five test rows went; the recent one stays.
        assert pruned == 7
        rows = await box.store.audit_page(since_id=0)
        assert [r.kind for r in rows] == ["checkpoint", "event"]
        assert rows[1].event == "admin.recent"
        assert (await box.store.verify_audit_chain()).ok
    finally:
        await box.stop()
