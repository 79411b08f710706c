"""Unit tests of SSE framing, response streams and the legacy-session hub (no HTTP)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from smcp_box.errors import StreamConflict
from smcp_box.web.sse import KEEPALIVE, Frame, frame_stream
from smcp_box.web.streams import ResponseStream, SessionHub, StreamState, Subscription


def test_frame_encoding() -> None:
    assert Frame("7", '{"a":1}').encode() == b'id: 7\nevent: message\ndata: {"a":1}\n\n'
    assert Frame(None, "x").encode() == b"event: message\ndata: x\n\n"
    assert Frame("p", "", retry_ms=2500).encode() == b"id: p\nretry: 2500\ndata: \n\n"
    assert Frame(None, "a\nb").encode() == b"event: message\ndata: a\ndata: b\n\n"
    with pytest.raises(ValueError, match="event ids"):
        Frame("bad\nid", "x").encode()


class Store:
    def __init__(self, fail: bool = False) -> None:
        self.rows: list[str] = []
        self.fail = fail
        self._ids = itertools.count(1)

    async def persist(self, payload: str) -> str:
        if self.fail:
            raise RuntimeError("disk on fire")
        self.rows.append(payload)
        return f"e{next(self._ids)}"


async def drain(sub: Subscription) -> list[Frame]:
    frames: list[Frame] = []
    while True:
        frame = await sub.next(1)
        if frame is None:
            return frames
        frames.append(frame)


async def test_reply_first_is_json_and_not_persisted() -> None:
    store = Store()
    stream = ResponseStream(persist=store.persist, prime=True)
    sub = stream.subscribe()
    await stream.finish({"id": 1, "result": {}})
    assert stream.state is StreamState.JSON
    assert stream.reply == {"id": 1, "result": {}}
    assert await stream.wait_decided(0.1)
    assert store.rows == []
    assert await drain(sub) == []


async def test_notification_first_streams_with_priming() -> None:
    store = Store()
    stream = ResponseStream(persist=store.persist, prime=True, retry_ms=1000)
    sub = stream.subscribe()
    await stream.notify({"method": "notifications/progress"})
    await stream.finish({"id": 1, "result": {}})
    await stream.notify({"method": "late"})  # after the reply: dropped
    frames = await drain(sub)
    assert [f.event_id for f in frames] == ["e1", "e2", "e3"]
    assert frames[0].is_priming
    assert frames[0].retry_ms == 1000
    assert frames[1].retry_ms is None
    assert store.rows == ["", '{"method":"notifications/progress"}', '{"id":1,"result":{}}']
    assert stream.state is StreamState.STREAMING
    assert stream.closed


async def test_commit_then_abandon() -> None:
    stream = ResponseStream(persist=None)
    sub = stream.subscribe()
    assert not await stream.wait_decided(0.01)
    await stream.commit()
    assert stream.state is StreamState.STREAMING
    await stream.abandon()
    assert await drain(sub) == []
    late = stream.subscribe()
    assert await late.next(0.1) is None


async def test_abandon_while_pending() -> None:
    stream = ResponseStream(persist=None)
    await stream.abandon()
    assert stream.state is StreamState.ABANDONED
    assert await stream.wait_decided(0.01)


async def test_persist_failure_still_delivers() -> None:
    stream = ResponseStream(persist=Store(fail=True).persist)
    sub = stream.subscribe()
    await stream.notify({"method": "m"})
    frame = await sub.next(1)
    assert frame is not None
    assert frame.event_id is None
    assert frame.data == '{"method":"m"}'


async def test_slow_subscriber_is_cut_off() -> None:
    stream = ResponseStream(persist=None, pending=False)
    slow = stream.subscribe(maxsize=2)
    fast = stream.subscribe()
    for n in range(3):
        await stream.notify({"n": n})
    assert slow.ended
    assert await slow.next(0.1) is None
    assert stream.subscriber_count == 1
    assert len([await fast.next(0.1) for _ in range(3)]) == 3


async def test_frame_stream_keepalives_and_still_wanted() -> None:
    stream = ResponseStream(persist=None, pending=False)
    sub = stream.subscribe()
    answers = iter([True, False])

    async def still_wanted() -> bool:
        return next(answers)

    chunks = [c async for c in frame_stream(sub.next, keepalive_s=0.01, still_wanted=still_wanted)]
    assert chunks == [KEEPALIVE]


async def test_hub_standalone_slot() -> None:
    hub = SessionHub()
    key = ("alpha", "s1")
    made: list[ResponseStream] = []

    def make() -> ResponseStream:
        made.append(ResponseStream(persist=None, pending=False))
        return made[-1]

    stream, sub = hub.attach_standalone(key, make)
    with pytest.raises(StreamConflict) as caught:
        hub.attach_standalone(key, make)
    assert caught.value.http_status == 409
    assert hub.standalone(key, make) is stream  # background notifications share it
    hub.detach_standalone(key, sub)
    hub.check_standalone_free(key)
    assert hub.live_stream(key, "standalone") is None  # nothing in flight: forgotten


async def test_hub_calls_and_session_end() -> None:
    hub = SessionHub()
    key = ("alpha", "s1")
    stream = ResponseStream(persist=None)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(forever())
    hub.add_call(key, 7, "r1", stream, task)
    await started.wait()
    assert hub.live_stream(key, "r1") is stream

    # Another task finishing under the same id must not evict this one.
    async def done_at_once() -> None:
        return None

    other = asyncio.create_task(done_at_once())
    await other
    hub.call_done(key, 7, "r-other", other)
    assert hub.cancel_call(key, 7) is True
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.cancel_call(key, 7) is False
    hub.call_done(key, 7, "r1", task)
    assert hub.live_stream(key, "r1") is None

    again = asyncio.create_task(forever())
    pending = ResponseStream(persist=None)
    hub.add_call(key, 8, "r2", pending, again)
    await hub.end_session(key)
    with pytest.raises(asyncio.CancelledError):
        await again
    assert pending.state is StreamState.ABANDONED


async def test_hub_routes_client_responses_to_the_waiting_call() -> None:
    hub = SessionHub()
    key = ("alpha", "s1")
    answer = {"jsonrpc": "2.0", "id": "smcp-r1-1-a", "result": {}}
    future = hub.expect_response(key, "smcp-r1-1-a")
    assert not hub.deliver_response(("alpha", "other"), "smcp-r1-1-a", answer)  # other session
    assert not hub.deliver_response(key, "smcp-r1-1-b", answer)  # nobody waits for that id
    assert not hub.deliver_response(key, 5, answer)  # the box only sends string ids
    assert hub.deliver_response(key, "smcp-r1-1-a", answer)
    assert await future == answer
    assert not hub.deliver_response(key, "smcp-r1-1-a", answer)  # answered once
    hub.forget_response(key, "smcp-r1-1-a")
    left = hub.expect_response(key, "smcp-r1-2-a")
    hub.forget_response(key, "smcp-r1-2-a")
    assert left.cancelled()


async def test_hub_broadcasts_on_attached_standalone_streams() -> None:
    hub = SessionHub()

    def make() -> ResponseStream:
        return ResponseStream(persist=None, pending=False)

    _, mine = hub.attach_standalone(("alpha", "s1"), make)
    _, theirs = hub.attach_standalone(("alpha", "s2"), make)
    _, elsewhere = hub.attach_standalone(("beta", "s3"), make)
    hub.set_subscriptions(("alpha", "s1"), frozenset({"mem://a"}))
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    assert await hub.broadcast("alpha", changed) == 2
    updated = {"jsonrpc": "2.0", "method": "notifications/resources/updated"}
    assert await hub.broadcast("alpha", updated, "mem://a") == 1
    assert await hub.broadcast("alpha", updated, "mem://b") == 0
    assert [(await mine.next(1)).data for _ in range(2)] == [  # type: ignore[union-attr]
        '{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}',
        '{"jsonrpc":"2.0","method":"notifications/resources/updated"}',
    ]
    assert (await theirs.next(1)) is not None
    assert elsewhere.queue.empty()


async def test_hub_call_registered_before_it_has_a_task() -> None:
    # A call starts in the request's own task (mcp_calls.start_in_place): its stream is
    # registered first; a call that finishes there is forgotten without ever having a task.
    hub = SessionHub()
    key = ("alpha", "s1")
    stream = ResponseStream(persist=None)
    hub.add_call(key, 7, "r1", stream)
    assert hub.live_stream(key, "r1") is stream
    assert hub.cancel_call(key, 7) is False  # nothing to cancel yet
    hub.call_done(key, 7, "r1", asyncio.current_task())
    assert hub.live_stream(key, "r1") is None
    assert key not in hub._sessions  # nothing live: the session entry is released

    # One that has to wait gets its task registered, and is cancellable through it.
    hub.add_call(key, 8, "r2", stream)
    task = asyncio.create_task(asyncio.Event().wait())
    hub.call_task(key, 8, task)
    assert hub.cancel_call(key, 8) is True
    with pytest.raises(asyncio.CancelledError):
        await task
    hub.call_done(key, 8, "r2", task)
    assert key not in hub._sessions  # nothing live: the session entry is released
