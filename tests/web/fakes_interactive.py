"""A Python tenant that asks its client for input (InputRequiredResult rounds), announces list
changes and resource updates, and has a tool whose argument is mirrored into a header."""

from __future__ import annotations

from typing import Any

from smcp_box.seams import CallContext, JsonObject, ModuleDescription
from tests.web.fakes import EchoRuntime

CAPS_META = "io.modelcontextprotocol/clientCapabilities"

SAMPLING = {
    "method": "sampling/createMessage",
    "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "Say hi"}}],
        "maxTokens": 10,
    },
}
ELICITATION = {
    "method": "elicitation/create",
    "params": {
        "message": "Who are you?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}
ROOTS = {"method": "roots/list"}


def region_tool(header: str) -> JsonObject:
    return {
        "name": "region",
        "description": "Echoes its region, mirrored into a header.",
        "inputSchema": {
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": header}},
        },
    }


def _text(request_id: Any, text: str) -> JsonObject:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"content": [{"type": "text", "text": text}], "isError": False},
    }


def _input_required(request_id: Any, requests: JsonObject, state: str | None) -> JsonObject:
    result: JsonObject = {"resultType": "input_required", "inputRequests": requests}
    if state is not None:
        result["requestState"] = state
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class InteractiveRuntime(EchoRuntime):
    """Tools: ``ask`` (sampling + elicitation in one round, with requestState), ``ask_forever``
    (roots, every round), ``touch`` (resources/updated for ``uri``), ``change`` (tool list
    changes: ``region``'s header becomes ``Zone``), ``region`` (x-mcp-header). Resources
    ``mem://...`` can be subscribed to; ``prompts/list`` wrongly answers input_required."""

    def __init__(self, name: str = "alpha") -> None:
        super().__init__(name)
        self.tools = [region_tool("Region")]
        self.tools_list_calls = 0

    async def describe(self) -> ModuleDescription:
        self.describe_calls += 1
        return ModuleDescription(
            server_info={"name": f"{self.name}-interactive", "version": "1.0.0"},
            capabilities={
                "tools": {"listChanged": True},
                "prompts": {"listChanged": True},
                "resources": {"subscribe": True, "listChanged": False},
            },
            tools=tuple(self.tools),
        )

    async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
        method, request_id = message.get("method"), message.get("id")
        params = message.get("params") or {}
        if "id" not in message:
            return await super().call(message, ctx)
        if method == "tools/list":
            self.tools_list_calls += 1
            return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": self.tools}}
        if method == "prompts/list":
            return _input_required(request_id, {"r": ROOTS}, None)
        if method in ("resources/subscribe", "resources/unsubscribe"):
            uri = params.get("uri")
            if isinstance(uri, str) and uri.startswith("mem://"):
                return {"jsonrpc": "2.0", "id": request_id, "result": {}}
            error = {"code": -32602, "message": "Resource not found", "data": {"uri": uri}}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        if method != "tools/call":
            return await super().call(message, ctx)
        self.calls.append((message, ctx))
        self._started(request_id)
        name, args = params.get("name"), params.get("arguments") or {}
        answers = params.get("inputResponses")
        if name == "ask":
            if answers is None:
                return _input_required(request_id, {"llm": SAMPLING, "who": ELICITATION}, "one")
            said = answers["llm"]["content"]["text"]
            who = answers["who"]["content"]["name"]
            caps = sorted(params.get("_meta", {}).get(CAPS_META, {}))
            state = params.get("requestState")
            return _text(request_id, f"{who} heard {said!r} (state {state}, caps {caps})")
        if name == "ask_forever":
            return _input_required(request_id, {"roots": ROOTS}, None)
        if name == "touch":
            await ctx.notify(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/resources/updated",
                    "params": {"uri": args.get("uri")},
                }
            )
            return _text(request_id, "touched")
        if name == "change":
            self.tools = [region_tool("Zone")]
            await ctx.notify({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            return _text(request_id, "changed")
        if name == "change_prompts":
            await ctx.notify({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"})
            return _text(request_id, "changed prompts")
        if name == "region":
            return _text(request_id, f"region {args.get('region')}")
        self.calls.pop()  # EchoRuntime records it again
        return await super().call(message, ctx)
