"""`smcp-box build`: the Go example rebuilt from source gives the committed module and pins."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.errors import ConfigError
from smcp_box.tenancy.build import build_and_pin, set_pin
from tests.support.gowasm import TASKS_SOURCE


def test_the_go_example_rebuilds_to_its_committed_pins(tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    shutil.copytree(TASKS_SOURCE, folder, ignore=shutil.ignore_patterns("*.wasm"))
    committed = tomllib.loads((TASKS_SOURCE / "tenant.toml").read_text())
    manifest = folder / "tenant.toml"
    text = manifest.read_text()
    text = set_pin(text, "sha256", "0" * 64)
    manifest.write_text("\n".join(line for line in text.splitlines() if "tools_sha256" not in line))

    digest, fingerprint = build_and_pin(folder, tmp_path / "cache", SandboxSettings())

    # Reproducible: the same source gives the same bytes, so the committed pin is checkable.
    assert (digest, fingerprint) == (committed["sha256"], committed["tools_sha256"])
    rebuilt = tomllib.loads(manifest.read_text())
    assert (rebuilt["sha256"], rebuilt["tools_sha256"]) == (digest, fingerprint)
    assert (folder / "tasks.wasm").read_bytes() == (TASKS_SOURCE / "tasks.wasm").read_bytes()


def test_a_folder_without_sources_is_named(tmp_path: Path) -> None:
    (tmp_path / "tenant.toml").write_text('name = "x"\nmodule = "x.wasm"\n')
    with pytest.raises(ConfigError, match=r"nothing to build.*go\.mod"):
        build_and_pin(tmp_path, tmp_path / "cache", SandboxSettings())


def test_set_pin_replaces_or_adds_after_module() -> None:
    text = 'name = "x"\nmodule = "x.wasm"\nauth = "none"\n'
    added = set_pin(text, "sha256", "ab")
    assert added == 'name = "x"\nmodule = "x.wasm"\nsha256 = "ab"\nauth = "none"\n'
    assert set_pin(added, "sha256", "cd") == added.replace('"ab"', '"cd"')
    with pytest.raises(ConfigError, match="no module"):
        set_pin('name = "x"\n', "sha256", "ab")
