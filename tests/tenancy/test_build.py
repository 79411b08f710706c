"""`smcp-box build` of a Go stdio folder: the example rebuilt from source gives the committed
module and pins; and the pinning of tenant.toml it shares with every kind."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from smcp_box.errors import ConfigError
from smcp_box.ops.authoring import build_tenant
from smcp_box.tenancy.pinning import pin, pin_tools
from tests.support.gowasm import TASKS_SOURCE


def test_the_go_example_rebuilds_to_its_committed_pins(tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    shutil.copytree(TASKS_SOURCE, folder, ignore=shutil.ignore_patterns("*.wasm"))
    committed = tomllib.loads((TASKS_SOURCE / "tenant.toml").read_text())
    manifest = folder / "tenant.toml"
    pin(folder, "0" * 64)
    text = manifest.read_text()
    manifest.write_text("\n".join(line for line in text.splitlines() if "tools_sha256" not in line))

    report = build_tenant(folder, cache_dir=tmp_path / "cache")

    # Reproducible: the same source gives the same bytes, so the committed pin is checkable.
    rebuilt = tomllib.loads(manifest.read_text())
    assert (rebuilt["sha256"], rebuilt["tools_sha256"]) == (
        committed["sha256"],
        committed["tools_sha256"],
    )
    assert committed["sha256"] in report
    assert committed["tools_sha256"] in report
    assert (folder / "tasks.wasm").read_bytes() == (TASKS_SOURCE / "tasks.wasm").read_bytes()


def test_a_folder_without_sources_is_named(tmp_path: Path) -> None:
    (tmp_path / "tenant.toml").write_text('name = "x"\nmodule = "x.wasm"\n')
    with pytest.raises(ConfigError, match=r"nothing to build.*go\.mod"):
        build_tenant(tmp_path, cache_dir=tmp_path / "cache")


def test_pins_replace_their_line_or_are_added_after_module_and_sha256(tmp_path: Path) -> None:
    manifest = tmp_path / "tenant.toml"
    manifest.write_text('name = "x"\nmodule = "x.wasm"\nauth = "none"\n')
    assert pin(tmp_path, "ab") is True
    assert pin_tools(tmp_path, "cd") is True
    added = 'name = "x"\nmodule = "x.wasm"\nsha256 = "ab"\ntools_sha256 = "cd"\nauth = "none"\n'
    assert manifest.read_text() == added
    assert pin(tmp_path, "ab") is False
    assert pin(tmp_path, "ef") is True
    assert manifest.read_text() == added.replace('"ab"', '"ef"')
    manifest.write_text('name = "x"\n')
    with pytest.raises(ConfigError, match="no sha256"):
        pin(tmp_path, "ab")
