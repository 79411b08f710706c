"""End-to-end fixtures: one real box per test session on a free loopback port, serving the
repository's example tenants, a second copy of notes (for isolation tests) and fault tenants
built from C source in this folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.boxproc import REPO, BoxProcess, copy_tenants
from tests.e2e.components_support import (
    JSFAULT_VARIANTS,
    JSFAULTS,
    JSNOTES,
    BuiltComponents,
    build_components,
    copy_built,
)

FAULTS_SOURCE = Path(__file__).parent / "faults" / "faults.c"
#: name -> [limits] table. "faults" stops on the wall clock, "faults-fuel" on fuel;
#: "faults-runaway" runs until its client goes away (its limits outlast any test).
FAULT_TENANTS = {
    "faults": "memory_mib = 16\nfuel = 100000000000\ntimeout_ms = 1000\n",
    "faults-fuel": "memory_mib = 16\nfuel = 50000000\ntimeout_ms = 20000\n",
    "faults-runaway": "memory_mib = 16\nfuel = 1000000000000\ntimeout_ms = 60000\n",
}


def build_fault_tenants(tenants_dir: Path, build_dir: Path) -> None:
    build_dir.mkdir(parents=True, exist_ok=True)
    module = build_dir / "faults.wasm"
    subprocess.run(
        ["sh", str(REPO / "sdk" / "c" / "cc.sh"), str(module), str(FAULTS_SOURCE)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    for name, limits in FAULT_TENANTS.items():
        folder = tenants_dir / name
        folder.mkdir()
        shutil.copy(module, folder / "faults.wasm")
        (folder / "tenant.toml").write_text(
            f'name = "{name}"\nmodule = "faults.wasm"\nsha256 = "{digest}"\n'
            f'auth = "api_key"\n[limits]\n{limits}'
        )


def make_tenants(workdir: Path) -> Path:
    # The C examples only: the Go stdio example has its own box (test_stdio_tenants.py), as
    # compiling its 4.5 MB module would add seconds to every start of this one.
    tenants = copy_tenants(workdir / "tenants", ["notes", "utils"])
    # notes2 runs the same module as notes; only the name (and so the kv namespace) differs.
    shutil.copytree(tenants / "notes", tenants / "notes2")
    manifest = tenants / "notes2" / "tenant.toml"
    manifest.write_text(manifest.read_text().replace('name = "notes"', 'name = "notes2"'))
    build_fault_tenants(tenants, workdir / "build")
    return tenants


@pytest.fixture(scope="session")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProcess]:
    workdir = tmp_path_factory.mktemp("box")
    proc = BoxProcess(workdir=workdir, tenants_dir=make_tenants(workdir))
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"smcp-box exited with {code}:\n{proc.log()}"


@pytest.fixture(scope="session")
def keys(box: BoxProcess) -> dict[str, str]:
    """One API key per tenant, made with the real CLI while the box runs."""
    names = ("notes", "notes2", "utils", "faults", "faults-fuel", "faults-runaway")
    return {name: box.create_key(name) for name in names}


@pytest.fixture(scope="session")
def built_components(tmp_path_factory: pytest.TempPathFactory) -> BuiltComponents:
    """pytasks and pyfaults, built from source once per session (see components_support)."""
    built = build_components(tmp_path_factory.mktemp("components"))
    print("component builds:", *built.build_reports.values(), sep="\n")
    return built


@pytest.fixture(scope="session")
def component_box(
    tmp_path_factory: pytest.TempPathFactory, built_components: BuiltComponents
) -> Iterator[BoxProcess]:
    """A box serving the built Python components beside the notes core module."""
    workdir = tmp_path_factory.mktemp("component-box")
    tenants = copy_built(built_components, copy_tenants(workdir / "tenants", ["notes"]))
    proc = BoxProcess(
        workdir=workdir,
        tenants_dir=tenants,
        extra_env={"SMCP_BOX_CACHE_DIR": str(built_components.cache)},
    )
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"smcp-box exited with {code}:\n{proc.log()}"


@pytest.fixture(scope="session")
def component_keys(component_box: BoxProcess) -> dict[str, str]:
    names = ("notes", "pytasks", "pyfaults", "pyfaults-fuel", "pyfaults-blobs")
    return {name: component_box.create_key(name) for name in names}


@pytest.fixture(scope="session")
def built_js_components(tmp_path_factory: pytest.TempPathFactory) -> BuiltComponents:
    """jsnotes and jsfaults, built from source once per session with componentize-js."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("building JavaScript tenants needs node and npm on PATH (CI has both)")
    root = tmp_path_factory.mktemp("js-components")
    built = build_components(root, (JSNOTES, JSFAULTS), JSFAULT_VARIANTS)
    print("JavaScript component builds:", *built.build_reports.values(), sep="\n")
    return built


@pytest.fixture(scope="session")
def js_box(
    tmp_path_factory: pytest.TempPathFactory, built_js_components: BuiltComponents
) -> Iterator[BoxProcess]:
    """A box serving the built JavaScript components beside the notes core module."""
    workdir = tmp_path_factory.mktemp("js-box")
    tenants = copy_built(built_js_components, copy_tenants(workdir / "tenants", ["notes"]))
    proc = BoxProcess(
        workdir=workdir,
        tenants_dir=tenants,
        extra_env={"SMCP_BOX_CACHE_DIR": str(built_js_components.cache)},
    )
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"smcp-box exited with {code}:\n{proc.log()}"


@pytest.fixture(scope="session")
def js_keys(js_box: BoxProcess) -> dict[str, str]:
    names = ("notes", "jsnotes", "jsfaults", "jsfaults-fuel", "jsfaults-blobs")
    return {name: js_box.create_key(name) for name in names}
