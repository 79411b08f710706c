"""``smcp-box vet`` on a bare wasm module: interface, ABI conformance, tools and scan without a
tenant.toml (issue 15). A .wasm path once died with UnicodeDecodeError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.errors import ConfigError
from smcp_box.tenancy.manifest import load_manifest
from smcp_box.tenancy.vet_command import run_vet_command, vet_module_file
from tests.sandbox.support import wasm

REPO = Path(__file__).resolve().parents[2]
NOTES_WASM = REPO / "tenants" / "notes" / "notes.wasm"


def vet_json(
    paths: list[Path], cache: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[Any]]:
    code = run_vet_command(paths, cache, SandboxSettings(), as_json=True)
    return code, json.loads(capsys.readouterr().out)


def test_bare_module_reports_interface_tools_and_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, (report,) = vet_json([NOTES_WASM], tmp_path / "cache", capsys)
    assert code == 0
    assert report["ok"] is True
    assert report["abi_problems"] == []
    assert "smcp.kv_get: func(i32, i32) -> i64" in report["imports"]
    assert "smcp_handle: func(i32, i32) -> i64" in report["exports"]
    assert "note_create" in report["tools"]
    # The pin it prints is the one the notes tenant.toml carries.
    manifest = load_manifest(REPO / "tenants" / "notes" / "tenant.toml")
    assert report["tools_sha256"] == manifest.tools_sha256
    assert report["sha256"] == manifest.sha256
    assert report["pin_status"] == "unpinned"


def test_module_outside_the_abi_is_refused_naming_its_imports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "sneaky.wasm"
    module.write_bytes(wasm("forbidden_wasi"))
    code = run_vet_command([module], tmp_path / "cache", SandboxSettings(), as_json=False)
    out = capsys.readouterr().out
    assert code == 1
    assert "module " + str(module) + ": REJECTED" in out
    assert "DOES NOT CONFORM" in out
    assert "wasi_snapshot_preview1" in out
    assert "not run" in out
    report = vet_module_file(module, tmp_path / "cache", SandboxSettings())
    assert report.tools is None
    assert any("is not allowed" in problem for problem in report.interface.abi_problems)


def test_file_that_is_not_wasm_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake.wasm"
    fake.write_bytes(b"\x91 not a module")
    code, (report,) = vet_json([fake], tmp_path / "cache", capsys)
    assert code == 1
    assert report["abi_problems"] == ["tenant 'fake': the module is not a wasm binary"]


def test_binary_given_as_manifest_is_a_config_error(tmp_path: Path) -> None:
    binary = tmp_path / "tenant.toml"
    binary.write_bytes(b"\x00asm\x01\x00\x00\x00\x91\x92")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_manifest(binary)


def test_vet_command_on_a_wasm_path_prints_a_report_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "SMCP_BOX_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", "vet", str(NOTES_WASM), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert f"module {NOTES_WASM}: OK" in done.stdout
    assert "no such file or folder" in done.stdout
    assert done.returncode == 1


def test_a_tenant_folder_reports_what_approvals_hold_besides_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = REPO / "tenants" / "notes"
    code, (report,) = vet_json([folder], tmp_path / "cache", capsys)
    assert code == 0
    assert report["approvals_cover"] == {"tools": 6, "prompts": 2, "resourceTemplates": 1}
    # notes lists its resources from kv, which vetting refuses: they cannot be held.
    assert report["not_covered"] == ["resources"]
    run_vet_command([folder], tmp_path / "cache", SandboxSettings(), as_json=False)
    out = capsys.readouterr().out
    assert "approvals also hold: prompts (2), resourceTemplates (1)" in out
    assert "not covered by approvals: resources" in out
