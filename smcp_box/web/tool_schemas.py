"""Each tenant's tool input schemas, for the ``Mcp-Param-*`` header checks of 2026-07-28.

A ``tools/call`` of a tool whose ``inputSchema`` annotates properties with ``x-mcp-header`` must
carry matching ``Mcp-Param-<Name>`` headers (:mod:`smcp_box.protocol.params`). Reading the schema
must not cost a module call per request, so the schemas come from the module's description
(a warm-up ``tools/list``, cached per module hash). When the module announces
``notifications/tools/list_changed`` (or its description has no tool list), the list is asked
for once more (through :func:`smcp_box.tenancy.describe.describe_module`, the box's one way of
asking a module about itself) and kept until the next change or until the module is replaced.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from smcp_box.protocol.params import MirroredParam, mirrored_params
from smcp_box.seams import JsonObject, ModuleDescription, TenantRuntime
from smcp_box.tenancy.describe import ask_runtime, describe_module


@dataclass(frozen=True)
class _Entry:
    #: The description the schemas belong to: a new one (module replaced) starts afresh.
    description: ModuleDescription
    schemas: dict[str, Any]
    #: Each called tool's mirrored arguments, worked out at its first call.
    mirrored: dict[str, tuple[MirroredParam, ...]] = field(default_factory=dict)


def schemas_by_name(tools: tuple[JsonObject, ...]) -> dict[str, Any]:
    return {
        tool["name"]: tool.get("inputSchema")
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    }


class ToolSchemas:
    """Tool input schemas per tenant, refreshed when a module says its tool list changed."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._stale: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def invalidate(self, tenant: str) -> None:
        """The tenant's module announced a new tool list: ask for it on next use."""
        self._stale.add(tenant)
        self._entries.pop(tenant, None)

    async def input_schema(self, tenant: TenantRuntime, tool: str) -> Any:
        """The tool's ``inputSchema`` (None for a tool the module does not list)."""
        return (await self._entry(tenant)).schemas.get(tool)

    async def mirrored_params(
        self, tenant: TenantRuntime, tool: str
    ) -> tuple[MirroredParam, ...] | None:
        """The arguments the tool's schema mirrors into ``Mcp-Param-*`` headers (None for a
        tool the module does not list)."""
        entry = await self._entry(tenant)
        mirrored = entry.mirrored.get(tool)
        if mirrored is None:
            if tool not in entry.schemas:
                return None
            mirrored = entry.mirrored[tool] = mirrored_params(entry.schemas[tool])
        return mirrored

    async def _entry(self, tenant: TenantRuntime) -> _Entry:
        description = await tenant.describe()
        entry = self._entries.get(tenant.name)
        if entry is None or entry.description is not description:
            lock = self._locks.setdefault(tenant.name, asyncio.Lock())
            async with lock:
                entry = self._entries.get(tenant.name)
                if entry is None or entry.description is not description:
                    entry = await self._load(tenant, description)
        return entry

    async def _load(self, tenant: TenantRuntime, description: ModuleDescription) -> _Entry:
        stale = tenant.name in self._stale
        # Cleared before the call: a change announced while it runs marks the tenant again.
        self._stale.discard(tenant.name)
        if description.tools is None or stale:
            # Only the tool list is asked for again (the module's initialize answer stands),
            # with describe_module's page limit and overflow rule.
            fresh = await describe_module(
                ask_runtime(tenant), tenant=tenant.name, known=description
            )
            tools = fresh.tools or ()
        else:
            tools = description.tools
        entry = _Entry(description=description, schemas=schemas_by_name(tools))
        if tenant.name not in self._stale:
            self._entries[tenant.name] = entry
        return entry
