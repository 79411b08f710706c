"""InputRequiredResult rounds for handshake-era clients: the box asks the client on the module's
behalf (sampling, elicitation, roots) and calls the module again with the answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    TextContent,
)

from smcp_box.web.mcp import TransportSettings
from tests.web.conftest import ALPHA_TOKEN, BoxUnderTest, run_box, sdk_http_client
from tests.web.fakes_interactive import CAPS_META, InteractiveRuntime
from tests.web.rawhttp import (
    Event,
    base_headers,
    modern,
    note,
    rpc,
    session_headers,
    sse_events,
)

SAMPLED = {
    "role": "assistant",
    "content": {"type": "text", "text": "hi there"},
    "model": "test-model",
    "stopReason": "endTurn",
}
ELICITED = {"action": "accept", "content": {"name": "Ada"}}
BOTH = {"sampling": {}, "elicitation": {}}


@pytest.fixture
async def ibox() -> AsyncIterator[BoxUnderTest]:
    settings = TransportSettings(
        sse_keepalive_s=0.5, server_request_timeout_s=1.0, max_input_rounds=3
    )
    async for running in run_box(settings, alpha=InteractiveRuntime()):
        yield running


async def open_session(
    http: httpx.AsyncClient, box: BoxUnderTest, capabilities: dict[str, Any]
) -> str:
    response = await http.post(
        box.url(),
        headers=base_headers(),
        json=rpc(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities,
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        ),
    )
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def tool_call(name: str, request_id: Any = 1) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": {}}, request_id)


Answer = Callable[[dict[str, Any]], dict[str, Any] | None]


async def run_with_client(
    http: httpx.AsyncClient,
    box: BoxUnderTest,
    session: str,
    body: dict[str, Any],
    answer: Answer,
) -> list[Event]:
    """POST ``body`` and play the client: answer each request the box sends on the stream
    with ``answer(request)`` (None: leave it unanswered). Returns every event."""
    events: list[Event] = []
    async with http.stream(
        "POST", box.url(), headers=session_headers(session), json=body
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        async for event in sse_events(response):
            events.append(event)
            message = event.json() if event.data else {}
            if "method" in message and "id" in message:
                reply = answer(message)
                if reply is not None:
                    posted = await http.post(
                        box.url(), headers=session_headers(session), json=reply
                    )
                    assert posted.status_code == 202
    return events


def answer_all(request: dict[str, Any]) -> dict[str, Any]:
    result = {
        "sampling/createMessage": SAMPLED,
        "elicitation/create": ELICITED,
        "roots/list": {"roots": []},
    }[request["method"]]
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


def messages(events: list[Event]) -> list[dict[str, Any]]:
    return [event.json() for event in events if event.data]


async def test_the_box_asks_the_client_and_calls_the_module_again(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await open_session(http, ibox, BOTH)
    events = await run_with_client(http, ibox, session, tool_call("ask", 5), answer_all)
    priming, *rest = events
    assert priming.data == ""
    assert priming.id
    sent = messages(rest)
    requests, reply = sent[:-1], sent[-1]
    assert sorted(r["method"] for r in requests) == ["elicitation/create", "sampling/createMessage"]
    # Ids unique in the session, never the client's own request id.
    assert len({r["id"] for r in requests}) == 2
    assert all(isinstance(r["id"], str) and r["id"].startswith("smcp-r") for r in requests)
    assert requests[0]["params"]["maxTokens"] == 10
    assert reply["id"] == 5
    assert reply["result"] == {
        "content": [
            {
                "type": "text",
                "text": "Ada heard 'hi there' (state one, caps ['elicitation', 'sampling'])",
            }
        ],
        "isError": False,
    }
    calls = [message for message, _ in ibox.alpha.calls]
    assert len(calls) == 2
    first, second = (c["params"] for c in calls)
    # The session's capabilities reach the module in _meta, in every round.
    assert first["_meta"][CAPS_META] == BOTH
    assert second["inputResponses"] == {"llm": SAMPLED, "who": ELICITED}
    assert second["requestState"] == "one"
    assert second["name"] == "ask"
    assert calls[1]["id"] == 5
    # Every frame went through the store first, so a resumed stream replays the requests too.
    stored = [e.payload for e in ibox.stored(session)]
    assert stored == [e.data for e in events]


async def test_a_missing_capability_fails_the_call_without_asking(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await open_session(http, ibox, {"sampling": {}})
    response = await http.post(ibox.url(), headers=session_headers(session), json=tool_call("ask"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == -32603
    assert "elicitation" in error["message"]
    assert len(ibox.alpha.calls) == 1


async def test_a_refusal_fails_the_call_and_withdraws_the_rest(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await open_session(http, ibox, BOTH)

    def refuse_sampling(request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "sampling/createMessage":
            error = {"code": -1, "message": "User rejected sampling request"}
            return {"jsonrpc": "2.0", "id": request["id"], "error": error}
        return None  # the elicitation stays unanswered

    events = await run_with_client(http, ibox, session, tool_call("ask"), refuse_sampling)
    sent = messages(events)
    elicitation = next(m for m in sent if m.get("method") == "elicitation/create")
    cancelled = [m for m in sent if m.get("method") == "notifications/cancelled"]
    assert [c["params"]["requestId"] for c in cancelled] == [elicitation["id"]]
    assert sent[-1]["error"]["code"] == -32603
    assert "refused sampling/createMessage: User rejected" in sent[-1]["error"]["message"]
    assert len(ibox.alpha.calls) == 1


async def test_unanswered_requests_time_out(ibox: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await open_session(http, ibox, BOTH)
    events = await run_with_client(http, ibox, session, tool_call("ask"), lambda _: None)
    sent = messages(events)
    asked = {
        m["id"] for m in sent if m.get("method") in ("sampling/createMessage", "elicitation/create")
    }
    cancelled = [m for m in sent if m.get("method") == "notifications/cancelled"]
    assert {c["params"]["requestId"] for c in cancelled} == asked
    assert all(c["params"]["reason"] == "timed out" for c in cancelled)
    assert sent[-1]["error"]["code"] == -32603
    assert "within 1 s" in sent[-1]["error"]["message"]
    # A late answer is dropped quietly.
    late = {"jsonrpc": "2.0", "id": sorted(asked)[0], "result": SAMPLED}
    response = await http.post(ibox.url(), headers=session_headers(session), json=late)
    assert response.status_code == 202


async def test_cancelling_the_request_withdraws_its_input_requests(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await open_session(http, ibox, BOTH)
    cancel = note("notifications/cancelled", {"requestId": 9, "reason": "user left"})
    seen: list[dict[str, Any]] = []

    def cancel_instead(request: dict[str, Any]) -> None:
        seen.append(request)
        if len(seen) == 2:
            asyncio.get_running_loop().create_task(
                http.post(ibox.url(), headers=session_headers(session), json=cancel)
            )

    events = await asyncio.wait_for(
        run_with_client(http, ibox, session, tool_call("ask", 9), cancel_instead), 5
    )
    sent = messages(events)
    withdrawn = [m for m in sent if m.get("method") == "notifications/cancelled"]
    assert {w["params"]["requestId"] for w in withdrawn} == {r["id"] for r in seen}
    assert not any("result" in m or "error" in m for m in sent)  # nothing for request 9


async def test_rounds_are_bounded(ibox: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await open_session(http, ibox, {"roots": {}})
    events = await run_with_client(http, ibox, session, tool_call("ask_forever"), answer_all)
    sent = messages(events)
    assert [m["method"] for m in sent[:-1]] == ["roots/list"] * 3
    assert sent[-1]["error"]["code"] == -32603
    assert "after 3 rounds" in sent[-1]["error"]["message"]
    assert len(ibox.alpha.calls) == 4


async def test_only_tools_prompts_and_reads_may_ask(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    # prompts/list answered with an InputRequiredResult is a module fault, in both eras.
    session = await open_session(http, ibox, {"roots": {}})
    legacy = await http.post(
        ibox.url(), headers=session_headers(session), json=rpc("prompts/list", {})
    )
    assert legacy.json()["error"]["code"] == -32054
    headers, body = modern("prompts/list", {})
    response = await http.post(ibox.url(), headers=headers, json=body)
    assert response.json()["error"]["code"] == -32054


async def test_modern_clients_get_the_input_required_result_itself(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = modern("tools/call", {"name": "ask", "arguments": {}}, name="ask")
    response = await http.post(ibox.url(), headers=headers, json=body)
    result = response.json()["result"]
    assert result["resultType"] == "input_required"
    assert set(result["inputRequests"]) == {"llm", "who"}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_sdk_client_answers_in_both_eras(ibox: BoxUnderTest, mode: str) -> None:
    asked: list[str] = []

    async def sampling(_: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        asked.append("sampling")
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="hi there"), model="m"
        )

    async def elicitation(_: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append("elicitation")
        return ElicitResult(action="accept", content={"name": "Ada"})

    async with sdk_http_client(ALPHA_TOKEN) as client_http:
        transport = streamable_http_client(ibox.url(), http_client=client_http)
        async with Client(
            transport, mode=mode, sampling_callback=sampling, elicitation_callback=elicitation
        ) as client:
            result = await client.call_tool("ask", {})
    assert sorted(asked) == ["elicitation", "sampling"]
    assert result.content[0].text.startswith("Ada heard 'hi there'")  # type: ignore[union-attr]
