"""Vetting at load: a tool pin that no longer matches or a poisoned description keeps a tenant
from being served; `smcp-box vet` reports the same verdicts with exit codes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.sandbox import Sandbox
from smcp_box.tenancy.registry import TenantRegistry

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


def registry(sandbox: Sandbox) -> TenantRegistry:
    return TenantRegistry(
        sandbox=sandbox,
        kv=None,  # type: ignore[arg-type]  # loading and vetting never touch kv
        defaults=SandboxSettings(),
        clock=time.time,
    )


def repin_tools(manifest: Path, pin: str) -> None:
    text = manifest.read_text()
    start = text.index('tools_sha256 = "') + len('tools_sha256 = "')
    manifest.write_text(text[:start] + pin + text[start + 64 :])


def build_poisoned(tenants: Path) -> Path:
    folder = tenants / "poisoned"
    folder.mkdir(parents=True)
    module = folder / "poisoned.wasm"
    subprocess.run(
        [
            "sh",
            str(REPO / "sdk/c/cc.sh"),
            str(module),
            str(Path(__file__).parent / "fixtures/poisoned.c"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    (folder / "tenant.toml").write_text(
        f'name = "poisoned"\nmodule = "poisoned.wasm"\nsha256 = "{digest}"\n'
    )
    return folder


def test_changed_tool_definitions_are_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tenants" / "notes", tenants / "notes")
    reg = registry(sandbox)
    assert reg.load_folder(tenants).loaded == ["notes"]
    repin_tools(tenants / "notes" / "tenant.toml", "0" * 64)
    report = reg.load_folder(tenants)
    assert report.loaded == []
    (reason,) = report.failed.values()
    assert "changed since they were pinned" in reason
    assert reg.get("notes") is None


def test_poisoned_descriptions_are_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    tenants = tmp_path / "tenants"
    build_poisoned(tenants)
    report = registry(sandbox).load_folder(tenants)
    assert report.loaded == []
    (reason,) = report.failed.values()
    assert "ignore-instructions" in reason or "conceal-from-user" in reason


def test_vet_command_verdicts(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants"
    poisoned = build_poisoned(tenants)
    env = {**os.environ, "SMCP_BOX_CACHE_DIR": str(tmp_path / "cache")}
    good = subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", "vet", str(REPO / "tenants" / "utils")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "tenant utils: OK" in good.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", "vet", str(poisoned)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1
    assert "REJECTED" in bad.stdout


async def test_vetting_gives_the_tenant_its_description(tmp_path: Path, sandbox: Sandbox) -> None:
    """Vetting makes the calls the warm-up would; the first describe() must not repeat them."""
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tenants" / "notes", tenants / "notes")
    reg = registry(sandbox)
    reg.load_folder(tenants)
    tenant = reg.get("notes")
    assert tenant is not None
    assert tenant.known_description is not None
    calls_before = sandbox.stats("notes").calls
    description = await tenant.describe()
    assert sandbox.stats("notes").calls == calls_before
    assert description.server_info["name"] == "notes"
    assert description.tools is not None
    assert {tool["name"] for tool in description.tools} >= {"note_create", "note_get"}
    # A reload of the unchanged module keeps the description without vetting again.
    reg.load_folder(tenants)
    again = reg.get("notes")
    assert again is not None
    assert again.known_description is description
    assert sandbox.stats("notes").calls == calls_before
