"""New folders in the tenants folder: `tenant rescan`, `tenant add` of a folder already there
(served from there, never copied), clear messages, and failed folders in `tenant list`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from smcp_box.admin.cli_format import rescan_text, tenants_text
from smcp_box.admin.upload import read_tenant_upload
from smcp_box.config import load_settings
from smcp_box.errors import AdminRequestFailed, ConfigError
from smcp_box.ops.reload import LIVE_SETTINGS, scan_tenants_once
from tests.admin.support import RunningBox
from tests.admin.test_cli import smcp


def new_folder(rb: RunningBox, name: str, *, auth: str | None = None) -> Path:
    """A copy of the utils example in the tenants folder, as tenant ``name``."""
    folder = rb.tenants_dir / name
    shutil.copytree(rb.tenants_dir / "utils", folder)
    manifest = folder / "tenant.toml"
    text = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', manifest.read_text())
    if auth is not None:
        text = re.sub(r'(?m)^auth = ".*"$', f'auth = "{auth}"', text)
    manifest.write_text(text)
    return folder


async def test_rescan_serves_new_folders_and_lists_failed_ones(rb: RunningBox) -> None:
    new_folder(rb, "dice")
    broken = new_folder(rb, "broken", auth="sometimes")
    assert rb.box.tenants.get("dice") is None
    notes = rb.box.tenants.require("notes")

    body = await rb.client.rescan_tenants()
    assert body["loaded"] == ["dice"]
    assert [f["folder"] for f in body["failed"]] == [str(broken)]
    assert "auth must be" in body["failed"][0]["reason"]
    assert body["serving"] == ["dice", "notes", "utils"]
    # Served from the tenants folder; the running tenants are the very same objects.
    dice = await rb.client.tenant("dice")
    assert dice["origin"] == "folder"
    assert dice["folder"] == str(rb.tenants_dir / "dice")
    assert rb.box.tenants.require("notes") is notes
    text = rescan_text(body)
    assert "picked up 1 new tenant(s)" in text
    assert f"NOT LOADED broken ({broken})" in text

    # The failed folder is a row of `tenant list`, with why.
    listed = await rb.client.tenants()
    assert [f["name"] for f in listed["failed"]] == ["broken"]
    table = tenants_text(listed)
    assert re.search(r"(?m)^broken\s+failed\s", table), table
    assert "auth must be" in table

    # Fixed, a second rescan picks it up; nothing else changes.
    manifest = broken / "tenant.toml"
    manifest.write_text(manifest.read_text().replace('auth = "sometimes"', 'auth = "api_key"'))
    again = await rb.client.rescan_tenants()
    assert again["loaded"] == ["broken"]
    assert again["failed"] == []
    assert (await rb.client.tenants())["failed"] == []
    rows = (await rb.client.audit(event="admin.tenant.rescan"))["entries"]
    assert len(rows) == 2


async def test_add_of_a_folder_in_the_tenants_folder_serves_it_from_there(
    rb: RunningBox,
) -> None:
    folder = new_folder(rb, "dice")
    manifest, module = read_tenant_upload(folder)
    body = await rb.client.add_tenant(manifest, module, str(folder))
    assert body["origin"] == "folder"
    assert body["folder"] == str(folder)
    assert not (rb.box.added_tenants_path() / "dice").exists()
    assert await rb.box.store.tenant_state("dice") is None
    # Again: it is served already, and the message says how to reload it.
    with pytest.raises(AdminRequestFailed) as again:
        await rb.client.add_tenant(manifest, module, str(folder / "tenant.toml"))
    assert again.value.status == 409
    assert "already served from" in again.value.message
    assert "smcp-box tenant reload dice" in again.value.message


async def test_add_of_an_unserved_folder_tenant_by_upload_says_what_to_do(
    rb: RunningBox, tmp_path: Path
) -> None:
    # The same tenant uploaded from elsewhere (the box's copy is in its tenants folder).
    folder = new_folder(rb, "dice")
    manifest, module = read_tenant_upload(folder)
    with pytest.raises(AdminRequestFailed) as refused:
        await rb.client.add_tenant(manifest, module, str(tmp_path))
    assert refused.value.status == 409
    message = refused.value.message
    assert "is not served yet" in message
    assert "smcp-box tenant rescan" in message
    assert "smcp-box tenant reload dice" in message


async def test_cli_add_and_rescan(rb: RunningBox) -> None:
    folder = new_folder(rb, "dice")
    added = await smcp(rb, "tenant", "add", str(folder))
    assert added.code == 0, added.err
    assert f"serving tenant dice from the tenants folder ({folder}), not copied" in added.out
    new_folder(rb, "coin")
    rescanned = await smcp(rb, "tenant", "rescan")
    assert rescanned.code == 0, rescanned.err
    assert "picked up 1 new tenant(s)" in rescanned.out
    assert "coin" in rescanned.out
    helped = await smcp(None, "tenant", "add", "--help")
    assert "tenants folder" in helped.out
    assert "smcp-box tenant rescan" in " ".join(helped.out.split())


async def test_periodic_scan_serves_a_new_folder_once_its_files_are_whole(rb: RunningBox) -> None:
    box = rb.box
    first, scanned = await scan_tenants_once(box, None)
    assert not scanned  # the first check only looks: start-up just loaded the folder
    same, scanned = await scan_tenants_once(box, first)
    assert not scanned
    assert same == first

    # A copy caught half way: the tenant.toml is there, the module is not yet.
    folder = new_folder(rb, "dice")
    module = folder / "utils.wasm"
    whole = module.read_bytes()
    module.write_bytes(whole[:100])
    after_half, scanned = await scan_tenants_once(box, same)
    assert scanned
    assert box.tenants.get("dice") is None
    assert [f["name"] for f in (await rb.client.tenants())["failed"]] == ["dice"]
    unchanged, scanned = await scan_tenants_once(box, after_half)
    assert not scanned  # nothing changed: no new attempt, no new log line
    # The copy finishes: the changed file brings a new attempt, which serves it.
    module.write_bytes(whole)
    done, scanned = await scan_tenants_once(box, unchanged)
    assert scanned
    assert box.tenants.get("dice") is not None
    assert (await rb.client.tenants())["failed"] == []
    # Served folders are not part of what a check compares.
    assert not [entry for entry in done if entry[0].startswith(str(folder))]
    await box.auditor.flush()
    rows = await box.store.audit_page(event="tenant.load")
    assert [row.tenant for row in rows if row.actor == "system:scan"] == ["dice"]


def test_scan_setting_is_live_and_checked(tmp_path: Path) -> None:
    assert "tenants_scan_s" in LIVE_SETTINGS
    assert load_settings(None, environ={}, overrides={}).tenants_scan_s == 0
    with pytest.raises(ConfigError, match="tenants_scan_s"):
        load_settings(None, environ={}, overrides={"tenants_scan_s": -1})
