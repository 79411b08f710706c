"""``smcp-box doctor`` on a real installation, healthy and then broken one way at a time."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smcp_box.config import Settings
from smcp_box.ops.doctor import Checklist, run_doctor
from tests.ops.support import add_ops_tenant, box_settings, started


@pytest.fixture
async def installed(tmp_path: Path, ops_module: Path, module_cache: Path) -> Settings:
    """A box that has run once (database, key and cache exist) and is stopped."""
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, tmp_path / "cache")
    async with started(settings):
        pass
    return settings


def statuses(report: Checklist) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def message(report: Checklist, name: str) -> str:
    return next(check.message for check in report.checks if check.name == name)


async def test_healthy_installation(installed: Settings) -> None:
    report = await run_doctor(installed, "test")
    assert not report.failed, report.text()
    assert statuses(report) == {
        "config": "OK",
        "box": "OK",
        "state dir": "OK",
        "data key": "OK",
        "database": "OK",
        "audit chain": "OK",
        "module cache": "OK",
        "tenant ops": "OK",
    }
    assert message(report, "box") == "not running"
    assert "matches its pin" in message(report, "tenant ops")
    assert report.text().endswith("8 ok, 0 warning(s), 0 failure(s)")


async def test_a_fresh_install_only_warns(tmp_path: Path, ops_module: Path) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    report = await run_doctor(box_settings(tmp_path, tenants, tmp_path / "cache"), "test")
    assert not report.failed, report.text()
    assert statuses(report)["state dir"] == "WARN"
    assert statuses(report)["data key"] == "WARN"
    # Nothing was created by looking.
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "cache").exists()


async def test_a_running_box_is_noticed(installed: Settings) -> None:
    async with started(installed):
        report = await run_doctor(installed, "test")
    assert message(report, "box").startswith("running")
    assert not report.failed


async def test_key_file_others_can_read(installed: Settings) -> None:
    os.chmod(installed.state_path() / "data.key", 0o644)
    report = await run_doctor(installed, "test")
    assert statuses(report)["data key"] == "FAIL"
    assert "chmod 600" in message(report, "data key")
    assert "database" not in statuses(report)  # unreadable without the key: not checked


async def test_open_state_dir(installed: Settings) -> None:
    os.chmod(installed.state_path(), 0o755)
    assert statuses(await run_doctor(installed, "test"))["state dir"] == "WARN"
    os.chmod(installed.state_path(), 0o777)
    assert statuses(await run_doctor(installed, "test"))["state dir"] == "FAIL"


async def test_tampered_audit_log(installed: Settings) -> None:
    with sqlite3.connect(installed.database_path()) as raw:
        raw.execute("UPDATE audit SET outcome = 'error' WHERE id = 1")
    report = await run_doctor(installed, "test")
    assert statuses(report)["audit chain"] == "FAIL"
    assert "Audit row 1" in message(report, "audit chain")


async def test_tenant_module_not_matching_its_pin(installed: Settings) -> None:
    module = installed.tenants_path() / "ops" / "ops.wasm"
    module.write_bytes(module.read_bytes() + b"\0")
    report = await run_doctor(installed, "test")
    assert statuses(report)["tenant ops"] == "FAIL"
    assert "but tenant.toml pins" in message(report, "tenant ops")


async def test_corrupt_cache_entry(installed: Settings) -> None:
    (entry,) = installed.cache_path().glob("*.cwasm")
    entry.write_bytes(b"flipped bits")
    report = await run_doctor(installed, "test")
    assert statuses(report)["module cache"] == "WARN"
    assert entry.name in message(report, "module cache")


async def test_missing_tenants_folder_and_bad_tls(installed: Settings, tmp_path: Path) -> None:
    broken = dataclasses.replace(
        installed,
        tenants_dir=str(tmp_path / "nowhere"),
        server=dataclasses.replace(
            installed.server, tls_cert=str(tmp_path / "no.crt"), tls_key=str(tmp_path / "no.key")
        ),
    )
    report = await run_doctor(broken, "test")
    assert statuses(report)["tenants"] == "FAIL"
    assert statuses(report)["tls"] == "FAIL"


async def test_lan_without_tls_is_a_warning(installed: Settings) -> None:
    exposed = dataclasses.replace(
        installed,
        server=dataclasses.replace(installed.server, host="0.0.0.0"),
    )
    assert statuses(await run_doctor(exposed, "test"))["tls"] == "WARN"


def doctor_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    env.update(
        SMCP_BOX_STATE_DIR=settings.state_dir,
        SMCP_BOX_CACHE_DIR=settings.cache_dir,
        SMCP_BOX_RUNTIME_DIR=settings.runtime_dir,
        SMCP_BOX_TENANTS_DIR=settings.tenants_dir,
    )
    return subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", "doctor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_exit_status_follows_failures(installed: Settings) -> None:
    healthy = doctor_cli(installed)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "[ OK ] audit chain: intact" in healthy.stdout
    os.chmod(installed.state_path() / "data.key", 0o640)
    failing = doctor_cli(installed, "--json")
    assert failing.returncode == 1
    body = json.loads(failing.stdout)
    assert body["ok"] is False
    assert {"status": "FAIL", "name": "data key"}.items() <= next(
        c for c in body["checks"] if c["name"] == "data key"
    ).items()


async def _put_blobs(settings: Settings) -> list[str]:
    from smcp_box.ops.offline import existing_store
    from smcp_box.store.blobs import BlobQuotas

    async def data(payload: bytes) -> AsyncIterator[bytes]:
        yield payload

    versions = []
    async with existing_store(settings) as store:
        for name in ("a", "b"):
            info = await store.blobs.put(
                "ops", name, data(name.encode() * 1000), quotas=BlobQuotas()
            )
            versions.append(info.version)
    return versions


async def test_blobs_are_read_back_whole(installed: Settings) -> None:
    first, second = await _put_blobs(installed)
    report = await run_doctor(installed, "test")
    assert statuses(report)["blobs"] == "OK"
    assert "2 blob(s)" in message(report, "blobs")
    with sqlite3.connect(installed.database_path()) as raw:
        (sealed,) = raw.execute(
            "SELECT data FROM blob_chunks WHERE version = ?", (first,)
        ).fetchone()
        raw.execute("UPDATE blob_chunks SET data = ? WHERE version = ?", (sealed, second))
    report = await run_doctor(installed, "test")
    assert statuses(report)["blobs"] == "FAIL"
    assert "1 of 2 blob(s) are damaged: Chunk 0 of blob 'b' of tenant 'ops'" in message(
        report, "blobs"
    )
