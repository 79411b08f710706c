"""describe_module: the one way the box asks a module about itself (warm-up, vetting and the
tool-schema cache), with one page limit, one overflow rule and one protocol version."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.errors import BadModuleReply, CallTimeout, ModuleRejected
from smcp_box.protocol.jsonrpc import check_module_reply
from smcp_box.sandbox import Sandbox
from smcp_box.seams import CallContext, JsonObject, ModuleDescription
from smcp_box.tenancy.describe import (
    DESCRIBE_PROTOCOL_VERSION,
    MAX_TOOL_PAGES,
    ask_runtime,
    describe_module,
)
from smcp_box.tenancy.manifest import load_manifest, resolve_limits
from smcp_box.tenancy.registry import TenantRegistry
from smcp_box.tenancy.runtime import WasmTenant
from smcp_box.tenancy.vet import vet_module
from smcp_box.web.tool_schemas import ToolSchemas
from tests.tenancy.pager import build_pager
from tests.tenancy.test_runtime_describe import MemoryKv

LIMIT_MESSAGE = f"tools/list did not end within {MAX_TOOL_PAGES} pages"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


def tenant_of(sandbox: Sandbox, manifest_path: Path) -> WasmTenant:
    """A tenant object that was not vetted (so its first describe() is a warm-up)."""
    manifest = load_manifest(manifest_path)
    limits = resolve_limits(SandboxSettings(), manifest.limit_overrides)
    module = sandbox.load(manifest.name, manifest.read_module(), limits)
    return WasmTenant(manifest, module, sandbox=sandbox, kv=MemoryKv(), clock=time.time)


# --- a TenantRuntime-shaped script, for the paging and reply rules on their own -------------


#: What Scripted answers for the lists beside tools (resources/list: kv refused, say).
LISTS: dict[str, Any] = {
    "prompts/list": {"prompts": [{"name": "p", "_meta": {}}]},
    "resources/templates/list": {"resourceTemplates": [{"uriTemplate": "n://{id}"}]},
    "resources/list": {"error": {"code": -32603, "message": "kv is not available"}},
}


class Scripted:
    """Answers initialize and tools/list from a script; records every request it got."""

    def __init__(
        self,
        *,
        init: Any = None,
        pages: list[Any] | None = None,
        endless: bool = False,
        capabilities: JsonObject | None = None,
    ) -> None:
        self.name = "scripted"
        self.auth_mode = "none"
        self.enabled = True
        caps = {"tools": {}} if capabilities is None else capabilities
        self.init = init or {"serverInfo": {"name": "s", "version": "1"}, "capabilities": caps}
        self.pages = pages or [{"tools": [{"name": "a"}]}]
        self.endless = endless
        self.requests: list[JsonObject] = []
        self.contexts: list[CallContext] = []

    async def describe(self) -> ModuleDescription:
        raise AssertionError("describe_module must not be asked to describe via describe()")

    async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
        self.requests.append(message)
        self.contexts.append(ctx)
        if message["method"] == "initialize":
            result = self.init
        elif message["method"] in LISTS:
            result = LISTS[message["method"]]
        elif self.endless:
            cursor = int(message["params"].get("cursor", "0"))
            result = {"tools": [{"name": f"t{cursor}"}], "nextCursor": str(cursor + 1)}
        else:
            index = int(message["params"].get("cursor", "0"))
            result = self.pages[index]
        if result is None:
            return None
        if isinstance(result, dict) and "error" in result:
            reply = {"jsonrpc": "2.0", "id": message["id"], "error": result["error"]}
        else:
            reply = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        return check_module_reply(reply, message["id"])


async def test_initialize_then_every_page_in_order() -> None:
    module = Scripted(
        pages=[
            {"tools": [{"name": "a"}, "not-an-object"], "nextCursor": "1"},
            {"tools": [{"name": "b"}], "nextCursor": "2"},
            {"tools": [{"name": "c"}], "nextCursor": ""},
        ]
    )
    described = await describe_module(ask_runtime(module), tenant="scripted")
    assert described.server_info == {"name": "s", "version": "1"}
    assert described.tools == ({"name": "a"}, {"name": "b"}, {"name": "c"})
    init, *lists = module.requests
    assert init["method"] == "initialize"
    assert init["params"]["protocolVersion"] == DESCRIBE_PROTOCOL_VERSION == "2025-11-25"
    assert [r["params"] for r in lists] == [{}, {"cursor": "1"}, {"cursor": "2"}]
    assert [r["id"] for r in module.requests] == [1, 2, 3, 4]  # one id per request
    # The box's own calls: no caller, the describe version, notifications dropped.
    assert {(c.caller, c.protocol_version) for c in module.contexts} == {
        (None, DESCRIBE_PROTOCOL_VERSION)
    }


async def test_no_tools_capability_means_no_tools_list() -> None:
    module = Scripted(capabilities={"prompts": {}})
    described = await describe_module(ask_runtime(module), tenant="scripted")
    assert described.tools is None
    assert [r["method"] for r in module.requests] == ["initialize", "prompts/list"]
    assert described.prompts == ({"name": "p", "_meta": {}},)


async def test_prompts_and_templates_are_listed_and_resources_only_when_they_can_be() -> None:
    module = Scripted(capabilities={"resources": {}})
    described = await describe_module(ask_runtime(module), tenant="scripted")
    assert [r["method"] for r in module.requests] == [
        "initialize",
        "resources/templates/list",
        "resources/list",
    ]
    assert described.resource_templates == ({"uriTemplate": "n://{id}"},)
    # resources/list failed (as one read from kv does while vetting): not covered, not fatal.
    assert described.resources is None
    assert described.prompts is None
    assert len({r["id"] for r in module.requests}) == 3


async def test_known_description_asks_only_for_the_tools() -> None:
    module = Scripted(pages=[{"tools": [{"name": "fresh"}]}])
    known = ModuleDescription(
        server_info={"name": "k"}, capabilities={"tools": {}}, instructions="hi", tools=()
    )
    described = await describe_module(ask_runtime(module), tenant="scripted", known=known)
    assert described == ModuleDescription(
        server_info={"name": "k"},
        capabilities={"tools": {}},
        instructions="hi",
        tools=({"name": "fresh"},),
    )
    assert [r["method"] for r in module.requests] == ["tools/list"]


async def test_paging_past_the_limit_is_an_error_naming_it() -> None:
    module = Scripted(endless=True)
    with pytest.raises(BadModuleReply, match=LIMIT_MESSAGE):
        await describe_module(ask_runtime(module), tenant="scripted")
    assert len(module.requests) == 1 + MAX_TOOL_PAGES


async def test_exactly_the_limit_is_fine() -> None:
    pages: list[Any] = [
        {"tools": [{"name": f"t{i}"}], "nextCursor": str(i + 1)} for i in range(MAX_TOOL_PAGES)
    ]
    del pages[-1]["nextCursor"]
    described = await describe_module(ask_runtime(Scripted(pages=pages)), tenant="scripted")
    assert described.tools is not None
    assert len(described.tools) == MAX_TOOL_PAGES


@pytest.mark.parametrize(
    ("script", "complaint"),
    [
        ({"init": {"capabilities": {}}}, "lacks serverInfo or capabilities"),
        ({"init": {"serverInfo": {}, "capabilities": []}}, "lacks serverInfo or capabilities"),
        ({"init": {"error": {"code": -1, "message": "nope"}}}, "initialize with a result: nope"),
        ({"pages": [{"tools": "many"}]}, "has no tools list"),
        ({"pages": [{}]}, "has no tools list"),
        ({"pages": [{"error": {"code": -32601, "message": "x"}}]}, "tools/list with a result"),
        ({"pages": [None]}, "no reply to tools/list"),
    ],
)
async def test_bad_replies(script: dict[str, Any], complaint: str) -> None:
    with pytest.raises(BadModuleReply, match=complaint):
        await describe_module(ask_runtime(Scripted(**script)), tenant="scripted")


async def test_limits_hit_on_the_way_propagate() -> None:
    class Slow(Scripted):
        async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
            if message["method"] == "tools/list":
                raise CallTimeout("the call ran out of time")
            return await super().call(message, ctx)

    with pytest.raises(CallTimeout):
        await describe_module(ask_runtime(Slow()), tenant="scripted")


# --- real modules: the three callers all go through describe_module -----------------------


async def test_real_module_paging(tmp_path: Path, sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, build_pager(tmp_path / "pager", pages=3))
    described = await tenant.describe()
    assert described.server_info == {"name": "pager", "version": "1.0.0"}
    assert [tool["name"] for tool in described.tools or ()] == ["tool_0", "tool_1", "tool_2"]
    assert tenant.stats.calls == 4  # initialize + three pages


async def test_vetting_warm_up_and_schema_cache_share_the_overflow_rule(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """A real module that pages forever fails all three the same way: through describe_module."""
    manifest_path = build_pager(tmp_path / "pager", pages=0)
    manifest = load_manifest(manifest_path)
    tenant = tenant_of(sandbox, manifest_path)
    # Vetting (at load): refused, naming the limit.
    with pytest.raises(ModuleRejected, match=LIMIT_MESSAGE):
        vet_module(sandbox, tenant.module, manifest)
    registry = TenantRegistry(
        sandbox=sandbox, kv=MemoryKv(), defaults=SandboxSettings(), clock=time.time
    )
    report = registry.load_folder(tmp_path)
    assert LIMIT_MESSAGE in "".join(report.failed.values())
    # Warm-up (a tenant object built without vetting): the same error.
    with pytest.raises(BadModuleReply, match=LIMIT_MESSAGE):
        await tenant.describe()
    # The tool-schema cache, re-listing after list_changed: the same error again.
    known = ModuleDescription(server_info={"name": "pager"}, capabilities={"tools": {}}, tools=())
    tenant_known = WasmTenant(
        manifest,
        tenant.module,
        sandbox=sandbox,
        kv=MemoryKv(),
        clock=time.time,
        description=known,
    )
    schemas = ToolSchemas()
    assert await schemas.input_schema(tenant_known, "anything") is None  # from the description
    schemas.invalidate("pager")
    with pytest.raises(BadModuleReply, match=LIMIT_MESSAGE):
        await schemas.input_schema(tenant_known, "anything")


async def test_schema_cache_relists_through_describe_module(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    manifest_path = build_pager(tmp_path / "pager", pages=2)
    manifest = load_manifest(manifest_path)
    tenant = tenant_of(sandbox, manifest_path)
    known = ModuleDescription(server_info={"name": "pager"}, capabilities={"tools": {}})
    described = WasmTenant(
        manifest, tenant.module, sandbox=sandbox, kv=MemoryKv(), clock=time.time, description=known
    )
    # The description has no tool list: the cache asks for it, tools/list only, both pages.
    assert await ToolSchemas().input_schema(described, "tool_1") == {"type": "object"}
    assert described.stats.calls == 2


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [(1, "has no tools list"), (2, "lacks serverInfo or capabilities")],
)
async def test_real_module_bad_replies(
    tmp_path: Path, sandbox: Sandbox, broken: int, complaint: str
) -> None:
    manifest_path = build_pager(tmp_path / "pager", pages=1, broken=broken)
    tenant = tenant_of(sandbox, manifest_path)
    with pytest.raises(BadModuleReply, match=complaint):
        await tenant.describe()
    with pytest.raises(ModuleRejected, match=complaint):
        vet_module(sandbox, tenant.module, load_manifest(manifest_path))


async def test_vetting_gives_the_same_description_as_the_warm_up(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    manifest_path = build_pager(tmp_path / "pager", pages=2)
    tenant = tenant_of(sandbox, manifest_path)
    vetted = vet_module(sandbox, tenant.module, load_manifest(manifest_path))
    assert await tenant.describe() == vetted
