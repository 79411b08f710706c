"""WasmTenant.describe(): one warm-up initialize and tools/list per module, with real modules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.sandbox import Sandbox
from smcp_box.tenancy.registry import TenantRegistry
from smcp_box.tenancy.runtime import WasmTenant
from tests.e2e.boxproc import REPO


class MemoryKv:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    async def kv_get(self, tenant: str, key: str) -> str | None:
        return self.data.get((tenant, key))

    async def kv_set(self, tenant: str, key: str, value: str, quota: object = None) -> None:
        self.data[(tenant, key)] = value

    async def kv_delete(self, tenant: str, key: str) -> bool:
        return self.data.pop((tenant, key), None) is not None

    async def kv_list(self, tenant: str, prefix: str = "") -> list[str]:
        return sorted(k for t, k in self.data if t == tenant and k.startswith(prefix))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


def registry(sandbox: Sandbox, folder: Path) -> TenantRegistry:
    tenants = TenantRegistry(
        sandbox=sandbox, kv=MemoryKv(), defaults=SandboxSettings(), clock=time.time
    )
    report = tenants.load_folder(folder)
    assert not report.failed, report.failed
    return tenants


async def test_the_description_carries_the_modules_tools(sandbox: Sandbox) -> None:
    tenant = registry(sandbox, REPO / "tests" / "tenants").require("conformance")
    described = await tenant.describe()
    assert described.server_info["name"] == "conformance"
    assert described.tools is not None
    tools = {tool["name"]: tool for tool in described.tools}
    # What the Mcp-Param-* checks read: the schema exactly as the module lists it.
    region = tools["test_x_mcp_header"]["inputSchema"]["properties"]["region"]
    assert region["x-mcp-header"] == "Region"
    assert await tenant.describe() is described  # cached: one warm-up per module
    # Loaded through the registry, the description came from vetting's calls: none repeated.
    assert tenant.stats.calls == 0
    # A tenant object without it warms up itself, with the same two calls and the same answer.
    cold = WasmTenant(
        tenant.manifest, tenant.module, sandbox=sandbox, kv=MemoryKv(), clock=time.time
    )
    assert await cold.describe() == described
    assert await cold.describe() == described
    # initialize, tools/list, prompts/list, resources/templates/list, resources/list
    assert cold.stats.calls == 5


async def test_example_tenants_list_their_tools_too(sandbox: Sandbox) -> None:
    tenant = registry(sandbox, REPO / "tenants").require("notes")
    described = await tenant.describe()
    assert described.tools is not None
    assert {tool["name"] for tool in described.tools} >= {"note_create", "note_get"}


def test_tenant_toml_warm_instances_are_made_at_load(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "tenants" / "notes"
    folder.mkdir(parents=True)
    (folder / "notes.wasm").write_bytes((REPO / "tenants/notes/notes.wasm").read_bytes())
    manifest = (REPO / "tenants/notes/tenant.toml").read_text()
    (folder / "tenant.toml").write_text(
        manifest.replace("[limits]\n", "[limits]\nwarm_instances = 3\nmax_instances = 3\n")
    )
    tenant = registry(sandbox, tmp_path / "tenants").require("notes")
    assert tenant.module.limits.warm_instances == 3
    stats = sandbox.stats("notes")
    # notes lists its resources from kv, which vetting refuses: that resources/list cost an
    # instance, and vetting made a fourth so that three are warm as the manifest asks.
    assert (stats.warm_instances, stats.instances_created) == (3, 4)
    assert tenant.known_description is not None
    assert tenant.known_description.resources is None
