"""JSON-RPC envelope and MCP lifecycle behaviour that every SDK-built tenant shares."""

from __future__ import annotations

import json

import pytest

from .harness import TENANTS, Host, Tenant

MODULES = ["notes", "utils"]


@pytest.fixture(params=MODULES)
def tenant(request: pytest.FixtureRequest) -> Tenant:
    name = request.param
    return Tenant(TENANTS / name / f"{name}.wasm", Host(config={"greeting": "Hi"}))


def test_initialize_describes_the_server(tenant: Tenant) -> None:
    result = tenant.result(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t"}},
    )
    assert result["protocolVersion"] == "2025-06-18"
    assert result["serverInfo"]["name"] in MODULES
    assert result["serverInfo"]["version"] == "1.0.0"
    assert "tools" in result["capabilities"]
    assert isinstance(result["instructions"], str)


def test_initialize_without_params_still_answers(tenant: Tenant) -> None:
    result = tenant.result("initialize")
    assert isinstance(result["protocolVersion"], str)


def test_unknown_method_is_method_not_found(tenant: Tenant) -> None:
    error = tenant.error("tools/frobnicate")
    assert error["code"] == -32601
    assert "tools/frobnicate" in error["message"]


def test_ping_answers_empty_result(tenant: Tenant) -> None:
    assert tenant.result("ping") == {}


@pytest.mark.parametrize(
    "method", ["notifications/initialized", "notifications/cancelled", "anything/else"]
)
def test_notifications_get_no_reply(tenant: Tenant, method: str) -> None:
    message = {"jsonrpc": "2.0", "method": method, "params": {"requestId": 3}}
    assert tenant.call_raw(json.dumps(message).encode()) == b""


def test_responses_from_the_client_get_no_reply(tenant: Tenant) -> None:
    message = {"jsonrpc": "2.0", "id": 5, "result": {}}
    assert tenant.call_raw(json.dumps(message).encode()) == b""


@pytest.mark.parametrize(
    "raw_id",
    [
        "0",
        "-1",
        "42",
        "9007199254740993",
        "123456789012345678901234567890",
        "1.5",
        "1e3",
        '"abc"',
        '""',
        '"with \\"quotes\\" and \\\\ and \\u00e9 and \\ud83d\\ude00"',
        '"é😀 raw utf-8"',
    ],
)
def test_ids_are_echoed_byte_for_byte(tenant: Tenant, raw_id: str) -> None:
    raw = b'{"jsonrpc":"2.0","id":' + raw_id.encode() + b',"method":"ping"}'
    reply = tenant.call_raw(raw)
    assert reply.startswith(b'{"jsonrpc":"2.0","id":' + raw_id.encode() + b",")
    assert json.loads(reply)["result"] == {}


def test_string_and_numeric_ids_round_trip_through_errors(tenant: Tenant) -> None:
    for message_id in [7, "seven", -3, "", 2**53]:
        reply = tenant.request("no/such/method", id=message_id)
        assert reply["id"] == message_id
        assert reply["error"]["code"] == -32601


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"nul",
        b'{"jsonrpc":"2.0","id":1,"method":"ping",}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping"} trailing',
        b'{"jsonrpc":"2.0","id":01,"method":"ping"}',
        b"{'jsonrpc':'2.0'}",
        b'{"jsonrpc":"2.0","id":1,"method":"p\x01ng"}',
        b'{"jsonrpc":"2.0","id":1,"method":"\xff"}',
        b'{"jsonrpc":"2.0","id":1,"method":"\xc0\xaf"}',
        b'{"jsonrpc":"2.0","id":1,"method":"\xed\xa0\x80"}',
        b'{"jsonrpc":"2.0","id":1,"method":"\\ud800"}',
        b'{"jsonrpc":"2.0","id":1,"method":"\\udc00\\ud800"}',
        b'{"jsonrpc":"2.0","id":1,"method":"\\x"}',
        b"[" * 200 + b"]" * 200,
    ],
)
def test_invalid_json_is_a_parse_error_with_null_id(tenant: Tenant, raw: bytes) -> None:
    reply = json.loads(tenant.call_raw(raw))
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700
    assert reply["error"]["message"].startswith("Parse error")


@pytest.mark.parametrize(
    ("message", "has_id"),
    [
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], False),
        ("just a string", False),
        ({"id": 1, "method": "ping"}, True),
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, True),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, True),
        ({"jsonrpc": "2.0", "id": 1}, True),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, False),
        ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}, False),
    ],
)
def test_invalid_requests(tenant: Tenant, message: object, has_id: bool) -> None:
    reply = json.loads(tenant.call_raw(json.dumps(message).encode()))
    assert reply["error"]["code"] == -32600
    assert reply["id"] == (1 if has_id else None)


@pytest.mark.parametrize("params", [[1, 2], "x", 3, True])
def test_params_must_be_an_object(tenant: Tenant, params: object) -> None:
    reply = tenant.send({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": params})
    assert reply is not None
    assert reply["error"]["code"] == -32602


def test_tools_call_protocol_errors(tenant: Tenant) -> None:
    assert tenant.error("tools/call", {})["code"] == -32602
    assert tenant.error("tools/call", {"name": 5})["code"] == -32602
    unknown = tenant.error("tools/call", {"name": "nope"})
    assert unknown["code"] == -32602
    assert "nope" in unknown["message"]
    name = tenant.result("tools/list")["tools"][0]["name"]
    bad_args = tenant.error("tools/call", {"name": name, "arguments": [1]})
    assert bad_args["code"] == -32602


def test_tools_list_entries_are_complete(tenant: Tenant) -> None:
    tools = tenant.result("tools/list", {"cursor": "ignored"})["tools"]
    assert len({t["name"] for t in tools}) == len(tools)
    for tool in tools:
        assert tool["description"]
        assert tool["inputSchema"]["type"] == "object"
        if "outputSchema" in tool:
            assert tool["outputSchema"]["type"] == "object"


def test_meta_is_accepted_everywhere(tenant: Tenant) -> None:
    meta = {
        "progressToken": "t",
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
    }
    assert tenant.result("tools/list", {"_meta": meta})["tools"]
    assert tenant.result("ping", {"_meta": meta}) == {}


def test_many_requests_on_one_instance_do_not_grow_memory(tenant: Tenant) -> None:
    """The arena is reset per message: memory reaches a high-water mark and stays there."""
    blob = "x" * 20_000

    def round_of_requests() -> None:
        tenant.result("tools/list")
        tenant.request("nope")
        tenant.call_raw(b"{bad json")
        tenant.result("initialize")
        tenant.call_raw(json.dumps({"jsonrpc": "2.0", "id": 9, "method": blob}).encode())

    for _ in range(5):
        round_of_requests()
    pages = tenant.memory_pages()
    for _ in range(300):
        round_of_requests()
    assert tenant.memory_pages() == pages
    assert pages <= 40  # 2.5 MiB: stack, data and one arena chunk


def test_a_large_message_is_handled(tenant: Tenant) -> None:
    big = "é" * 300_000
    reply = tenant.request(big)
    assert reply["error"]["code"] == -32601
    assert big in reply["error"]["message"]
