"""tenant.toml ``hosts`` in the registry: looked up by host, one tenant per host name, kept in
step with reloads and removals (real manifests, real modules, real sandbox)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.errors import ConfigError
from smcp_box.sandbox import Sandbox
from smcp_box.tenancy.registry import TenantRegistry

REPO = Path(__file__).resolve().parents[2]


def set_hosts(folder: Path, hosts: list[str]) -> Path:
    """Give the tenant.toml in ``folder`` these hosts (top-level keys go before any table)."""
    manifest = folder / "tenant.toml"
    lines = [line for line in manifest.read_text().splitlines() if not line.startswith("hosts")]
    listed = ", ".join(f'"{host}"' for host in hosts)
    at = next(i for i, line in enumerate(lines) if line.startswith("name ="))
    lines.insert(at + 1, f"hosts = [{listed}]")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def name_at(registry: TenantRegistry, host: str) -> str | None:
    tenant = registry.by_host(host)
    return tenant.name if tenant is not None else None


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[TenantRegistry]:
    sandbox = Sandbox(tmp_path / "cache")
    try:
        yield TenantRegistry(
            sandbox=sandbox,
            kv=None,  # type: ignore[arg-type]
            defaults=SandboxSettings(),
            clock=time.time,
        )
    finally:
        sandbox.close()


@pytest.fixture
def tenants(tmp_path: Path) -> Path:
    root = tmp_path / "tenants"
    for name in ("notes", "utils"):
        shutil.copytree(REPO / "tenants" / name, root / name)
    return root


def test_by_host_finds_the_tenant(registry: TenantRegistry, tenants: Path) -> None:
    set_hosts(tenants / "notes", ["notes.box.lan", "n.example.org"])
    report = registry.load_folder(tenants)
    assert report.loaded == ["notes", "utils"]
    assert name_at(registry, "notes.box.lan") == "notes"
    assert name_at(registry, "NOTES.box.lan.") == "notes"
    assert name_at(registry, "n.example.org") == "notes"
    assert registry.by_host("utils.box.lan") is None
    assert registry.by_host("notes") is None
    assert registry.hosts() == {"notes.box.lan": "notes", "n.example.org": "notes"}


def test_a_host_listed_by_two_tenants_is_refused_naming_both(
    registry: TenantRegistry, tenants: Path
) -> None:
    set_hosts(tenants / "notes", ["notes.box.lan"])
    set_hosts(tenants / "utils", ["utils.box.lan", "notes.box.lan"])
    report = registry.load_folder(tenants)
    assert report.loaded == ["notes"]
    reason = report.failed[str(tenants / "utils")]
    assert "duplicate host 'notes.box.lan'" in reason
    assert "tenants 'notes' and 'utils'" in reason
    # The refused tenant serves none of its names; the first keeps its own.
    assert registry.by_host("utils.box.lan") is None
    assert name_at(registry, "notes.box.lan") == "notes"
    # Fixing the clash and reloading that one tenant serves it at its remaining name.
    set_hosts(tenants / "utils", ["utils.box.lan"])
    registry.load_tenant(tenants / "utils" / "tenant.toml")
    assert name_at(registry, "utils.box.lan") == "utils"
    assert str(tenants / "utils") not in registry.last_report.failed


def test_reloading_one_tenant_cannot_take_another_tenants_host(
    registry: TenantRegistry, tenants: Path
) -> None:
    set_hosts(tenants / "notes", ["notes.box.lan"])
    set_hosts(tenants / "utils", ["utils.box.lan"])
    registry.load_folder(tenants)
    set_hosts(tenants / "utils", ["notes.box.lan"])
    with pytest.raises(ConfigError, match=r"duplicate host 'notes\.box\.lan'"):
        registry.load_tenant(tenants / "utils" / "tenant.toml")
    # The previous utils keeps serving, at its previous name.
    assert name_at(registry, "utils.box.lan") == "utils"
    assert name_at(registry, "notes.box.lan") == "notes"


def test_reload_and_removal_keep_hosts_in_step(registry: TenantRegistry, tenants: Path) -> None:
    set_hosts(tenants / "notes", ["notes.box.lan"])
    registry.load_folder(tenants)
    set_hosts(tenants / "notes", ["notes2.box.lan"])
    registry.load_tenant(tenants / "notes" / "tenant.toml")
    assert registry.by_host("notes.box.lan") is None
    assert registry.by_host("notes2.box.lan") is not None
    registry.remove("notes")
    assert registry.by_host("notes2.box.lan") is None
    assert registry.hosts() == {}
