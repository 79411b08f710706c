"""End-to-end fixtures: one real box per test session, serving the repository's example tenants
plus the fault tenants built from source, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.boxproc import BoxProcess, copy_tenants


@pytest.fixture(scope="session")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProcess]:
    workdir = tmp_path_factory.mktemp("box")
    tenants = copy_tenants(workdir / "tenants")
    proc = BoxProcess(workdir=workdir, tenants_dir=tenants)
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"smcp-box exited with {code}:\n{proc.log()}"


@pytest.fixture(scope="session")
def keys(box: BoxProcess) -> dict[str, str]:
    """One API key per example tenant, made with the real CLI while the box runs."""
    return {name: box.create_key(name) for name in ("notes", "utils")}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
