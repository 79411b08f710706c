"""Admin API: the audit log (page, filter, follow) and the box status."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from smcp_box.admin.status import redact
from smcp_box.errors import AdminRequestFailed
from tests.admin.support import RunningBox, count_follow_polls, running_box
from tests.support.waiting import wait_until


async def record(rb: RunningBox, event: str, tenant: str | None, actor: str, outcome: str) -> None:
    await rb.box.auditor.record(
        event, tenant=tenant, actor=actor, source_ip=None, outcome=outcome, detail={}
    )


async def test_audit_pages_newest_first(rb: RunningBox) -> None:
    for i in range(7):
        await record(rb, f"test.e{i}", "notes", "tester", "ok")
    first = await rb.client.audit(limit=3)
    assert [e["event"] for e in first["entries"]] == ["test.e6", "test.e5", "test.e4"]
    second = await rb.client.audit(limit=3, before_id=first["next_before_id"])
    assert [e["event"] for e in second["entries"]] == ["test.e3", "test.e2", "test.e1"]
    # Each row names the box whose chain holds it, and its place there.
    newest = first["entries"][0]
    assert newest["box"] == rb.box.box_id
    assert newest["seq"] == second["entries"][0]["seq"] + 3


async def test_audit_filters(rb: RunningBox) -> None:
    await record(rb, "test.a", "notes", "admin:alice@socket", "ok")
    await record(rb, "test.a", "utils", "admin:bob@socket", "denied")
    await record(rb, "test.b", "notes", "admin:bob@socket", "ok")

    async def events(**filters: str) -> list[tuple[str, str]]:
        rows = (await rb.client.audit(**filters))["entries"]  # type: ignore[arg-type]
        return [(r["event"], r["tenant"]) for r in rows if r["event"].startswith("test.")]

    assert await events(tenant="notes") == [("test.b", "notes"), ("test.a", "notes")]
    assert await events(event="test.a") == [("test.a", "utils"), ("test.a", "notes")]
    assert await events(actor="bob") == [("test.b", "notes"), ("test.a", "utils")]
    assert await events(outcome="denied") == [("test.a", "utils")]


async def test_audit_bad_query_is_400(rb: RunningBox) -> None:
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.request("GET", "/audit", params={"limit": "many"})
    assert caught.value.status == 400
    assert "'limit' must be an integer" in caught.value.message


async def test_audit_follow_returns_when_a_row_arrives(
    rb: RunningBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = (await rb.client.audit(limit=1))["entries"][0]["id"]
    polls = count_follow_polls(rb, monkeypatch)
    follow = asyncio.create_task(rb.client.audit_follow(last, wait_s=60))
    # Two reads that found nothing new: the request is held open, not answered empty.
    await wait_until(lambda: len(polls) >= 2, what="the follow request to poll twice")
    assert not follow.done()
    await record(rb, "test.late", None, "tester", "ok")
    body = await asyncio.wait_for(follow, 5)
    assert [e["event"] for e in body["entries"]] == ["test.late"]


async def test_audit_follow_times_out_empty(rb: RunningBox) -> None:
    last = (await rb.client.audit(limit=1))["entries"][0]["id"]
    assert (await rb.client.audit_follow(last, wait_s=0))["entries"] == []


async def test_status(rb: RunningBox) -> None:
    body = await rb.client.status()
    assert body["version"] == "0.1.0"
    assert body["uptime_s"] >= 0
    assert body["tenants"] == {"loaded": 2, "enabled": 2, "failed": 0}
    assert body["sandbox"]["ticker_alive"] is True
    assert body["config"]["server"]["port"] == rb.settings.server.port
    assert body["mcp_base_url"].startswith("http://")


def test_redaction_hides_secret_looking_settings() -> None:
    shown = redact({"admin": {"token_file": "", "api_token": "s3cret"}, "password": "x", "n": 1})
    assert shown == {
        "admin": {"token_file": "", "api_token": "<redacted>"},
        "password": "<redacted>",
        "n": 1,
    }


def add_broken_tenant(tenants_dir: Path) -> None:
    """A copy of utils, renamed, whose module no longer matches its pinned sha256."""
    broken = tenants_dir / "broken"
    shutil.copytree(tenants_dir / "utils", broken)
    manifest = broken / "tenant.toml"
    manifest.write_text(manifest.read_text().replace('name = "utils"', 'name = "broken"'))
    (broken / "utils.wasm").write_bytes(b"\x00asm-not-really")


async def test_status_names_tenants_that_failed_to_load(tmp_path: Path, module_cache: Path) -> None:
    async with running_box(tmp_path, module_cache, before_start=add_broken_tenant) as rb:
        body = await rb.client.status()
        assert body["tenants"] == {"loaded": 2, "enabled": 2, "failed": 1}
        assert body["failed"][0]["name"] == "broken"
        assert "sha256" in body["failed"][0]["reason"]
        listed = await rb.client.tenants()
        assert listed["failed"] == body["failed"]
