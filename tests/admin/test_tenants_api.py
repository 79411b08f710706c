"""Admin API: tenants, over the real socket of a real box."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smcp_box.admin.upload import read_tenant_upload
from smcp_box.errors import AdminRequestFailed
from smcp_box.store.blobs import BlobQuotas
from tests.admin.support import RunningBox


def renamed_manifest(folder: Path, name: str) -> tuple[str, bytes]:
    text, module = read_tenant_upload(folder)
    return re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text), module


async def audit_events(rb: RunningBox) -> list[tuple[str, str | None, str]]:
    rows = (await rb.client.audit(limit=100))["entries"]
    return [(r["event"], r["tenant"], r["outcome"]) for r in reversed(rows)]


async def refused(coro: object) -> AdminRequestFailed:
    with pytest.raises(AdminRequestFailed) as caught:
        await coro  # type: ignore[misc]
    return caught.value


async def test_list_and_show(rb: RunningBox) -> None:
    body = await rb.client.tenants()
    assert [t["name"] for t in body["tenants"]] == ["notes", "utils"]
    assert body["failed"] == []
    notes = await rb.client.tenant("notes")
    assert notes["enabled"] is True
    assert notes["auth"] == "api_key"
    assert notes["limits"]["memory_mib"] == 64
    assert notes["url"].endswith("/t/notes/mcp")
    assert {"open_sessions", "active_keys", "kv_keys", "kv_bytes", "pool"} <= set(notes)
    assert notes["pool"]["warm_instances"] >= 0


async def test_config_values_are_never_shown(rb: RunningBox) -> None:
    utils = await rb.client.tenant("utils")
    assert utils["config_keys"] == ["greeting"]
    assert "Hello" not in json.dumps(utils)


async def test_unknown_tenant_is_404_with_a_clear_message(rb: RunningBox) -> None:
    error = await refused(rb.client.tenant("nope"))
    assert error.status == 404
    assert "no tenant named 'nope'" in error.message


async def test_disable_and_enable_persist_and_are_audited(rb: RunningBox) -> None:
    body = await rb.client.set_enabled("notes", False)
    assert body["enabled"] is False
    assert rb.box.tenants.require("notes").enabled is False
    saved = await rb.box.store.tenant_state("notes")
    assert saved is not None
    assert saved.enabled is False
    # Admin state lives in the database, never in the (read-only) tenants folder.
    assert not (rb.tenants_dir / "notes" / "admin-overrides.json").exists()
    await rb.client.set_enabled("notes", True)
    assert rb.box.tenants.require("notes").enabled is True
    events = await audit_events(rb)
    assert ("admin.tenant.disable", "notes", "ok") in events
    assert ("admin.tenant.enable", "notes", "ok") in events


async def test_disabled_stays_disabled_after_a_reload(rb: RunningBox) -> None:
    await rb.client.set_enabled("utils", False)
    body = await rb.client.reload_tenant("utils")
    assert body["enabled"] is False


async def test_set_limits_overrides_and_drops(rb: RunningBox) -> None:
    body = await rb.client.set_limits("notes", {"fuel": 1_000_000, "timeout_ms": 250})
    assert body["limits"]["fuel"] == 1_000_000
    assert body["limits"]["timeout_ms"] == 250
    assert body["admin_limit_overrides"] == {"fuel": 1_000_000, "timeout_ms": 250}
    assert rb.box.tenants.require("notes").module.limits.fuel == 1_000_000
    body = await rb.client.set_limits("notes", {"fuel": None})
    assert body["limits"]["fuel"] == 2_000_000_000  # back to tenant.toml
    assert body["admin_limit_overrides"] == {"timeout_ms": 250}
    saved = await rb.box.store.tenant_state("notes")
    assert saved is not None
    assert dict(saved.limits) == {"timeout_ms": 250}
    assert ("admin.tenant.limits", "notes", "ok") in await audit_events(rb)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({}, "name at least one limit"),
        ({"gas": 1}, "unknown limit 'gas'"),
        ({"fuel": "lots"}, "fuel = 'lots' is not an integer"),
        ({"fuel": True}, "fuel = True is not an integer"),
        ({"fuel": -5}, "fuel = -5 is out of range: allowed 1000..1000000000000 (fuel units)"),
    ],
)
async def test_bad_limits_are_400(rb: RunningBox, limits: dict[str, object], message: str) -> None:
    error = await refused(rb.client.request("PATCH", "/tenants/notes/limits", json=limits))
    assert error.status == 400
    assert message in error.message


async def test_limits_of_unknown_tenant_are_404(rb: RunningBox) -> None:
    error = await refused(rb.client.set_limits("nope", {"fuel": 5000}))
    assert error.status == 404


async def test_add_installs_checks_and_serves(rb: RunningBox) -> None:
    manifest, module = renamed_manifest(rb.tenants_dir / "utils", "utils-two")
    body = await rb.client.add_tenant(manifest, module)
    assert body["name"] == "utils-two"
    assert body["origin"] == "admin"
    # Kept in the state directory and recorded in the database, not in the tenants folder.
    added = rb.box.added_tenants_path()
    assert (added / "utils-two" / "tenant.toml").read_text() == manifest
    assert body["folder"] == str(added / "utils-two")
    assert not (rb.tenants_dir / "utils-two").exists()
    saved = await rb.box.store.tenant_state("utils-two")
    assert saved is not None
    assert saved.origin == "admin"
    assert saved.manifest == manifest
    assert rb.box.tenants.get("utils-two") is not None
    assert not [p for p in added.iterdir() if p.name.startswith(".incoming")]
    assert ("admin.tenant.add", "utils-two", "ok") in await audit_events(rb)


async def test_add_refuses_a_name_in_use(rb: RunningBox) -> None:
    manifest, module = read_tenant_upload(rb.tenants_dir / "utils")
    error = await refused(rb.client.add_tenant(manifest, module))
    assert error.status == 409
    assert "already exists" in error.message
    assert ("admin.tenant.add", None, "error") in await audit_events(rb)


async def test_add_refuses_a_module_that_does_not_match_its_pin(rb: RunningBox) -> None:
    manifest, module = renamed_manifest(rb.tenants_dir / "utils", "tampered")
    error = await refused(rb.client.add_tenant(manifest, module + b"\x00"))
    assert error.status == 400
    assert "sha256" in error.message
    added = rb.box.added_tenants_path()
    assert not (added / "tampered").exists()
    assert not [p for p in added.iterdir() if p.name.startswith(".incoming")]
    assert await rb.box.store.tenant_state("tampered") is None


async def test_add_refuses_bad_input(rb: RunningBox) -> None:
    error = await refused(rb.client.request("POST", "/tenants", json={"manifest": "x"}))
    assert error.status == 400
    error = await refused(
        rb.client.request("POST", "/tenants", json={"manifest": "x", "module": "@@"})
    )
    assert "base64" in error.message
    bad_toml = {"manifest": "name = ", "module": base64.b64encode(b"x").decode()}
    error = await refused(rb.client.request("POST", "/tenants", json=bad_toml))
    assert error.status == 400
    assert "not valid TOML" in error.message


async def test_reload_picks_up_a_fixed_tenant(rb: RunningBox) -> None:
    manifest_path = rb.tenants_dir / "utils" / "tenant.toml"
    good = manifest_path.read_text()
    manifest_path.write_text(re.sub(r'(?m)^auth = ".*"$', 'auth = "sometimes"', good))
    error = await refused(rb.client.reload_tenant("utils"))
    assert error.status == 400
    assert "auth must be" in error.message
    # The previous version keeps serving; the failure is reported.
    assert rb.box.tenants.get("utils") is not None
    failed = (await rb.client.tenants())["failed"]
    assert [f["name"] for f in failed] == ["utils"]
    manifest_path.write_text(good)
    body = await rb.client.reload_tenant("utils")
    assert body["name"] == "utils"
    assert (await rb.client.tenants())["failed"] == []
    assert ("admin.tenant.reload", "utils", "error") in await audit_events(rb)
    assert ("admin.tenant.reload", "utils", "ok") in await audit_events(rb)


async def test_reload_unknown_is_404(rb: RunningBox) -> None:
    assert (await refused(rb.client.reload_tenant("nope"))).status == 404


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_remove_hides_a_folder_tenant_and_deletes_its_data(rb: RunningBox) -> None:
    store = rb.box.store
    await store.kv_set("notes", "a", "1")
    await store.create_api_key("notes", "laptop")
    await store.create_session("notes", "sid-1", "2025-11-25", {"name": "t"})
    await store.create_user("alice", "$argon2id$stub")
    await store.set_user_grant("alice", "notes", frozenset({"mcp:tools"}))
    await store.blobs.put("notes", "kept/file", _one(b"data"), quotas=BlobQuotas())
    task = await store.tasks.create(
        "notes",
        "anonymous",
        "list",
        {"name": "list"},
        ttl_ms=60_000,
        poll_interval_ms=1000,
        timeout_s=10,
        max_open=5,
    )
    body = await rb.client.remove_tenant("notes")
    assert body == {
        "removed": "notes",
        "origin": "folder",
        "folder": str(rb.tenants_dir / "notes"),
        "files_deleted": False,
        "kv_keys_deleted": 1,
        "keys_revoked": 1,
        "sessions_ended": 1,
        "grants_removed": 1,
        "secrets_deleted": 0,
        # notes ships pinned: the box recorded its definitions as approved at load.
        "approvals_deleted": 1,
        "blobs_deleted": 1,
        "tasks_deleted": 1,
    }
    assert await store.tasks.get("notes", task.task_id, None) is None
    assert await store.user_grants("alice") == {}
    assert await store.approvals("notes") == []
    assert await store.blobs.listing("notes") == []
    # The tenants folder is read-only input: the tenant is hidden, its files stay.
    assert (rb.tenants_dir / "notes" / "tenant.toml").is_file()
    saved = await rb.box.store.tenant_state("notes")
    assert saved is not None
    assert saved.removed
    assert rb.box.tenants.get("notes") is None
    assert await store.kv_usage("notes") == (0, 0)
    assert all(k.revoked for k in await store.list_api_keys("notes"))
    assert await store.count_open_sessions("notes") == 0
    assert ("admin.tenant.remove", "notes", "ok") in await audit_events(rb)
    assert (await refused(rb.client.tenant("notes"))).status == 404
    assert (await rb.client.tenants())["removed"] == ["notes"]
    # A reload of the tenants folder keeps it hidden; removing it again is a 404.
    await rb.box.reload_tenants(actor="test")
    assert rb.box.tenants.get("notes") is None
    assert (await refused(rb.client.remove_tenant("notes"))).status == 404


async def test_remove_unknown_is_404(rb: RunningBox) -> None:
    error = await refused(rb.client.remove_tenant("nope"))
    assert error.status == 404
    assert ("admin.tenant.remove", "nope", "error") in await audit_events(rb)


async def test_invalid_tenant_name_is_400(rb: RunningBox) -> None:
    assert (await refused(rb.client.remove_tenant("..%2F"))).status in (400, 404)
    assert (await refused(rb.client.reload_tenant("Bad_Name"))).status == 400
