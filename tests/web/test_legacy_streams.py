"""Legacy-era streams over raw HTTP: JSON vs SSE, priming, event ids, resume, GET, DELETE."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from smcp_box.errors import SessionNotFound
from tests.web.conftest import BoxUnderTest
from tests.web.rawhttp import (
    Event,
    initialize,
    note,
    read_all_events,
    rpc,
    session_headers,
    sse_events,
)


def call(
    name: str, arguments: dict[str, Any] | None = None, request_id: Any = 1, token: Any = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return rpc("tools/call", params, request_id)


def messages(events: list[Event]) -> list[dict[str, Any]]:
    return [e.json() for e in events if e.data]


async def test_reply_without_notifications_is_plain_json(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    response = await http.post(
        box.url(), headers=session_headers(session), json=call("echo", {"text": "hi"})
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["mcp-session-id"] == session
    assert response.json()["result"]["content"][0]["text"] == "hi"
    # Nothing went through a stream, so nothing was persisted.
    assert box.stored(session) == []


async def test_notifications_make_an_sse_stream_with_priming(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    async with http.stream(
        "POST",
        box.url(),
        headers=session_headers(session),
        json=call("progress", {"steps": 3}, 7, token="tok"),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["mcp-session-id"] == session
        events = await read_all_events(response)
    priming, *rest = events
    assert priming.id
    assert priming.data == ""
    assert [m.get("method") for m in messages(rest)] == ["notifications/progress"] * 3 + [None]
    assert messages(rest)[-1]["id"] == 7
    ids = [e.id for e in events]
    assert None not in ids
    assert len(set(ids)) == len(ids)
    stored = box.stored(session)
    assert [e.event_id for e in stored] == ids
    assert [e.payload for e in stored][1:] == [e.data for e in rest]
    # And the real store has them: a resume from the priming event replays the rest.
    replayed = await box.sessions.store.replay_events("alpha", session, stored[0].event_id)
    assert replayed is not None
    assert replayed[1] == [(e.event_id, e.payload) for e in stored[1:]]


async def test_old_clients_get_no_priming_event(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, box, version="2025-03-26")
    async with http.stream(
        "POST",
        box.url(),
        headers=session_headers(session, "2025-03-26"),
        json=call("progress", {"steps": 2}, token=1),
    ) as response:
        events = await read_all_events(response)
    assert all(e.data for e in events)
    assert all(e.id for e in events)
    assert len(events) == 3


async def test_quiet_call_commits_to_sse_with_keepalives(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    raw_lines: list[str] = []
    async with http.stream(
        "POST", box.url(), headers=session_headers(session), json=call("hold", request_id="q")
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        async for line in response.aiter_lines():
            raw_lines.append(line)
            if line.startswith(":"):  # a keep-alive comment: now let the call finish
                box.alpha.release("q")
    assert any(line.startswith(":") for line in raw_lines)
    data = [json.loads(line[6:]) for line in raw_lines if line.startswith("data: {")]
    assert data[-1]["result"]["content"][0]["text"] == "released"


async def test_resume_a_dropped_stream_with_last_event_id(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    seen: list[Event] = []
    async with http.stream(
        "POST",
        box.url(),
        headers=session_headers(session),
        json=call("progress", {"steps": 5, "hold_after": 1}, "req-1", token="p"),
    ) as response:
        async for event in sse_events(response):
            seen.append(event)
            if len(seen) == 2:  # the priming event and the first progress notification
                break
    # The connection is gone; the call is not (a legacy disconnect is no cancellation): it is
    # still held after its first step, and carries on once released.
    await box.observer.changes.until(lambda: box.observer.open_streams == 0)
    assert box.alpha.cancelled == []
    box.alpha.release("req-1")
    last_id = seen[-1].id
    assert last_id is not None
    async with http.stream(
        "GET", box.url(), headers=session_headers(session, **{"Last-Event-ID": last_id})
    ) as resumed:
        assert resumed.status_code == 200
        assert resumed.headers["content-type"] == "text/event-stream"
        rest = await read_all_events(resumed)
    everything = messages(seen) + messages(rest)
    steps = [
        m["params"]["progress"] for m in everything if m.get("method") == "notifications/progress"
    ]
    assert steps == [1, 2, 3, 4, 5]
    assert everything[-1]["id"] == "req-1"
    assert everything[-1]["result"]["content"][0]["text"] == "5 steps"
    ids = [e.id for e in seen + rest]
    assert len(set(ids)) == len(ids)


async def test_resume_after_the_call_finished_replays_from_the_store(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    async with http.stream(
        "POST",
        box.url(),
        headers=session_headers(session),
        json=call("progress", {"steps": 3, "hold_after": 1}, "req-2", token=1),
    ) as response:
        first = None
        async for event in sse_events(response):
            first = event
            break
    assert first is not None
    assert first.id is not None
    box.alpha.release("req-2")
    await box.sessions.changes.until(lambda: len(box.stored(session)) == 5)
    resumed = await http.get(
        box.url(), headers=session_headers(session, **{"Last-Event-ID": first.id})
    )
    events = [e async for e in sse_events(resumed)]
    kinds = [m.get("method", "reply") for m in messages(events)]
    assert kinds == ["notifications/progress"] * 3 + ["reply"]


async def test_unknown_last_event_id(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, box)
    response = await http.get(
        box.url(), headers=session_headers(session, **{"Last-Event-ID": "nope"})
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


async def test_standalone_get_stream(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, box)
    async with http.stream("GET", box.url(), headers=session_headers(session)) as stream:
        assert stream.status_code == 200
        events = sse_events(stream)
        priming = await anext(events)
        assert priming.id
        assert priming.data == ""
        # Only one GET stream per session.
        second = await http.get(box.url(), headers=session_headers(session))
        assert second.status_code == 409
        # A client notification the module handles; what it emits is unrelated to any request.
        ack = await http.post(
            box.url(),
            headers=session_headers(session),
            json=note("notifications/roots/list_changed"),
        )
        assert ack.status_code == 202
        pushed = await asyncio.wait_for(anext(events), 5)
        assert pushed.json()["params"]["data"] == "saw notifications/roots/list_changed"
        standalone_id = pushed.id
    await box.observer.changes.until(lambda: box.observer.open_streams == 0)
    # The slot is free again once the stream is gone; a resume replays what it missed.
    await http.post(
        box.url(), headers=session_headers(session), json=note("notifications/roots/list_changed")
    )
    await box.alpha.changes.until(lambda: len(box.alpha.notifications) == 2)
    assert standalone_id is not None
    async with http.stream(
        "GET", box.url(), headers=session_headers(session, **{"Last-Event-ID": standalone_id})
    ) as resumed:
        event = await asyncio.wait_for(anext(sse_events(resumed)), 5)
        assert event.json()["params"]["data"] == "saw notifications/roots/list_changed"
        assert event.id != standalone_id


async def test_get_needs_sse_accept(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, box)
    response = await http.get(
        box.url(), headers=session_headers(session, Accept="application/json")
    )
    assert response.status_code == 406


async def test_delete_ends_streams_and_calls(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, box)
    async with http.stream("GET", box.url(), headers=session_headers(session)) as stream:
        events = sse_events(stream)
        await anext(events)
        sleeper = asyncio.create_task(
            http.post(box.url(), headers=session_headers(session), json=call("hold", request_id=5))
        )
        await asyncio.wait_for(box.alpha.started_event(5).wait(), 10)
        deleted = await http.delete(box.url(), headers=session_headers(session))
        assert deleted.status_code == 204
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(events), 5)
    await box.alpha.changes.until(lambda: box.alpha.cancelled == [5])
    response = await asyncio.wait_for(sleeper, 5)
    assert response.status_code == 200
    assert response.text == ""  # an SSE stream that ended without a reply
    # The real store ended it: it answers no more state writes.
    assert (await box.session(session)).ended
    with pytest.raises(SessionNotFound):
        await box.sessions.store.update_session_state("alpha", session, {})


async def test_cancelled_notification_cancels_the_call(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    async with http.stream(
        "POST",
        box.url(),
        headers=session_headers(session),
        json=call("hold", request_id="slow"),
    ) as response:
        events = sse_events(response)
        priming = await asyncio.wait_for(anext(events), 5)  # committed after the keep-alive period
        assert priming.data == ""
        ack = await http.post(
            box.url(),
            headers=session_headers(session),
            json=note("notifications/cancelled", {"requestId": "slow", "reason": "user"}),
        )
        assert ack.status_code == 202
        rest = [e async for e in events]
    assert messages(rest) == []  # no reply is sent for a cancelled request
    assert box.alpha.cancelled == ["slow"]


async def test_set_level_is_session_state(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, box)
    response = await http.post(
        box.url(),
        headers=session_headers(session),
        json=rpc("logging/setLevel", {"level": "error"}),
    )
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    state = (await box.session(session)).state
    assert state["log_level"] == "error"
    assert state["initialized"] is True
    async with http.stream(
        "POST", box.url(), headers=session_headers(session), json=call("log")
    ) as logged:
        levels = [
            m["params"]["level"] for m in messages(await read_all_events(logged)) if "method" in m
        ]
    assert levels == ["error"]
    _, ctx = box.alpha.calls[-1]
    assert ctx.log_level == "error"
    assert ctx.session_id == session


async def test_initialize_answer(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    response = await http.post(
        box.url(),
        headers=session_headers("ignored") | {"Mcp-Session-Id": ""},
        json=rpc(
            "initialize",
            {"protocolVersion": "2099-01-01", "capabilities": {}, "clientInfo": {"name": "x"}},
        ),
    )
    # An empty Mcp-Session-Id is no session id: this opens a session.
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["protocolVersion"] == "2025-11-25"
    assert result["serverInfo"] == {"name": "alpha-echo", "version": "1.2.3"}
    assert result["capabilities"] == {"tools": {"listChanged": False}, "logging": {}}
    session = response.headers["mcp-session-id"]
    record = await box.session(session)
    assert record.protocol_version == "2025-11-25"
    assert record.client_info == {"name": "x"}
    assert record.state == {
        "owner": "api_key:alice",
        "initialized": False,
        "log_level": None,
        "subscriptions": [],
        # Kept so that requests forwarded later carry them (and input requests are checked).
        "client_capabilities": {},
    }


async def test_sessions_in_use_are_marked_seen_now_and_then(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    record = await box.session(session)
    touches = box.sessions.touches
    await http.post(box.url(), headers=session_headers(session), json=rpc("ping"))
    assert box.sessions.touches == touches  # seen moments ago: no write
    box.now[0] += box.settings.session_touch_s + 1
    await http.post(box.url(), headers=session_headers(session), json=rpc("ping"))
    assert box.sessions.touches == touches + 1
    after = await box.session(session)
    assert after.last_seen == box.now[0]
    assert after.state == record.state
