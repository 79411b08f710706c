"""The 2026-07-28 era over raw HTTP: discover, result shaping, streams, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.web.conftest import BoxUnderTest
from tests.web.rawhttp import META_LOG, modern, modern_meta, read_all_events

SERVER_INFO = {"name": "alpha-echo", "version": "1.2.3"}


async def post(
    http: httpx.AsyncClient, box: BoxUnderTest, request: tuple[dict[str, str], dict[str, Any]]
) -> httpx.Response:
    headers, body = request
    return await http.post(box.url(), headers=headers, json=body)


async def test_discover(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    response = await post(http, box, modern("server/discover", request_id="d"))
    assert response.status_code == 200
    assert "mcp-session-id" not in response.headers
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": "d",
        "result": {
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {"listChanged": False}, "logging": {}},
            "instructions": "Tenant alpha: an echo server for tests.",
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {"io.modelcontextprotocol/serverInfo": SERVER_INFO},
        },
    }
    assert box.alpha.calls == []  # the box answers discover itself


async def test_methods_removed_in_2026_are_404(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    for method in ("ping", "initialize", "logging/setLevel", "resources/subscribe"):
        response = await post(http, box, modern(method))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == -32601
    assert box.alpha.calls == []


async def test_results_are_shaped_for_the_modern_wire(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    listed = (await post(http, box, modern("tools/list"))).json()["result"]
    assert listed["resultType"] == "complete"
    assert listed["ttlMs"] == 0
    assert listed["cacheScope"] == "private"
    assert listed["_meta"]["io.modelcontextprotocol/serverInfo"] == SERVER_INFO
    called = await post(
        http, box, modern("tools/call", {"name": "echo", "arguments": {"text": "x"}}, name="echo")
    )
    result = called.json()["result"]
    assert result["resultType"] == "complete"
    assert "ttlMs" not in result
    message, ctx = box.alpha.calls[-1]
    assert ctx.protocol_version == "2026-07-28"
    assert ctx.session_id is None
    assert ctx.request_id == 1
    assert message["params"]["_meta"] == modern_meta()  # passed through to the module as sent


async def test_stream_has_no_ids_and_ends_with_the_reply(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = modern(
        "tools/call",
        {"name": "progress", "arguments": {"steps": 2}},
        request_id=3,
        name="progress",
        meta=modern_meta(progressToken="t"),
    )
    headers["Mcp-Session-Id"] = "leftover-from-a-legacy-client"
    async with http.stream("POST", box.url(), headers=headers, json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-accel-buffering"] == "no"
        assert "mcp-session-id" not in response.headers
        events = await read_all_events(response)
    assert [e.id for e in events] == [None, None, None]
    assert all(e.event == "message" for e in events)
    payloads = [e.json() for e in events]
    assert [p.get("method") for p in payloads] == ["notifications/progress"] * 2 + [None]
    assert payloads[-1]["id"] == 3
    assert payloads[-1]["result"]["resultType"] == "complete"


async def test_log_notifications_need_an_opt_in(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    quiet = await post(http, box, modern("tools/call", {"name": "log"}, name="log"))
    assert quiet.headers["content-type"] == "application/json"  # nothing was allowed through
    headers, body = modern(
        "tools/call", {"name": "log"}, name="log", meta=modern_meta(**{META_LOG: "warning"})
    )
    async with http.stream("POST", box.url(), headers=headers, json=body) as response:
        events = await read_all_events(response)
    levels = [e.json()["params"]["level"] for e in events[:-1]]
    assert levels == ["warning", "error"]


async def test_module_and_sandbox_errors(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    fuel = await post(http, box, modern("tools/call", {"name": "fuel"}, name="fuel"))
    assert fuel.status_code == 200
    assert fuel.json()["error"]["code"] == -32051
    unknown = await post(http, box, modern("tools/call", {"name": "nope"}, name="nope"))
    assert unknown.status_code == 400  # -32602 maps to 400 in this era, whoever produced it
    assert unknown.json()["error"]["code"] == -32602
    crash = await post(http, box, modern("tools/call", {"name": "crash"}, name="crash"))
    assert crash.status_code == 200
    # A bug: -32603 naming the request id the log line carries, and none of the bug's text.
    request_id = crash.headers["x-request-id"]
    assert crash.json()["error"] == {
        "code": -32603,
        "message": "Internal error: the box failed; the server log has the details "
        f"(request id {request_id})",
        "data": {"requestId": request_id},
    }
    wrong = await post(http, box, modern("tools/call", {"name": "wrong_id"}, name="wrong_id"))
    assert wrong.status_code == 200
    assert wrong.json() == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32054, "message": "The tenant module answered a different request id"},
    }


async def test_closing_the_response_cancels_the_call(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = modern("tools/call", {"name": "hold", "arguments": {}}, 9, name="hold")
    task = asyncio.create_task(http.post(box.url(), headers=headers, json=body))
    await asyncio.wait_for(box.alpha.started_event(9).wait(), 10)
    task.cancel()
    await box.alpha.changes.until(lambda: bool(box.alpha.cancelled))
    await box.observer.changes.until(lambda: bool(box.observer.observations))
    assert box.alpha.cancelled == [9]
    assert box.observer.observations[-1][1:] == (
        "tools/call",
        box.observer.observations[-1][2],
        "cancelled",
    )


async def test_beta_is_isolated_from_alpha(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    from tests.web.conftest import BETA_TOKEN

    headers, body = modern("tools/call", {"name": "echo", "arguments": {"text": "b"}}, name="echo")
    headers["Authorization"] = f"Bearer {BETA_TOKEN}"
    response = await http.post(box.url("beta"), headers=headers, json=body)
    assert response.json()["result"]["content"][0]["text"] == "b"
    assert box.beta.calls
    assert not box.alpha.calls
