"""Fixtures for the tenant-module tests: the committed example modules and the SDK probe."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import TENANTS, Host, Tenant, build

PROBE_SOURCE = Path(__file__).parent / "fixtures" / "sdk_probe.c"


def tenant_config(name: str) -> dict[str, str]:
    with (TENANTS / name / "tenant.toml").open("rb") as f:
        config: dict[str, str] = tomllib.load(f).get("config", {})
    return config


@pytest.fixture
def notes() -> Tenant:
    return Tenant(TENANTS / "notes" / "notes.wasm", Host(config=tenant_config("notes")))


@pytest.fixture
def utils() -> Tenant:
    return Tenant(TENANTS / "utils" / "utils.wasm", Host(config=tenant_config("utils")))


@pytest.fixture(scope="session")
def probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The SDK probe tenant, built from source for this test session."""
    pytest.importorskip("ziglang")
    out = tmp_path_factory.mktemp("probe") / "sdk_probe.wasm"
    build([PROBE_SOURCE], out)
    return out.read_bytes()


@pytest.fixture
def probe(probe_wasm: bytes) -> Tenant:
    return Tenant(probe_wasm)


@pytest.fixture
def make_probe(probe_wasm: bytes) -> Callable[..., Tenant]:
    """A probe with a custom host or limits: make_probe(host=..., memory_limit=...)."""

    def make(**kwargs: object) -> Tenant:
        return Tenant(probe_wasm, **kwargs)  # type: ignore[arg-type]

    return make
