"""The committed tenant modules are exactly what their sources build to, and follow the ABI.

tenant.toml pins each module's sha256 and the box refuses a module whose hash differs, so a
stale module or pin would fail at load time; these tests catch it at commit time instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import wasmtime

from .harness import REPO, TENANTS, build

pytest.importorskip("ziglang")

ALL_TENANT_NAMES = sorted(p.parent.name for p in TENANTS.glob("*/tenant.toml"))
#: The smcp-v1 (C) examples; the stdio example (Go) has its own tests (tests/tenancy/test_build.py,
#: tests/sandbox/test_sandbox_stdio.py, tests/e2e/test_stdio_tenants.py).
TENANT_NAMES = [
    name
    for name in ALL_TENANT_NAMES
    if 'kind = "stdio"' not in (TENANTS / name / "tenant.toml").read_text()
]
ALLOWED_IMPORTS = {
    "log": (["i32", "i32", "i32", "i32"], []),
    "config_get": (["i32", "i32"], ["i64"]),
    "kv_get": (["i32", "i32"], ["i64"]),
    "kv_set": (["i32", "i32", "i32", "i32"], ["i32"]),
    "kv_delete": (["i32", "i32"], ["i32"]),
    "kv_list": (["i32", "i32"], ["i64"]),
    "notify": (["i32", "i32"], []),
    "time_now_ms": ([], ["i64"]),
    "kv_cas": (["i32"] * 6, ["i32"]),
    "kv_incr": (["i32", "i32", "i64", "i32"], ["i32"]),
    "random_bytes": (["i32", "i32"], ["i32"]),
}
TOML_KEYS = {
    "name",
    "description",
    "module",
    "sha256",
    "tools_sha256",
    "auth",
    "receipts",
    "limits",
    "config",
}
LIMIT_KEYS = {"memory_mib", "fuel", "timeout_ms"}


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tenant_build", TENANTS / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest(name: str) -> dict[str, object]:
    with (TENANTS / name / "tenant.toml").open("rb") as f:
        return tomllib.load(f)


def test_there_are_example_tenants() -> None:
    assert TENANT_NAMES == ["notes", "utils"]
    assert ALL_TENANT_NAMES == ["notes", "tasks", "utils"]


@pytest.mark.parametrize("name", TENANT_NAMES)
def test_committed_module_is_the_build_of_its_source(name: str, tmp_path: Path) -> None:
    builder = load_build_script()
    tenant = TENANTS / name
    out = tmp_path / f"{name}.wasm"
    builder.build(tenant, out)
    committed = builder.module_path(tenant)
    assert out.read_bytes() == committed.read_bytes(), (
        f"{committed} is stale: run python tenants/build.py"
    )
    digest = hashlib.sha256(committed.read_bytes()).hexdigest()
    assert builder.pinned_sha256(tenant) == digest
    assert manifest(name)["sha256"] == digest


@pytest.mark.parametrize("name", TENANT_NAMES)
def test_build_script_works_from_any_directory(name: str, tmp_path: Path) -> None:
    """build.sh resolves its sources from its own location, not from the caller's cwd."""
    import subprocess
    import sys

    out = tmp_path / "out.wasm"
    subprocess.run(
        ["sh", str(TENANTS / name / "build.sh"), str(out)],
        cwd=tmp_path,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (TENANTS / name / f"{name}.wasm").read_bytes()


def test_sources_compile_without_warnings(tmp_path: Path) -> None:
    """The SDK and the tenants build cleanly under -Wall -Wextra (cc.sh's flags)."""
    sources = {
        "notes": sorted((TENANTS / "notes").glob("*.c")),
        "utils": sorted((TENANTS / "utils").glob("*.c")),
        "probe": [Path(__file__).parent / "fixtures" / "sdk_probe.c"],
    }
    for name, files in sources.items():
        stderr = build(files, tmp_path / f"{name}.wasm")
        assert stderr.strip() == "", f"{name}: {stderr}"


def test_pinning_rewrites_only_the_sha256_line(tmp_path: Path) -> None:
    builder = load_build_script()
    tenant = tmp_path / "demo"
    tenant.mkdir()
    original = (TENANTS / "notes" / "tenant.toml").read_text()
    (tenant / "tenant.toml").write_text(original)
    assert builder.pin(tenant, "ab" * 32) is True
    changed = (tenant / "tenant.toml").read_text()
    assert builder.pinned_sha256(tenant) == "ab" * 32
    diff = [
        (a, b) for a, b in zip(original.splitlines(), changed.splitlines(), strict=False) if a != b
    ]
    assert len(diff) == 1
    assert diff[0][1] == f'sha256 = "{"ab" * 32}"'
    assert builder.pin(tenant, "ab" * 32) is False


@pytest.mark.parametrize("name", TENANT_NAMES)
def test_manifest_has_exactly_the_documented_keys(name: str) -> None:
    data = manifest(name)
    assert set(data) <= TOML_KEYS
    assert {"name", "description", "module", "sha256", "auth"} <= set(data)
    assert data["name"] == name
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", str(data["name"]))
    assert data["auth"] in {"api_key", "none"}
    assert re.fullmatch(r"[0-9a-f]{64}", str(data["sha256"]))
    assert (TENANTS / name / str(data["module"])).is_file()
    limits = data.get("limits", {})
    assert isinstance(limits, dict)
    assert set(limits) <= LIMIT_KEYS
    assert all(isinstance(v, int) and v > 0 for v in limits.values())
    config = data.get("config", {})
    assert isinstance(config, dict)
    assert all(isinstance(v, str) for v in config.values())


@pytest.mark.parametrize("name", TENANT_NAMES)
def test_module_exports_and_imports_follow_smcp_v1(name: str) -> None:
    module = wasmtime.Module(wasmtime.Engine(), (TENANTS / name / f"{name}.wasm").read_bytes())
    exports = {e.name: e.type for e in module.exports}
    assert set(exports) == {"memory", "smcp_alloc", "smcp_handle"}
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    alloc, handle = exports["smcp_alloc"], exports["smcp_handle"]
    assert isinstance(alloc, wasmtime.FuncType)
    assert isinstance(handle, wasmtime.FuncType)
    assert ([str(p) for p in alloc.params], [str(r) for r in alloc.results]) == (["i32"], ["i32"])
    assert [str(p) for p in handle.params] == ["i32", "i32"]
    assert [str(r) for r in handle.results] == ["i64"]
    for imp in module.imports:
        assert imp.module == "smcp", f"{imp.module}.{imp.name}: only smcp imports are allowed"
        assert isinstance(imp.type, wasmtime.FuncType)
        signature = ([str(p) for p in imp.type.params], [str(r) for r in imp.type.results])
        assert ALLOWED_IMPORTS[str(imp.name)] == signature


def test_build_check_mode_passes_for_the_committed_tree() -> None:
    builder = load_build_script()
    assert builder.main(["--check"]) == 0


def test_repo_layout() -> None:
    for path in ["sdk/c/smcp.h", "sdk/c/cc.sh", "docs/abi.md", "tenants/build.py"]:
        assert (REPO / path).is_file(), path


@pytest.mark.parametrize("name", TENANT_NAMES)
def test_module_runs_under_the_box_store_limits(name: str) -> None:
    """One memory, one table of bounded size, the tenant's memory limit: as the box sets them."""
    limits = manifest(name)["limits"]
    assert isinstance(limits, dict)
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, (TENANTS / name / f"{name}.wasm").read_bytes())
    store = wasmtime.Store(engine)
    store.set_limits(
        memory_size=int(limits["memory_mib"]) << 20,
        table_elements=100_000,
        instances=1,
        tables=1,
        memories=1,
    )
    linker = wasmtime.Linker(engine)
    linker.define_unknown_imports_as_traps(module)
    instance = linker.instantiate(store, module)
    memory = instance.exports(store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    assert memory.data_len(store) <= 1 << 20  # starts small: stack, data, no preallocated heap
