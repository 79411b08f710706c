"""Sessions that move between boxes (docs/scale-out.md, "Sessions that move").

Two or three boxes, each the real transport on a real Hypercorn on loopback with its own store
(a pool of its own) on one throwaway PostgreSQL database, its own ``box_id`` and its own
in-process change feed. Raw HTTP drives the hand-over steps, since the point is to send one
session's requests to a box of our choosing. Notices between boxes are handed on with
``LocalChangeFeed.deliver`` (the fleet feed that carries them between processes is another
part's), so each test says when, or whether, a box hears of a takeover.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from smcp_box.seams import Change
from smcp_box.store import Store
from smcp_box.store.changes import TOPIC_SESSION, LocalChangeFeed
from smcp_box.web.mcp import TransportSettings
from tests.support.postgres import (
    create_database,
    throwaway_postgres_or_skip,
)
from tests.web.conftest import ALPHA_TOKEN, BoxUnderTest, FleetMember, run_box
from tests.web.rawhttp import (
    Event,
    initialize,
    note,
    read_all_events,
    rpc,
    session_headers,
    sse_events,
)

SETTINGS = TransportSettings(sse_keepalive_s=0.5, max_body_bytes=64 * 1024, session_touch_s=60)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    yield from throwaway_postgres_or_skip()


class Fleet:
    def __init__(self, boxes: dict[str, BoxUnderTest], feeds: dict[str, LocalChangeFeed]) -> None:
        self.boxes = boxes
        self.feeds = feeds
        #: What each box announced on its feed, in order.
        self.heard: dict[str, list[Change]] = {name: [] for name in boxes}
        for name, feed in feeds.items():
            feed.subscribe(TOPIC_SESSION, self.heard[name].append)

    def tell(self, listener: str, speaker: str) -> None:
        """Hand ``speaker``'s last session notice to ``listener``, as a fleet feed would."""
        self.feeds[listener].deliver(self.heard[speaker][-1])

    async def row(self, session_id: str) -> tuple[str, int, dict[str, Any]]:
        """(owner box, epoch, state) as the database has it (read past every cache)."""
        any_box = next(iter(self.boxes.values()))
        rows = await any_box.sessions.store.list_sessions("alpha")
        (record,) = [r for r in rows if r.session_id == session_id]
        return record.owner_box, record.epoch, record.state


@contextlib.asynccontextmanager
async def fleet_of(server_dsn: str, *names: str) -> AsyncIterator[Fleet]:
    dsn = await create_database(server_dsn, "sessions_move")
    key = secrets.token_bytes(32)
    now = [1_700_000_000.0]  # one wall clock for the fleet (its boxes' clocks agree)
    async with contextlib.AsyncExitStack() as stack:
        boxes: dict[str, BoxUnderTest] = {}
        feeds: dict[str, LocalChangeFeed] = {}
        for name in names:
            store = await Store.open_postgres(dsn, key, clock=lambda: now[0], pool_size=4)
            stack.push_async_callback(store.close)  # idempotent; run_box closes it too
            feeds[name] = LocalChangeFeed(name)
            member = FleetMember(store=store, box_id=name, changes=feeds[name], now=now)
            running = await stack.enter_async_context(
                contextlib.aclosing(run_box(SETTINGS, fleet=member))
            )
            boxes[name] = await anext(running)
        yield Fleet(boxes, feeds)


@pytest.fixture
async def two(postgres_server: str) -> AsyncIterator[Fleet]:
    async with fleet_of(postgres_server, "box_a", "box_b") as fleet:
        yield fleet


def log_call(request_id: Any = 1) -> dict[str, Any]:
    return rpc("tools/call", {"name": "log", "arguments": {}}, request_id)


async def levels_logged(http: httpx.AsyncClient, box: BoxUnderTest, session: str) -> list[str]:
    async with http.stream(
        "POST", box.url(), headers=session_headers(session), json=log_call()
    ) as response:
        assert response.status_code == 200
        assert response.headers["mcp-session-id"] == session
        events = await read_all_events(response)
    messages = [event.json() for event in events if event.data]
    assert messages[-1]["result"]["content"][0]["text"] == "logged"
    return [m["params"]["level"] for m in messages if m.get("method") == "notifications/message"]


async def test_a_session_opened_on_a_is_served_by_b_without_a_new_initialize(
    two: Fleet, http: httpx.AsyncClient
) -> None:
    a, b = two.boxes["box_a"], two.boxes["box_b"]
    session = await initialize(http, a)
    assert session.startswith("box_a-")
    level = await http.post(
        a.url(), headers=session_headers(session), json=rpc("logging/setLevel", {"level": "error"})
    )
    assert level.status_code == 200
    assert await two.row(session) == ("box_a", 0, (await a.session(session)).state)

    # HAProxy sent this one to B (A is gone, or redispatched): B serves it with A's session.
    assert await levels_logged(http, b, session) == ["error"]

    _, ctx = b.alpha.calls[-1]
    assert (ctx.session_id, ctx.protocol_version) == (session, "2025-11-25")
    assert b.alpha.describe_calls == 0  # no initialize reached B
    owner, epoch, state = await two.row(session)
    assert (owner, epoch, state["log_level"], state["initialized"]) == ("box_b", 1, "error", True)
    (notice,) = two.heard["box_b"]
    assert notice.payload.startswith("alpha\t")
    assert notice.payload.endswith("\tbox_b")
    assert session not in notice.payload

    # A hears of it and drops its copy; a request that reaches A again takes it back.
    two.tell("box_a", "box_b")
    assert (await a.sessions.store.get_session("alpha", session)).owner_box == "box_b"
    assert await levels_logged(http, a, session) == ["error"]
    assert (await two.row(session))[:2] == ("box_a", 2)


class Balancer(httpx2.AsyncBaseTransport):
    """Sends every request to the box ``target`` names now, as a load balancer would."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = httpx2.URL(self.target)
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["Host"] = f"{target.host}:{target.port}"
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_the_sdk_client_carries_on_when_its_requests_reach_another_box(two: Fleet) -> None:
    a, b = two.boxes["box_a"], two.boxes["box_b"]
    balancer = Balancer(a.base_url)
    headers = {"Authorization": f"Bearer {ALPHA_TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=10, transport=balancer) as http:
        transport = streamable_http_client(a.url(), http_client=http)
        async with Client(transport, mode="legacy") as client:
            first = await client.call_tool("echo", {"text": "on a"})
            assert first.content[0].text == "on a"  # type: ignore[union-attr]
            (session,) = a.session_ids
            balancer.target = b.base_url  # A is gone: the balancer sends the session to B

            second = await client.call_tool("echo", {"text": "on b"})

            assert second.content[0].text == "on b"  # type: ignore[union-attr]
            _, ctx = b.alpha.calls[-1]
            assert ctx.session_id == session
            assert b.alpha.describe_calls == 0  # the client did not initialize again
            assert (await two.row(session))[:2] == ("box_b", 1)
    # Leaving the client ends the session (its DELETE went to B too).
    assert (await b.session(session)).ended


async def remaining(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


async def test_a_get_stream_on_a_resumes_on_b_with_every_event_once(
    two: Fleet, http: httpx.AsyncClient
) -> None:
    a, b = two.boxes["box_a"], two.boxes["box_b"]
    session = await initialize(http, a)
    pushed = note("notifications/roots/list_changed")
    seen_on_a: list[str] = []
    async with http.stream("GET", a.url(), headers=session_headers(session)) as stream:
        assert stream.status_code == 200
        events = sse_events(stream)
        priming = await asyncio.wait_for(anext(events), 5)
        assert priming.id is not None
        seen_on_a.append(priming.id)
        for _ in range(3):
            ack = await http.post(a.url(), headers=session_headers(session), json=pushed)
            assert ack.status_code == 202
            event = await asyncio.wait_for(anext(events), 5)
            assert event.id is not None
            seen_on_a.append(event.id)
    # The client read up to the second of them, then A was lost; what A persisted after it is
    # in the shared log.
    last_read = seen_on_a[1]
    await a.observer.changes.until(lambda: a.observer.open_streams == 0)

    headers = session_headers(session, **{"Last-Event-ID": last_read})
    async with http.stream("GET", b.url(), headers=headers) as resumed:
        assert resumed.status_code == 200
        assert resumed.headers["mcp-session-id"] == session
        events = sse_events(resumed)
        replayed = [await asyncio.wait_for(anext(events), 5) for _ in seen_on_a[2:]]
        assert [event.id for event in replayed] == seen_on_a[2:]
        # New events, made on B now, go on from the last id: no gap, no duplicate.
        ack = await http.post(b.url(), headers=session_headers(session), json=pushed)
        assert ack.status_code == 202
        fresh = await asyncio.wait_for(anext(events), 5)
        stream_seq, last_seq = seen_on_a[-1].split("-")
        assert fresh.id == f"{stream_seq}-{int(last_seq) + 1}"
        assert fresh.json()["params"]["data"] == "saw notifications/roots/list_changed"
        assert [int(i.split("-")[1]) for i in seen_on_a] == [1, 2, 3, 4]
        assert (await two.row(session))[:2] == ("box_b", 1)

        # A comes back and a request reaches it: A takes the session back, and what the
        # session emits is A's from now on. B hears of it, and its stream ends (at its next
        # idle check) so that the client resumes where the balancer sends it.
        two.tell("box_a", "box_b")
        ack = await http.post(a.url(), headers=session_headers(session), json=pushed)
        assert ack.status_code == 202
        assert (await two.row(session))[:2] == ("box_a", 2)
        two.tell("box_b", "box_a")
        rest = await asyncio.wait_for(remaining(events), 10)
    assert rest == []  # A's event was not B's to send: the stream just ended
    assert fresh.id is not None
    headers = session_headers(session, **{"Last-Event-ID": fresh.id})
    async with http.stream("GET", a.url(), headers=headers) as back_on_a:
        assert back_on_a.status_code == 200
        missed = await asyncio.wait_for(anext(sse_events(back_on_a)), 5)
    assert missed.id == f"{stream_seq}-{int(last_seq) + 2}"
    assert missed.json()["params"]["data"] == "saw notifications/roots/list_changed"


async def test_boxes_racing_for_one_session_leave_one_owner(
    postgres_server: str, http: httpx.AsyncClient
) -> None:
    async with fleet_of(postgres_server, "box_a", "box_b", "box_c") as fleet:
        a, b, c = (fleet.boxes[name] for name in ("box_a", "box_b", "box_c"))
        session = await initialize(http, a)
        ping = rpc("ping")
        answers = await asyncio.gather(
            *(http.post(box.url(), headers=session_headers(session), json=ping) for box in (b, c))
        )
        assert [answer.status_code for answer in answers] == [200, 200]
        owner, epoch, _ = await fleet.row(session)
        assert epoch == 1
        assert owner in ("box_b", "box_c")
        # Exactly one takeover was announced: the winner's.
        assert len(fleet.heard["box_b"]) + len(fleet.heard["box_c"]) == 1
        assert len(fleet.heard[owner]) == 1


async def test_a_stale_owner_cannot_overwrite_the_new_owners_state(
    two: Fleet, http: httpx.AsyncClient
) -> None:
    a, b = two.boxes["box_a"], two.boxes["box_b"]
    session = await initialize(http, a)
    taken = await http.post(b.url(), headers=session_headers(session), json=rpc("ping"))
    assert taken.status_code == 200
    assert (await two.row(session))[:2] == ("box_b", 1)

    # A never hears of it (the notice is lost): its cached copy says it owns the session at
    # epoch 0. Its state change is refused at epoch 0, so A re-reads, takes the session over
    # from B's row and applies the change to B's state.
    changed = await http.post(
        a.url(), headers=session_headers(session), json=rpc("logging/setLevel", {"level": "error"})
    )
    assert changed.status_code == 200
    owner, epoch, state = await two.row(session)
    assert (owner, epoch, state["log_level"], state["initialized"]) == ("box_a", 2, "error", True)

    # Now B is the stale one, its copy without a log level. The touch of a session in use would
    # write that copy back: refused, and the request is still served.
    b.now[0] += SETTINGS.session_touch_s + 1
    stale = await http.post(b.url(), headers=session_headers(session), json=rpc("ping"))
    assert stale.status_code == 200
    assert await two.row(session) == ("box_a", 2, state)

    # That refusal dropped B's copy: the next request B gets reads the row and takes it back.
    again = await http.post(b.url(), headers=session_headers(session), json=rpc("ping"))
    assert again.status_code == 200
    owner, epoch, state = await two.row(session)
    assert (owner, epoch, state["log_level"]) == ("box_b", 3, "error")
    assert len(two.heard["box_b"]) == 2  # both of B's takeovers were announced


async def test_an_ended_session_is_gone_on_every_box(two: Fleet, http: httpx.AsyncClient) -> None:
    a, b = two.boxes["box_a"], two.boxes["box_b"]
    session = await initialize(http, a)
    ended = await http.delete(b.url(), headers=session_headers(session))
    assert ended.status_code == 204
    two.tell("box_a", "box_b")
    for box in (a, b):
        gone = await http.post(box.url(), headers=session_headers(session), json=rpc("ping"))
        assert gone.status_code == 404


async def test_session_id_headers_with_a_box_prefix_pass_and_malformed_ones_are_unknown(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    """One box on SQLite: its ids carry its prefix; an id no box could have issued (too long,
    or not visible ASCII) gets the answer of an unknown session, before any lookup."""
    session = await initialize(http, box)
    ok = await http.post(box.url(), headers=session_headers(session), json=rpc("ping"))
    assert ok.status_code == 200
    for malformed in ("box_a-" + "x" * 300, "box_a- spaced", "box_a-\tx"):
        refused = await http.post(box.url(), headers=session_headers(malformed), json=rpc("ping"))
        assert refused.status_code == 404, malformed
        assert "initialize" in refused.text
    # The session itself is unaffected by the refusals.
    record = await box.session(session)
    assert (record.owner_box, record.epoch) == ("", 0)
