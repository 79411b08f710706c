"""Admin state lives in the database: added tenants load with the folder's, removing one never
deletes the tenants folder's files, a removed folder tenant can be served again, name clashes
are reported, and a restart keeps every change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from smcp_box.admin.upload import read_tenant_upload
from smcp_box.errors import AdminRequestFailed
from tests.admin.support import RunningBox, running_box


def renamed(folder: Path, name: str) -> tuple[str, bytes]:
    text, module = read_tenant_upload(folder)
    return re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text), module


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_remove_of_an_added_tenant_deletes_its_row_and_files(rb: RunningBox) -> None:
    manifest, module = renamed(rb.tenants_dir / "utils", "extra")
    await rb.client.add_tenant(manifest, module)
    folder = rb.box.added_tenants_path() / "extra"
    assert folder.is_dir()
    body = await rb.client.remove_tenant("extra")
    assert body["origin"] == "admin"
    assert body["files_deleted"] is True
    assert not folder.exists()
    assert await rb.box.store.tenant_state("extra") is None
    assert rb.box.tenants.get("extra") is None
    assert (await rb.client.tenants())["removed"] == []


async def test_reload_serves_a_removed_folder_tenant_again(rb: RunningBox) -> None:
    await rb.client.set_limits("utils", {"fuel": 1_000_000})
    await rb.client.remove_tenant("utils")
    assert rb.box.tenants.get("utils") is None
    body = await rb.client.reload_tenant("utils")
    assert body["name"] == "utils"
    # Served as its tenant.toml says: the admin state it had went with the remove.
    assert body["admin_limit_overrides"] == {}
    assert await rb.box.store.tenant_state("utils") is None
    rows = (await rb.client.audit(limit=20))["entries"]
    reloads = [r for r in rows if r["event"] == "admin.tenant.reload"]
    assert reloads[0]["detail"]["restored"] is True


async def test_add_refuses_the_name_of_a_removed_folder_tenant(rb: RunningBox) -> None:
    await rb.client.remove_tenant("utils")
    manifest, module = read_tenant_upload(rb.tenants_dir / "utils")
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.add_tenant(manifest, module)
    assert caught.value.status == 409
    assert "removed by an admin" in caught.value.message
    assert "tenant reload utils" in caught.value.message


async def test_a_folder_tenant_clashing_with_an_added_one_fails_clearly(rb: RunningBox) -> None:
    manifest, module = renamed(rb.tenants_dir / "utils", "clash")
    await rb.client.add_tenant(manifest, module)
    shutil.copytree(rb.tenants_dir / "utils", rb.tenants_dir / "clash-folder")
    text = (rb.tenants_dir / "clash-folder" / "tenant.toml").read_text()
    (rb.tenants_dir / "clash-folder" / "tenant.toml").write_text(
        re.sub(r'(?m)^name = ".*"$', 'name = "clash"', text)
    )
    report = await rb.box.reload_tenants(actor="test")
    reason = report.failed[str(rb.tenants_dir / "clash-folder")]
    assert "duplicate tenant name 'clash'" in reason
    assert "added through the admin API" in reason
    # The added tenant keeps serving from the state directory.
    served = rb.box.tenants.require("clash")
    assert served.manifest.manifest_path == rb.box.added_tenants_path() / "clash" / "tenant.toml"


async def test_an_added_tenant_whose_files_were_changed_is_served_as_recorded(
    rb: RunningBox,
) -> None:
    """The database is the record: a hand-edited copy (here: made public) never takes effect."""
    manifest, module = renamed(rb.tenants_dir / "utils", "edited")
    await rb.client.add_tenant(manifest, module)
    path = rb.box.added_tenants_path() / "edited" / "tenant.toml"
    path.write_text(manifest.replace('auth = "api_key"', 'auth = "none"'))
    report = await rb.box.reload_tenants(actor="test")
    assert "edited" in report.loaded
    assert rb.box.tenants.require("edited").auth_mode == "api_key"
    assert path.read_text() == manifest


async def test_a_restart_keeps_every_admin_change(tmp_path: Path, module_cache: Path) -> None:
    async with running_box(tmp_path, module_cache) as rb:
        before = snapshot(rb.tenants_dir)
        await rb.client.set_enabled("utils", False)
        await rb.client.set_limits("utils", {"timeout_ms": 750})
        manifest, module = renamed(rb.tenants_dir / "notes", "notes-two")
        await rb.client.add_tenant(manifest, module)
        await rb.client.remove_tenant("notes")
        assert snapshot(rb.tenants_dir) == before
    # running_box copies the example tenants again into the same folder: keep this one.
    keep = tmp_path / "tenants"
    moved = tmp_path / "tenants-first"
    keep.rename(moved)
    async with running_box(tmp_path, module_cache) as rb:
        assert snapshot(moved) == snapshot(rb.tenants_dir)
        assert rb.box.tenants.names() == ["notes-two", "utils"]
        utils = await rb.client.tenant("utils")
        assert utils["enabled"] is False
        assert utils["admin_limit_overrides"] == {"timeout_ms": 750}
        assert utils["limits"]["timeout_ms"] == 750
        added = await rb.client.tenant("notes-two")
        assert added["origin"] == "admin"
        assert (await rb.client.tenants())["removed"] == ["notes"]


async def test_an_added_tenant_comes_back_from_the_database_alone(
    tmp_path: Path, module_cache: Path
) -> None:
    """A backup copies only the database: an added tenant whose files are gone (a restore to a
    new machine) or were edited is served again from the module and tenant.toml recorded there."""
    async with running_box(tmp_path, module_cache) as rb:
        manifest, module = renamed(rb.tenants_dir / "utils", "extra")
        await rb.client.add_tenant(manifest, module)
        await rb.client.set_limits("extra", {"fuel": 2_000_000})
        folder = rb.box.added_tenants_path() / "extra"
        assert await rb.box.store.added_tenant_module("extra") == module
    shutil.rmtree(folder)
    # running_box copies the example tenants into the same folder again.
    shutil.rmtree(tmp_path / "tenants")
    async with running_box(tmp_path, module_cache) as rb:
        served = rb.box.tenants.require("extra")
        assert served.module.limits.fuel == 2_000_000
        assert (folder / "tenant.toml").read_text() == manifest
        # An edited copy is put back as recorded, too.
        (folder / "tenant.toml").write_text(manifest + "\n# edited\n")
        report = await rb.box.reload_tenants(actor="test")
        assert "extra" in report.loaded
        assert (folder / "tenant.toml").read_text() == manifest
    shutil.rmtree(tmp_path / "tenants")
    async with running_box(tmp_path, module_cache) as rb:
        await rb.client.remove_tenant("extra")
        assert await rb.box.store.added_tenant_module("extra") is None
