"""An MCP server inside a component: decorators that register tools, resources and prompts, and
the dispatch of the JSON-RPC messages the box passes to the world's ``handle`` export.

The box owns transport, sessions, ping and cancellation; a tenant answers ``initialize``,
``tools/*``, ``resources/*``, ``prompts/*`` and notifications (docs/abi.md). One message in,
its reply out; a notification gets the empty reply.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from . import host
from .schema import check_value, input_schema, output_schema

F = TypeVar("F", bound=Callable[..., Any])

#: The newest handshake revision this SDK knows; the box negotiates clients' versions itself.
LATEST_PROTOCOL_VERSION = "2025-11-25"
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)


class ToolError(Exception):
    """Raise from a tool to fail it on its own terms: the client sees ``isError`` and the text."""


class RpcError(Exception):
    """Raise to answer the request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class Escalate(Exception):
    """Raise from a tool declared with ``task_support`` to run this call as a durable task
    (docs/tasks.md): the box answers the client with a task id and calls the tool again in the
    background, where ``ctx.task_id`` is set. Only when ``ctx.may_escalate``; otherwise the
    call fails with a JSON-RPC error."""


#: The ``_meta`` key through which the box tells a tool call about tasks (docs/tasks.md).
TASK_META_KEY = "smcp-box/task"


class Context:
    """What a tool, resource or prompt function can ask about its request: progress and logs
    for the caller, and whether it runs as a task. Declare a parameter annotated ``Context``
    to receive it."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        #: The client's progress token, when it asked for progress.
        self.progress_token = meta.get("progressToken")
        task = meta.get(TASK_META_KEY)
        task = task if isinstance(task, dict) else {}
        task_id = task.get("taskId")
        #: The task this call runs for (the box's background call), else None.
        self.task_id: str | None = task_id if isinstance(task_id, str) else None
        #: Whether raising :class:`Escalate` may turn this call into a task: the client
        #: negotiated tasks and the tool declared ``task_support``.
        self.may_escalate = task.get("escalate") == "allowed"

    def progress(self, progress: float, total: float | None = None, message: str = "") -> None:
        """A ``notifications/progress`` to the caller (nothing when it sent no token)."""
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message:
            params["message"] = message
        host.notify("notifications/progress", params)

    def log(self, data: Any, level: str = "info", logger: str | None = None) -> None:
        """A ``notifications/message`` to the caller (the box drops it below the client's
        ``logging/setLevel``)."""
        params: dict[str, Any] = {"level": level, "data": data}
        if logger:
            params["logger"] = logger
        host.notify("notifications/message", params)


def _is_context(hint: Any) -> bool:
    return hint is Context


@dataclass
class _Tool:
    func: Callable[..., Any]
    definition: dict[str, Any]
    schema: dict[str, Any]
    context_param: str | None


@dataclass
class _Resource:
    func: Callable[..., Any]
    definition: dict[str, Any]
    pattern: re.Pattern[str] | None = None
    context_param: str | None = None


@dataclass
class _Prompt:
    func: Callable[..., Any]
    definition: dict[str, Any]
    context_param: str | None = None


def _context_param(func: Callable[..., Any]) -> str | None:
    hints = get_type_hints(func)
    return next((name for name, hint in hints.items() if _is_context(hint)), None)


def _doc(func: Callable[..., Any]) -> str:
    return inspect.cleandoc(func.__doc__ or "").split("\n\n")[0].replace("\n", " ")


def _template_pattern(uri: str) -> re.Pattern[str]:
    parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", uri)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


@dataclass
class App:
    """One tenant's MCP server. Register with the decorators, then ``WitWorld = app.world()``
    at the end of the app module (componentize-py looks for that class)."""

    name: str
    version: str = "0.1.0"
    instructions: str | None = None
    _tools: dict[str, _Tool] = field(default_factory=dict)
    _resources: dict[str, _Resource] = field(default_factory=dict)
    _templates: dict[str, _Resource] = field(default_factory=dict)
    _prompts: dict[str, _Prompt] = field(default_factory=dict)

    # --- registration -------------------------------------------------------------------

    def tool(
        self,
        name: str | None = None,
        *,
        title: str | None = None,
        description: str | None = None,
        annotations: dict[str, Any] | None = None,
        task_support: str | None = None,
    ) -> Callable[[F], F]:
        """Register a function as a tool; its parameters' type hints are its input schema and
        its docstring's first paragraph its description. ``task_support`` ("optional" or
        "required") declares that calls may run as durable tasks (docs/tasks.md): the
        function then raises :class:`Escalate` when ``ctx.may_escalate`` to become one."""
        if task_support not in (None, "optional", "required"):
            raise ValueError(
                f"task_support must be 'optional', 'required' or None, not {task_support!r}"
            )

        def register(func: F) -> F:
            schema = input_schema(func, _is_context)
            definition: dict[str, Any] = {
                "name": name or func.__name__,
                "description": description or _doc(func),
                "inputSchema": schema,
            }
            if title:
                definition["title"] = title
            if annotations:
                definition["annotations"] = annotations
            if task_support:
                definition["execution"] = {"taskSupport": task_support}
            out = output_schema(func)
            if out is not None:
                definition["outputSchema"] = out
            self._tools[definition["name"]] = _Tool(func, definition, schema, _context_param(func))
            return func

        return register

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        description: str | None = None,
        mime_type: str = "text/plain",
    ) -> Callable[[F], F]:
        """Register a function that returns a resource's text (str) or bytes. A URI with
        ``{placeholders}`` is a template: the function receives them as keyword arguments."""

        def register(func: F) -> F:
            definition: dict[str, Any] = {
                "name": name or func.__name__,
                "description": description or _doc(func),
                "mimeType": mime_type,
            }
            if "{" in uri:
                definition["uriTemplate"] = uri
                self._templates[uri] = _Resource(
                    func, definition, _template_pattern(uri), _context_param(func)
                )
            else:
                definition["uri"] = uri
                self._resources[uri] = _Resource(func, definition, None, _context_param(func))
            return func

        return register

    def prompt(
        self, name: str | None = None, *, description: str | None = None
    ) -> Callable[[F], F]:
        """Register a function as a prompt: its string parameters are the prompt's arguments;
        it returns the text of one user message, or a list of ``{"role", "content"}``."""

        def register(func: F) -> F:
            context = _context_param(func)
            arguments = [
                {"name": param, "required": spec.default is inspect.Parameter.empty}
                for param, spec in inspect.signature(func).parameters.items()
                if param != context
            ]
            definition: dict[str, Any] = {
                "name": name or func.__name__,
                "description": description or _doc(func),
                "arguments": arguments,
            }
            self._prompts[definition["name"]] = _Prompt(func, definition, context)
            return func

        return register

    # --- the world's export ---------------------------------------------------------------

    def world(self) -> type:
        """The class componentize-py instantiates for the ``handle`` export."""
        app = self

        class WitWorld:
            def handle(self, message: str) -> str:
                return app.handle(message)

        return WitWorld

    def handle(self, message: str) -> str:
        """One JSON-RPC message in, its reply out ("" for a notification or a response)."""
        try:
            request = json.loads(message)
        except ValueError:
            return _error(None, PARSE_ERROR, "the message is not valid JSON")
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            if isinstance(request, dict) and "method" not in request:
                return ""  # a response to something we never send
            return _error(None, INVALID_REQUEST, "not a JSON-RPC request")
        if "id" not in request:
            return ""  # notifications: nothing to do, nothing to answer
        request_id = request["id"]
        params = request.get("params") or {}
        if not isinstance(params, dict):
            return _error(request_id, INVALID_PARAMS, "params must be an object")
        try:
            result = self._dispatch(request["method"], params)
        except RpcError as exc:
            return _error(request_id, exc.code, exc.message, exc.data)
        except MemoryError:
            # Out of memory is the box's to report (its memory limit, by name), and this
            # instance's heap is not to be trusted any more: let the call fail.
            raise
        except Exception as exc:
            host.log(traceback.format_exc(), "error")
            return _error(request_id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "initialize": self._initialize,
            "tools/list": lambda _: {"tools": [t.definition for t in self._tools.values()]},
            "tools/call": self._call_tool,
            "resources/list": lambda _: {
                "resources": [r.definition for r in self._resources.values()]
            },
            "resources/templates/list": lambda _: {
                "resourceTemplates": [r.definition for r in self._templates.values()]
            },
            "resources/read": self._read_resource,
            "resources/subscribe": self._subscribe,
            "resources/unsubscribe": self._subscribe,
            "prompts/list": lambda _: {"prompts": [p.definition for p in self._prompts.values()]},
            "prompts/get": self._get_prompt,
        }
        handler = handlers.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"method not found: {method}")
        return handler(params)

    def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        capabilities: dict[str, Any] = {}
        if self._tools:
            capabilities["tools"] = {}
        if self._resources or self._templates:
            capabilities["resources"] = {"subscribe": True}
        if self._prompts:
            capabilities["prompts"] = {}
        result: dict[str, Any] = {
            "protocolVersion": params.get("protocolVersion", LATEST_PROTOCOL_VERSION),
            "capabilities": capabilities,
            "serverInfo": {"name": self.name, "version": self.version},
        }
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    def _call_tool(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            raise RpcError(INVALID_PARAMS, f"unknown tool: {name!r}")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            return _tool_error("arguments must be an object")
        problem = _check_arguments(arguments, tool.schema)
        if problem is not None:
            return _tool_error(problem)
        kwargs = dict(arguments)
        if tool.context_param:
            kwargs[tool.context_param] = Context(_meta(params))
        try:
            value = tool.func(**kwargs)
        except Escalate:
            if Context(_meta(params)).may_escalate:
                return {"resultType": "task"}
            raise RpcError(
                INTERNAL_ERROR,
                f"tool {name!r} asked to run as a task, but this call cannot become one "
                "(check ctx.may_escalate first)",
            ) from None
        except ToolError as exc:
            return _tool_error(str(exc))
        except host.KvError as exc:
            return _tool_error(str(exc))
        return _tool_result(value)

    def _find_resource(self, uri: str) -> tuple[_Resource, dict[str, str]]:
        resource = self._resources.get(uri)
        if resource is not None:
            return resource, {}
        for template in self._templates.values():
            assert template.pattern is not None
            match = template.pattern.match(uri)
            if match:
                return template, match.groupdict()
        raise RpcError(INVALID_PARAMS, f"unknown resource: {uri}", {"uri": uri})

    def _read_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, "resources/read needs a uri")
        resource, kwargs = self._find_resource(uri)
        if resource.context_param:
            kwargs[resource.context_param] = Context(_meta(params))  # type: ignore[assignment]
        value = resource.func(**kwargs)
        content: dict[str, Any] = {"uri": uri, "mimeType": resource.definition["mimeType"]}
        if isinstance(value, bytes):
            content["blob"] = base64.b64encode(value).decode("ascii")
        else:
            content["text"] = value if isinstance(value, str) else json.dumps(value)
        return {"contents": [content]}

    def _subscribe(self, params: dict[str, Any]) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, "resources/subscribe needs a uri")
        self._find_resource(uri)
        return {}

    def _get_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        prompt = self._prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise RpcError(INVALID_PARAMS, f"unknown prompt: {name!r}")
        arguments = params.get("arguments") or {}
        kwargs: dict[str, Any] = {}
        for argument in prompt.definition["arguments"]:
            value = arguments.get(argument["name"])
            if value is None:
                if argument["required"]:
                    raise RpcError(
                        INVALID_PARAMS, f"prompt {name!r} needs argument {argument['name']!r}"
                    )
                continue
            kwargs[argument["name"]] = value
        if prompt.context_param:
            kwargs[prompt.context_param] = Context(_meta(params))
        value = prompt.func(**kwargs)
        messages = value if isinstance(value, list) else [{"role": "user", "content": value}]
        result: dict[str, Any] = {
            "messages": [
                {
                    "role": message.get("role", "user"),
                    "content": {"type": "text", "text": message["content"]}
                    if isinstance(message.get("content"), str)
                    else message["content"],
                }
                for message in messages
            ]
        }
        if prompt.definition["description"]:
            result["description"] = prompt.definition["description"]
        return result


def _meta(params: dict[str, Any]) -> dict[str, Any]:
    meta = params.get("_meta")
    return meta if isinstance(meta, dict) else {}


def _check_arguments(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in arguments:
            return f"missing argument {name!r}"
    for name, value in arguments.items():
        if name not in properties:
            return f"unknown argument {name!r}"
        if value is None:
            continue
        problem = check_value(value, properties[name])
        if problem is not None:
            return f"argument {name!r} {problem}"
    return None


def _tool_error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _tool_result(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and ("content" in value or "structuredContent" in value):
        return value  # already a CallToolResult
    if isinstance(value, str):
        return {"content": [{"type": "text", "text": value}]}
    text = json.dumps(value)
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    if isinstance(value, dict):
        result["structuredContent"] = value
    return result


def _error(request_id: Any, code: int, message: str, data: Any = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})
