"""The old ``admin-overrides.json`` files are carried into the database at start, once: only
for a tenant without admin state in the database, the file left in place and ignored (and said
to be) afterwards."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from smcp_box.box import Box
from smcp_box.config import Settings, load_settings
from smcp_box.store import TenantAdminState

REPO = Path(__file__).resolve().parents[2]


def settings_for(tmp_path: Path) -> Settings:
    tenants = tmp_path / "tenants"
    if not tenants.exists():
        tenants.mkdir()
        for name in ("notes", "utils"):
            shutil.copytree(REPO / "tenants" / name, tenants / name)
    return load_settings(
        None,
        environ={},
        overrides={
            "state_dir": str(tmp_path / "state"),
            "cache_dir": str(tmp_path / "cache"),
            "runtime_dir": str(tmp_path / "run"),
            "tenants_dir": str(tenants),
        },
    )


def write_overrides(folder: Path, body: object) -> Path:
    path = folder / "admin-overrides.json"
    path.write_text(json.dumps(body))
    return path


async def test_overrides_files_are_imported_once_and_then_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    tenants = settings.tenants_path()
    notes_file = write_overrides(
        tenants / "notes", {"enabled": False, "limits": {"timeout_ms": 700}}
    )
    utils_file = write_overrides(
        tenants / "utils", {"enabled": None, "limits": {"fuel": 1_999_999_999}}
    )
    notes_text = notes_file.read_text()
    caplog.set_level(logging.INFO, logger="smcp_box.tenants")
    box = await Box.start(settings)
    try:
        assert box.tenants.require("notes").enabled is False
        assert box.tenants.require("notes").module.limits.timeout_s == 0.7
        assert box.tenants.require("utils").module.limits.fuel == 1_999_999_999
        notes = await box.store.tenant_state("notes")
        assert notes == TenantAdminState(
            "notes",
            "folder",
            enabled=False,
            limits={"timeout_ms": 700},
            updated_at=notes.updated_at if notes else 0.0,
        )
        # The admin's next change goes to the database; the file is not touched.
        await box.store.save_tenant_state(TenantAdminState("notes", enabled=True))
    finally:
        await box.stop()
    assert notes_file.read_text() == notes_text
    assert f"imported {notes_file} into the database" in caplog.text
    assert f"imported {utils_file} into the database" in caplog.text

    caplog.clear()
    # A file changed afterwards (or never deleted) is ignored: the database has the tenant.
    write_overrides(tenants / "notes", {"enabled": False, "limits": {"fuel": 5}})
    box = await Box.start(settings)
    try:
        assert box.tenants.require("notes").enabled is True
        assert box.tenants.require("notes").module.limits.fuel != 5
    finally:
        await box.stop()
    assert f"ignoring {notes_file}" in caplog.text
    assert "imported" not in caplog.text


async def test_a_malformed_overrides_file_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    bad = write_overrides(settings.tenants_path() / "notes", {"enabled": "yes"})
    box = await Box.start(settings)
    try:
        assert box.tenants.require("notes").enabled is True
        assert await box.store.tenant_state("notes") is None
    finally:
        await box.stop()
    assert f"{bad} not imported into the database" in caplog.text
