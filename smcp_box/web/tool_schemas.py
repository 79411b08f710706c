"""Each tenant's tool input schemas, for the ``Mcp-Param-*`` header checks of 2026-07-28.

A ``tools/call`` of a tool whose ``inputSchema`` annotates properties with ``x-mcp-header`` must
carry matching ``Mcp-Param-<Name>`` headers (:mod:`smcp_box.protocol.params`). Reading the schema
must not cost a module call per request, so the schemas come from the module's description
(a warm-up ``tools/list``, cached per module hash). When the module announces
``notifications/tools/list_changed`` (or its description has no tool list), the list is asked
for once more and kept until the next change or until the module is replaced.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Final

from smcp_box.errors import BadModuleReply
from smcp_box.protocol.versions import LATEST_HANDSHAKE_VERSION
from smcp_box.seams import CallContext, JsonObject, ModuleDescription, TenantRuntime

log = logging.getLogger("smcp_box.web.mcp")

#: Pages of tools/list followed before the box stops (a module that pages forever).
MAX_PAGES: Final = 32
_LIST_ID: Final = "smcp-box-tools-list"


@dataclass(frozen=True)
class _Entry:
    #: The description the schemas belong to: a new one (module replaced) starts afresh.
    description: ModuleDescription
    schemas: dict[str, Any]


def schemas_by_name(tools: tuple[JsonObject, ...] | list[JsonObject]) -> dict[str, Any]:
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
        description = await tenant.describe()
        entry = self._entries.get(tenant.name)
        if entry is None or entry.description is not description:
            lock = self._locks.setdefault(tenant.name, asyncio.Lock())
            async with lock:
                entry = self._entries.get(tenant.name)
                if entry is None or entry.description is not description:
                    entry = await self._load(tenant, description)
        return entry.schemas.get(tool)

    async def _load(self, tenant: TenantRuntime, description: ModuleDescription) -> _Entry:
        stale = tenant.name in self._stale
        # Cleared before the call: a change announced while it runs marks the tenant again.
        self._stale.discard(tenant.name)
        if description.tools is not None and not stale:
            tools: list[JsonObject] = list(description.tools)
        else:
            tools = await list_tools(tenant)
        entry = _Entry(description=description, schemas=schemas_by_name(tools))
        if tenant.name not in self._stale:
            self._entries[tenant.name] = entry
        return entry


async def list_tools(tenant: TenantRuntime) -> list[JsonObject]:
    """The module's whole tool list, following ``nextCursor`` (a box-internal request)."""

    async def drop(_: JsonObject) -> None:
        return None

    tools: list[JsonObject] = []
    cursor: Any = None
    for _ in range(MAX_PAGES):
        params: JsonObject = {} if cursor is None else {"cursor": cursor}
        message = {"jsonrpc": "2.0", "id": _LIST_ID, "method": "tools/list", "params": params}
        ctx = CallContext(
            tenant=tenant.name, protocol_version=LATEST_HANDSHAKE_VERSION, notify=drop
        )
        reply = await tenant.call(message, ctx)
        result = reply.get("result") if reply is not None else None
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            raise BadModuleReply(
                f"tenant {tenant.name!r}: the module did not answer tools/list with a tool list"
            )
        tools.extend(tool for tool in result["tools"] if isinstance(tool, dict))
        cursor = result.get("nextCursor")
        if not isinstance(cursor, str) or not cursor:
            return tools
    log.warning("tenant %s: tools/list still paging after %d pages", tenant.name, MAX_PAGES)
    return tools
