"""Asking a tenant module about itself: its ``initialize`` answer and its whole tool list (and
its prompts, resource templates and static resources, which approvals hold it to).

This is the one way the box does it. The tenant's warm-up (:meth:`WasmTenant.describe`),
vetting at load (:func:`smcp_box.tenancy.vet.vet_module`) and the transport's tool-schema cache
(``smcp_box.web.tool_schemas``) all call :func:`describe_module`, so they agree on the protocol
version offered, the request ids, the page limit and what a bad answer is.

The contract:

* ``initialize`` is offered :data:`DESCRIBE_PROTOCOL_VERSION` (the latest handshake revision);
  its result must carry ``serverInfo`` and ``capabilities`` objects.
* ``prompts/list`` and ``resources/templates/list`` likewise for ``prompts`` and ``resources``,
  under the same rules; ``resources/list`` too, but a failure there (say a list read from kv,
  which vetting refuses) only leaves ``resources`` None: not covered by approvals.
* ``tools/list`` is asked only of a module whose capabilities declare ``tools``, following
  ``nextCursor`` (a non-empty string) for at most :data:`MAX_TOOL_PAGES` pages; each page must
  be a result with a ``tools`` list (entries that are not objects are skipped).
* Overflow rule: a module still paging after :data:`MAX_TOOL_PAGES` pages is an error
  (:class:`BadModuleReply` naming the limit), never a silently truncated list: a truncated list
  would be pinned, scanned and used for ``Mcp-Param-*`` checks as if it were complete.
* Any other bad answer (no reply, an error reply, a result of the wrong shape) is
  :class:`BadModuleReply`; sandbox limits hit on the way propagate as they are.

It imports nothing of the web, admin, ops or tui packages, nor the box's composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, Final

from smcp_box import __version__
from smcp_box.errors import BadModuleReply, BoxError
from smcp_box.protocol.versions import LATEST_HANDSHAKE_VERSION
from smcp_box.seams import CallContext, JsonObject, ModuleDescription, TenantRuntime

#: The protocol version the box offers a module when it asks about it. Modules answer with
#: their capabilities; the box negotiates each client's version itself.
DESCRIBE_PROTOCOL_VERSION: Final = LATEST_HANDSHAKE_VERSION
#: Pages of ``tools/list`` followed; a module that pages on past them fails the description.
MAX_TOOL_PAGES: Final = 32
#: Who the box says it is in its own ``initialize``.
CLIENT_INFO: Final[JsonObject] = {"name": "smcp-box", "version": __version__}
#: Request ids of the box's own calls: ``initialize`` is 1, tool-list page n is 1 + n; the
#: other lists count from their own base, so every id of one description is distinct.
_INITIALIZE_ID: Final = 1
_TOOLS_FIRST_ID: Final = _INITIALIZE_ID + 1
_PROMPTS_FIRST_ID: Final = 101
_TEMPLATES_FIRST_ID: Final = 201
_RESOURCES_FIRST_ID: Final = 301

#: Sends one request to the module and returns its reply, already checked by
#: :func:`smcp_box.protocol.jsonrpc.check_module_reply` (None: the module sent nothing).
Ask = Callable[[JsonObject], Awaitable[JsonObject | None]]


async def describe_module(
    ask: Ask, *, tenant: str, known: ModuleDescription | None = None
) -> ModuleDescription:
    """The module's description: its initialize answer and the lists of what it has.

    With ``known``, the module's initialize answer (and its prompts and resources) are taken
    from it and only the tool list is asked for again (the module announced
    ``notifications/tools/list_changed``).
    """
    if known is None:
        init = _result(
            tenant,
            "initialize",
            await ask(
                {
                    "jsonrpc": "2.0",
                    "id": _INITIALIZE_ID,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": DESCRIBE_PROTOCOL_VERSION,
                        "capabilities": {},
                        "clientInfo": dict(CLIENT_INFO),
                    },
                }
            ),
        )
        server_info, capabilities = init.get("serverInfo"), init.get("capabilities")
        if not isinstance(server_info, dict) or not isinstance(capabilities, dict):
            raise BadModuleReply(
                f"tenant {tenant!r}: the module's initialize result lacks serverInfo or "
                "capabilities objects",
                data={"tenant": tenant},
            )
        instructions = init.get("instructions")
        known = ModuleDescription(
            server_info=server_info,
            capabilities=capabilities,
            instructions=instructions if isinstance(instructions, str) else None,
        )
        return await _describe_others(ask, tenant, known)
    # A known description: only its tool list changed (notifications/tools/list_changed).
    capabilities = known.capabilities
    tools: tuple[JsonObject, ...] | None = None
    if isinstance(capabilities.get("tools"), dict):
        tools = tuple(await _list(ask, tenant, "tools/list", "tools", _TOOLS_FIRST_ID))
    return replace(known, tools=tools)


async def _describe_others(ask: Ask, tenant: str, known: ModuleDescription) -> ModuleDescription:
    """Every list of a module just initialized: tools, prompts, templates and resources."""
    capabilities = known.capabilities
    tools: tuple[JsonObject, ...] | None = None
    if isinstance(capabilities.get("tools"), dict):
        tools = tuple(await _list(ask, tenant, "tools/list", "tools", _TOOLS_FIRST_ID))
    prompts: tuple[JsonObject, ...] | None = None
    if isinstance(capabilities.get("prompts"), dict):
        prompts = tuple(await _list(ask, tenant, "prompts/list", "prompts", _PROMPTS_FIRST_ID))
    templates: tuple[JsonObject, ...] | None = None
    resources: tuple[JsonObject, ...] | None = None
    if isinstance(capabilities.get("resources"), dict):
        templates = tuple(
            await _list(
                ask, tenant, "resources/templates/list", "resourceTemplates", _TEMPLATES_FIRST_ID
            )
        )
        resources = await _static_resources(ask, tenant)
    return ModuleDescription(
        server_info=known.server_info,
        capabilities=capabilities,
        instructions=known.instructions,
        tools=tools,
        prompts=prompts,
        resource_templates=templates,
        resources=resources,
    )


async def _static_resources(ask: Ask, tenant: str) -> tuple[JsonObject, ...] | None:
    """The module's resources/list, or None when it cannot give one here: resources are often
    listed from kv, which vetting refuses, and a list that depends on state is no definition
    to approve. Tools, prompts and templates must be listable; resources need not be."""
    try:
        return tuple(await _list(ask, tenant, "resources/list", "resources", _RESOURCES_FIRST_ID))
    except BoxError:
        return None


async def _list(ask: Ask, tenant: str, method: str, key: str, first_id: int) -> list[JsonObject]:
    """Every page of ``method`` (whose result lists its items under ``key``)."""
    items: list[JsonObject] = []
    cursor: str | None = None
    for page in range(MAX_TOOL_PAGES):
        params: JsonObject = {} if cursor is None else {"cursor": cursor}
        message = {"jsonrpc": "2.0", "id": first_id + page, "method": method, "params": params}
        result = _result(tenant, method, await ask(message))
        listed = result.get(key)
        if not isinstance(listed, list):
            raise BadModuleReply(
                f"tenant {tenant!r}: the module's {method} result has no {key} list",
                data={"tenant": tenant},
            )
        items.extend(item for item in listed if isinstance(item, dict))
        following = result.get("nextCursor")
        if not isinstance(following, str) or not following:
            return items
        cursor = following
    raise BadModuleReply(
        f"tenant {tenant!r}: {method} did not end within {MAX_TOOL_PAGES} pages (the box's "
        "limit); return fewer, larger pages",
        data={"tenant": tenant, "max_pages": MAX_TOOL_PAGES},
    )


def _result(tenant: str, method: str, reply: JsonObject | None) -> JsonObject:
    if reply is None:
        raise BadModuleReply(
            f"tenant {tenant!r}: the module sent no reply to {method}", data={"tenant": tenant}
        )
    result = reply.get("result")
    if isinstance(result, dict):
        return result
    error = reply.get("error")
    said = f": {error.get('message')}" if isinstance(error, dict) else ""
    raise BadModuleReply(
        f"tenant {tenant!r}: the module did not answer {method} with a result{said}",
        data={"tenant": tenant},
    )


def ask_runtime(runtime: TenantRuntime) -> Ask:
    """An :data:`Ask` through a tenant runtime's ``call`` (which checks each reply), as the box's
    own call: no caller, notifications dropped."""

    async def drop(_: JsonObject) -> None:
        return None

    async def ask(message: JsonObject) -> JsonObject | None:
        ctx = CallContext(
            tenant=runtime.name, protocol_version=DESCRIBE_PROTOCOL_VERSION, notify=drop
        )
        return await runtime.call(message, ctx)

    return ask


def describe_module_sync(
    call: Callable[[JsonObject], JsonObject | None], *, tenant: str
) -> ModuleDescription:
    """:func:`describe_module` over a synchronous ``call`` (vetting, which runs the module in
    the calling thread): the coroutine never suspends, so it is stepped to its end here."""

    async def ask(message: JsonObject) -> JsonObject | None:
        return call(message)

    return _run_unsuspended(describe_module(ask, tenant=tenant))


def _run_unsuspended(coro: Coroutine[Any, Any, ModuleDescription]) -> ModuleDescription:
    try:
        coro.send(None)
    except StopIteration as done:
        result: ModuleDescription = done.value
        return result
    coro.close()
    raise RuntimeError("describe_module suspended although every call it made was synchronous")
