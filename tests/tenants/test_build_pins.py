"""tenants/build.py pins both hashes, whatever the sha256 lines held before (issue 16, item 8).

docs/abi.md shows ``sha256 = "<hex sha256 of the module file>"`` and ``tools_sha256 = "<hex>"``;
a tenant written from it must build with ``python tenants/build.py DIR`` and come out pinned the
way ``smcp-box vet`` checks it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

from smcp_box.config import SandboxSettings
from smcp_box.tenancy.manifest import load_manifest
from smcp_box.tenancy.vet import vet_folder

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "tenants" / "utils"

DOCS_MANIFEST = """\
name = "dice"
description = "The utils sources under another name"
module = "dice.wasm"
sha256 = "<hex sha256 of the module file>"   # pinned: the box refuses a module whose hash differs
auth = "api_key"
tools_sha256 = "<hex>"         # optional pin of the tool definitions; `smcp-box vet DIR` prints it
[limits]
memory_mib = 32
[config]
greeting = "Hello"
"""


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tenant_build", REPO / "tenants" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tenant(root: Path, manifest: str) -> Path:
    """A tenant folder outside the repo: utils' C sources, a build.sh using the repo's SDK."""
    tenant = root / "dice"
    tenant.mkdir()
    for source in [*UTILS.glob("*.c"), *UTILS.glob("*.h")]:
        shutil.copy(source, tenant / source.name)
    sources = " ".join(f'"$HERE/{p.name}"' for p in sorted(UTILS.glob("*.c")))
    (tenant / "build.sh").write_text(
        "set -eu\n"
        'HERE=$(cd "$(dirname "$0")" && pwd)\n'
        f'exec sh "{REPO / "sdk" / "c" / "cc.sh"}" "$1" {sources}\n'
    )
    (tenant / "tenant.toml").write_text(manifest)
    return tenant


def vetted(tenant: Path, cache: Path) -> None:
    report = vet_folder(tenant, cache, SandboxSettings())
    assert report.pin_status == "match", report.pin_message
    assert report.ok


def test_placeholder_lines_from_the_docs_are_pinned(tmp_path: Path) -> None:
    builder = load_build_script()
    tenant = make_tenant(tmp_path, DOCS_MANIFEST)
    assert builder.main([str(tenant)]) == 0
    manifest = load_manifest(tenant / "tenant.toml")
    assert manifest.read_module()  # the sha256 pin matches the built module
    assert manifest.tools_sha256 is not None
    # Same sources as utils, so the same tools (the bytes differ: the sources' order does).
    assert manifest.tools_sha256 == load_manifest(UTILS / "tenant.toml").tools_sha256
    vetted(tenant, tmp_path / "cache")
    text = (tenant / "tenant.toml").read_text()
    # The lines' comments are kept; nothing else changed.
    assert "# pinned: the box refuses" in text
    assert "# optional pin of the tool definitions" in text
    assert len(text.splitlines()) == len(DOCS_MANIFEST.splitlines())
    # A second run changes nothing and --check agrees.
    assert builder.pin(tenant, manifest.sha256) is False
    assert builder.pin_tools(tenant, manifest.tools_sha256) is False
    assert builder.main(["--check", str(tenant)]) == 0


def test_missing_pin_lines_are_added(tmp_path: Path) -> None:
    builder = load_build_script()
    bare = "\n".join(line for line in DOCS_MANIFEST.splitlines() if "sha256" not in line) + "\n"
    tenant = make_tenant(tmp_path, bare)
    assert builder.main([str(tenant)]) == 0
    manifest = load_manifest(tenant / "tenant.toml")
    assert manifest.read_module()
    assert manifest.tools_sha256 is not None
    vetted(tenant, tmp_path / "cache")
    lines = (tenant / "tenant.toml").read_text().splitlines()
    # Added at the top level, right after the module line, before any [table].
    module_at = lines.index('module = "dice.wasm"')
    assert lines[module_at + 1].startswith('sha256 = "')
    assert lines[module_at + 2].startswith('tools_sha256 = "')


def test_check_fails_on_a_stale_tools_pin(tmp_path: Path) -> None:
    builder = load_build_script()
    tenant = make_tenant(tmp_path, DOCS_MANIFEST)
    assert builder.main([str(tenant)]) == 0
    builder.pin_tools(tenant, "0" * 64)
    assert builder.main(["--check", str(tenant)]) == 1


def test_build_script_runs_as_documented(tmp_path: Path) -> None:
    """`python tenants/build.py DIR` as a command, with the interpreter running the tests."""
    import subprocess

    tenant = make_tenant(tmp_path, DOCS_MANIFEST)
    proc = subprocess.run(
        [sys.executable, str(REPO / "tenants" / "build.py"), str(tenant)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tools_sha256" in proc.stdout
    assert load_manifest(tenant / "tenant.toml").tools_sha256 is not None
