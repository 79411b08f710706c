"""The Python tenant SDK (smcp_box_sdk) in plain CPython, with a fake host behind it: the MCP
dispatch, JSON Schema from type hints, argument checks, kv helpers and progress.

The same code runs inside components in tests/e2e/test_components.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal, TypedDict

import pytest

from smcp_box_sdk import (
    App,
    Context,
    Escalate,
    KvError,
    ToolError,
    kv,
    now_ms,
    random_bytes,
    sleep_ms,
    use_backend,
)
from smcp_box_sdk.schema import input_schema, schema_for


class Err(Exception):
    """What componentize-py raises for a WIT result's error case: the case in ``value``."""

    class _Case:
        def __init__(self, name: str) -> None:
            self.name = name

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.value = self._Case(case)


class FakeHost:
    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.notified: list[dict[str, Any]] = []
        self.logs: list[tuple[str, str]] = []
        self.slept: list[int] = []

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def config_get(self, key: str) -> str | None:
        return {"title": "Mine"}.get(key)

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)

    def kv_set(self, key: str, value: str) -> None:
        if key == "full":
            raise Err("QUOTA_EXCEEDED")
        self.kv[key] = value

    def kv_delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def kv_list(self, prefix: str) -> list[str]:
        return sorted(k for k in self.kv if k.startswith(prefix))

    def kv_cas(self, key: str, expected: str | None, value: str) -> bool:
        if self.kv.get(key) != expected:
            return False
        self.kv[key] = value
        return True

    def kv_incr(self, key: str, delta: int) -> int:
        if not self.kv.get(key, "0").lstrip("-").isdigit():
            raise Err("NOT_AN_INTEGER")
        self.kv[key] = str(int(self.kv.get(key, "0")) + delta)
        return int(self.kv[key])

    def notify(self, message: str) -> None:
        self.notified.append(json.loads(message))

    def time_now_ms(self) -> int:
        return 1_700_000_000_000

    def random_bytes(self, length: int) -> bytes:
        return bytes(length)

    def sleep_ms(self, ms: int) -> None:
        self.slept.append(ms)


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = FakeHost()
    use_backend(fake)
    yield fake
    use_backend(None)


class Item(TypedDict):
    id: int
    name: str


def make_app() -> App:
    app = App("demo", version="2.0.0", instructions="Try it.")

    @app.tool(title="Adder")
    def add(a: int, b: Annotated[int, "the second"] = 2) -> int:
        """Add numbers.

        More text that is not the description."""
        return a + b

    @app.tool()
    def item(name: str, tags: list[str] | None = None) -> Item:
        """Make an item."""
        return Item(id=kv.incr("ids"), name=name)

    @app.tool()
    def store(key: str, value: str) -> str:
        """Store a value."""
        kv.set(key, value)
        return "stored"

    @app.tool()
    def refuse(why: Literal["a", "b"]) -> str:
        """Always fails on its own terms."""
        raise ToolError(f"refused: {why}")

    @app.tool()
    def broken() -> str:
        """Has a bug."""
        return str(1 / 0)

    @app.tool()
    def steps(ctx: Context, n: int = 2) -> str:
        """Reports progress."""
        for i in range(n):
            ctx.progress(i + 1, n, f"step {i + 1}")
        ctx.log({"done": n}, level="notice")
        return "ok"

    @app.resource("demo://about", mime_type="text/markdown")
    def about() -> str:
        """About."""
        return "# demo"

    @app.resource("demo://item/{id}", mime_type="application/json")
    def item_resource(id: str) -> dict[str, str]:
        """One item."""
        return {"id": id}

    @app.resource("demo://logo", mime_type="image/png")
    def logo() -> bytes:
        """Bytes."""
        return b"\x89PNG"

    @app.prompt()
    def greet(name: str, tone: str = "warm") -> str:
        """A greeting."""
        return f"Greet {name} in a {tone} way."

    return app


def ask(app: App, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        message["params"] = params
    reply = json.loads(app.handle(json.dumps(message)))
    assert reply["id"] == 7
    return dict(reply)


def call(app: App, tool: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    reply = ask(app, "tools/call", {"name": tool, "arguments": arguments, **params})
    return dict(reply["result"])


def test_initialize_declares_what_the_app_registered(host: FakeHost) -> None:
    result = ask(make_app(), "initialize", {"protocolVersion": "2025-06-18"})["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["serverInfo"] == {"name": "demo", "version": "2.0.0"}
    assert result["instructions"] == "Try it."
    assert set(result["capabilities"]) == {"tools", "resources", "prompts"}
    empty = ask(App("empty"), "initialize", {})["result"]
    assert empty["capabilities"] == {}


def test_tool_definitions_come_from_signatures_and_docstrings(host: FakeHost) -> None:
    tools = {t["name"]: t for t in ask(make_app(), "tools/list")["result"]["tools"]}
    add = tools["add"]
    assert add["title"] == "Adder"
    assert add["description"] == "Add numbers."
    assert add["inputSchema"] == {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "integer", "description": "the second", "default": 2},
        },
        "required": ["a"],
    }
    assert "outputSchema" not in add
    assert tools["item"]["outputSchema"] == {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        "required": ["id", "name"],
    }
    assert tools["item"]["inputSchema"]["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    # The call context is not an argument.
    assert set(tools["steps"]["inputSchema"]["properties"]) == {"n"}
    assert tools["refuse"]["inputSchema"]["properties"]["why"] == {"enum": ["a", "b"]}


def test_schema_of_other_hints() -> None:
    assert schema_for(float) == {"type": "number"}
    assert schema_for(dict[str, int]) == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    assert schema_for(int | str) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert schema_for(object) == {}

    def optional(x: int | None) -> None: ...

    assert input_schema(optional, lambda hint: False).get("required") is None


def test_tool_calls_and_their_errors(host: FakeHost) -> None:
    app = make_app()
    assert call(app, "add", {"a": 1}) == {"content": [{"type": "text", "text": "3"}]}
    made = call(app, "item", {"name": "x"})
    assert made["structuredContent"] == {"id": 1, "name": "x"}
    assert json.loads(made["content"][0]["text"]) == {"id": 1, "name": "x"}
    for arguments, problem in [
        ({}, "missing argument 'a'"),
        ({"a": 1, "c": 2}, "unknown argument 'c'"),
        ({"a": "1"}, "argument 'a' must be of type integer"),
        ({"a": True}, "argument 'a' must be of type integer"),
    ]:
        result = call(app, "add", arguments)
        assert result["isError"] is True
        assert result["content"][0]["text"] == problem
    refused = call(app, "refuse", {"why": "a"})
    assert refused == {"content": [{"type": "text", "text": "refused: a"}], "isError": True}
    assert call(app, "refuse", {"why": "c"})["isError"] is True
    full = call(app, "store", {"key": "full", "value": "x"})
    assert full["content"][0]["text"] == "kv write failed: quota-exceeded"
    unknown = ask(app, "tools/call", {"name": "nope", "arguments": {}})
    assert unknown["error"]["code"] == -32602
    bug = ask(app, "tools/call", {"name": "broken", "arguments": {}})
    assert bug["error"] == {"code": -32603, "message": "ZeroDivisionError: division by zero"}
    assert host.logs[-1][0] == "error"
    assert "ZeroDivisionError" in host.logs[-1][1]


def test_memory_errors_reach_the_box(host: FakeHost) -> None:
    app = App("hungry")

    @app.tool()
    def hog() -> str:
        """Runs out of memory."""
        raise MemoryError

    with pytest.raises(MemoryError):
        ask(app, "tools/call", {"name": "hog", "arguments": {}})


def test_progress_and_log_notifications(host: FakeHost) -> None:
    app = make_app()
    meta = {"_meta": {"progressToken": "t1"}}
    assert call(app, "steps", {"n": 2}, **meta)["content"][0]["text"] == "ok"
    assert host.notified == [
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": "t1", "progress": 1, "total": 2, "message": "step 1"},
        },
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": "t1", "progress": 2, "total": 2, "message": "step 2"},
        },
        {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "notice", "data": {"done": 2}},
        },
    ]
    host.notified.clear()
    call(app, "steps", {"n": 1})  # no token: no progress, still the log
    assert [n["method"] for n in host.notified] == ["notifications/message"]


def test_resources_templates_and_reads(host: FakeHost) -> None:
    app = make_app()
    listed = ask(app, "resources/list")["result"]["resources"]
    assert [r["uri"] for r in listed] == ["demo://about", "demo://logo"]
    templates = ask(app, "resources/templates/list")["result"]["resourceTemplates"]
    assert [t["uriTemplate"] for t in templates] == ["demo://item/{id}"]
    about = ask(app, "resources/read", {"uri": "demo://about"})["result"]
    assert about == {
        "contents": [{"uri": "demo://about", "mimeType": "text/markdown", "text": "# demo"}]
    }
    item = ask(app, "resources/read", {"uri": "demo://item/42"})["result"]["contents"][0]
    assert json.loads(item["text"]) == {"id": "42"}
    assert ask(app, "resources/read", {"uri": "demo://logo"})["result"]["contents"][0]["blob"] == (
        "iVBORw=="
    )
    missing = ask(app, "resources/read", {"uri": "demo://nope"})["error"]
    assert missing["code"] == -32602
    assert missing["data"] == {"uri": "demo://nope"}
    assert ask(app, "resources/subscribe", {"uri": "demo://item/1"})["result"] == {}


def test_prompts(host: FakeHost) -> None:
    app = make_app()
    (prompt,) = ask(app, "prompts/list")["result"]["prompts"]
    assert prompt["arguments"] == [
        {"name": "name", "required": True},
        {"name": "tone", "required": False},
    ]
    got = ask(app, "prompts/get", {"name": "greet", "arguments": {"name": "Ada"}})["result"]
    assert got["messages"] == [
        {"role": "user", "content": {"type": "text", "text": "Greet Ada in a warm way."}}
    ]
    assert ask(app, "prompts/get", {"name": "greet", "arguments": {}})["error"]["code"] == -32602
    assert ask(app, "prompts/get", {"name": "nope"})["error"]["code"] == -32602


def test_notifications_bad_json_and_unknown_methods(host: FakeHost) -> None:
    app = make_app()
    assert app.handle('{"jsonrpc":"2.0","method":"notifications/initialized"}') == ""
    assert app.handle('{"jsonrpc":"2.0","id":1,"result":{}}') == ""
    assert json.loads(app.handle("{nope"))["error"]["code"] == -32700
    assert ask(app, "completion/complete", {})["error"]["code"] == -32601


def test_kv_helpers_map_the_world_errors(host: FakeHost) -> None:
    kv.set_json("doc", {"a": 1})
    assert kv.get_json("doc") == {"a": 1}
    assert kv.get("absent", "fallback") == "fallback"
    assert kv.cas("doc", None, "x") is False
    assert kv.cas("new", None, "x") is True
    assert kv.incr("n", 5) == 5
    kv.set("word", "abc")
    with pytest.raises(KvError) as caught:
        kv.incr("word")
    assert caught.value.reason == "not-an-integer"
    assert kv.keys("n") == ["n", "new"]
    kv.delete("n")
    assert "n" not in host.kv
    assert now_ms() == 1_700_000_000_000
    assert random_bytes(4) == b"\0\0\0\0"
    sleep_ms(250)
    assert host.slept == [250]


def test_task_support_is_declared_and_escalation_follows_the_box(host: FakeHost) -> None:
    app = App("tasks")

    @app.tool(task_support="optional")
    def build(target: str, ctx: Context) -> str:
        """Build a target."""
        if ctx.task_id is None and ctx.may_escalate:
            raise Escalate
        return f"built {target} in {ctx.task_id}"

    listed = ask(app, "tools/list", {})["result"]["tools"]
    assert listed[0]["execution"] == {"taskSupport": "optional"}
    # Without the box's permission the call runs synchronously.
    assert call(app, "build", {"target": "a"})["content"][0]["text"] == "built a in None"
    # Allowed: the tool asks to become a task.
    allowed = {"smcp-box/task": {"escalate": "allowed"}}
    assert call(app, "build", {"target": "a"}, _meta=allowed) == {"resultType": "task"}
    # The box's background call carries the task id.
    running = {"smcp-box/task": {"taskId": "t1"}}
    assert call(app, "build", {"target": "a"}, _meta=running)["content"][0]["text"] == (
        "built a in t1"
    )


def test_escalating_without_permission_is_a_protocol_error(host: FakeHost) -> None:
    app = App("tasks")

    @app.tool(task_support="required")
    def always() -> str:
        """Always escalates."""
        raise Escalate

    reply = ask(app, "tools/call", {"name": "always", "arguments": {}})
    assert reply["error"]["code"] == -32603
    assert "ctx.may_escalate" in reply["error"]["message"]
    with pytest.raises(ValueError, match="task_support"):
        app.tool(task_support="sometimes")
