"""Live response streams and the per-process registry of legacy sessions' live state.

A :class:`ResponseStream` collects what one request produces (its notifications, then its
reply) and fans the frames out to subscribers: the POST that started it and, in the legacy era,
a GET that resumed it. Invariants:

* Frames are persisted (legacy era: ``sessions.append_event``) *before* they are handed to any
  subscriber, under one lock, so the store's order is the wire order and a resuming reader that
  subscribes first and then replays from the store misses nothing (it drops duplicates by id).
* A request's stream starts *pending*: if the reply comes before any notification and before the
  transport commits to SSE, the reply is answered as plain JSON and never persisted. The first
  notification (or a commit after the keep-alive period) turns it into an SSE stream; for
  2025-11-25+ clients the priming frame is then the first persisted frame.
* After the reply (or abandonment) nothing more is emitted; late notifications are dropped.

The hub keeps live state only while something is in flight (a call, an attached GET); the store
stays the source of truth for replay, so several processes or a restart lose liveness, not data.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from smcp_box.errors import BoxError, StreamConflict
from smcp_box.protocol.jsonrpc import encode_json
from smcp_box.seams import JsonObject
from smcp_box.web.sse import Frame

log = logging.getLogger("smcp_box.web.mcp")

#: Persists one SSE payload and returns its event id.
Persist = Callable[[str], Awaitable[str]]
SessionKey = tuple[str, str]

#: A standalone-stream reader this far behind is cut off; it resumes from the store instead.
STANDALONE_BACKLOG: Final = 1024
STANDALONE_STREAM_ID: Final = "standalone"


class StreamState(enum.Enum):
    PENDING = "pending"
    STREAMING = "streaming"
    #: Replied before any event: the reply goes out as plain JSON.
    JSON = "json"
    #: Ended without a reply (cancelled, session ended).
    ABANDONED = "abandoned"


class Subscription:
    """One reader's queue of frames; a None entry marks the end of the stream."""

    def __init__(self, maxsize: int = 0) -> None:
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize)
        self.ended = False

    def offer(self, frame: Frame | None) -> None:
        if self.ended:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            # The reader fell too far behind: drop its backlog and end it. Every frame it lost
            # is persisted, so it can resume with Last-Event-ID.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            self.ended = True
            return
        if frame is None:
            self.ended = True

    async def next(self, timeout_s: float) -> Frame | None:
        async with asyncio.timeout(timeout_s):
            return await self.queue.get()


class ResponseStream:
    def __init__(
        self,
        *,
        persist: Persist | None,
        prime: bool = False,
        retry_ms: int | None = None,
        pending: bool = True,
    ) -> None:
        self._persist = persist
        self._prime = prime
        self._retry_ms = retry_ms
        self._lock = asyncio.Lock()
        self._subscribers: list[Subscription] = []
        self._decided = asyncio.Event()
        self.state = StreamState.PENDING if pending else StreamState.STREAMING
        self.closed = False
        #: The reply when it is answered as JSON.
        self.reply: JsonObject | None = None
        if not pending:
            self._decided.set()

    # -- readers ---------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 0) -> Subscription:
        sub = Subscription(maxsize)
        if self.closed:
            sub.offer(None)
        else:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def wait_decided(self, timeout_s: float) -> bool:
        """Wait until the stream is JSON, streaming or abandoned; False on timeout."""
        if self._decided.is_set():
            return True  # a call that finished before anyone waited (no timer needed)
        try:
            async with asyncio.timeout(timeout_s):
                await self._decided.wait()
        except TimeoutError:
            return False
        return True

    # -- writers ---------------------------------------------------------------------------

    async def notify(self, message: JsonObject) -> None:
        """Emit a message ahead of the reply: a notification, or (legacy era) a request the box
        sends the client on the request's behalf."""
        async with self._lock:
            if self.closed:
                return
            if self.state is StreamState.PENDING:
                await self._start_streaming()
            await self._emit(encode_json(message).decode("utf-8"))

    async def commit(self) -> None:
        """Commit to SSE now (the transport's keep-alive period passed with nothing to send)."""
        async with self._lock:
            if not self.closed and self.state is StreamState.PENDING:
                await self._start_streaming()

    async def prime(self) -> None:
        """Emit a priming frame now (a GET stream attaching); a no-op without priming."""
        async with self._lock:
            if not self.closed and self._prime:
                await self._emit("")

    async def finish(self, reply: JsonObject) -> None:
        async with self._lock:
            if self.closed:
                return
            if self.state is StreamState.PENDING:
                self.state = StreamState.JSON
                self.reply = reply
                self._decided.set()
            else:
                await self._emit(encode_json(reply).decode("utf-8"))
            self._close()

    async def abandon(self) -> None:
        async with self._lock:
            if self.closed:
                return
            if self.state is StreamState.PENDING:
                self.state = StreamState.ABANDONED
                self._decided.set()
            self._close()

    async def _start_streaming(self) -> None:
        self.state = StreamState.STREAMING
        self._decided.set()
        if self._prime:
            await self._emit("")

    async def _emit(self, payload: str) -> None:
        event_id: str | None = None
        if self._persist is not None:
            # Live delivery matters more than resumability: a frame that could not be persisted
            # is still sent, without an id.
            try:
                event_id = await self._persist(payload)
            except BoxError as err:
                # E.g. the session ended meanwhile, or the disk is full: expected, no traceback.
                log.warning("SSE event not persisted (%s); sent without an id", err.kind)
            except Exception:
                log.exception("SSE event not persisted; sent without an id")
        retry = self._retry_ms if payload == "" else None
        frame = Frame(event_id=event_id, data=payload, retry_ms=retry)
        for sub in list(self._subscribers):
            sub.offer(frame)
            if sub.ended:
                self._subscribers.remove(sub)

    def _close(self) -> None:
        self.closed = True
        for sub in self._subscribers:
            sub.offer(None)
        self._subscribers.clear()


@dataclass
class SessionLive:
    """What one legacy session has in flight in this process."""

    #: Running calls by JSON-RPC request id, for ``notifications/cancelled``.
    calls: dict[Any, asyncio.Task[Any]] = field(default_factory=dict)
    #: Requests the box sent the client (InputRequiredResult rounds) by their box-made id,
    #: awaiting the client's POSTed response. Each belongs to a running call, which removes it.
    awaiting: dict[str, asyncio.Future[JsonObject]] = field(default_factory=dict)
    #: The session's resource subscriptions, mirrored from its stored state while its
    #: standalone stream is attached, so a resources/updated needs no store read per session.
    subscriptions: frozenset[str] = frozenset()
    #: Streams of running calls by stream id, for a resuming GET to follow live.
    streams: dict[str, ResponseStream] = field(default_factory=dict)
    standalone: ResponseStream | None = None
    standalone_attached: bool = False
    #: Forwarded client notifications still being handled by the module.
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def idle(self) -> bool:
        return not (self.calls or self.streams or self.standalone_attached or self.background)


class SessionHub:
    """Live state of legacy sessions in this process, keyed by (tenant, session id)."""

    def __init__(self) -> None:
        self._sessions: dict[SessionKey, SessionLive] = {}
        #: Attached standalone (GET) streams per tenant, for the max_sse_streams quota.
        self._open_streams: dict[str, int] = {}

    def open_streams(self, tenant: str) -> int:
        """GET streams of ``tenant``'s sessions attached now."""
        return self._open_streams.get(tenant, 0)

    def _detached(self, key: SessionKey, live: SessionLive) -> None:
        """Invariant: ``_open_streams`` counts exactly the sessions with standalone_attached."""
        if live.standalone_attached:
            live.standalone_attached = False
            left = self._open_streams.get(key[0], 0) - 1
            if left > 0:
                self._open_streams[key[0]] = left
            else:
                self._open_streams.pop(key[0], None)

    def _live(self, key: SessionKey) -> SessionLive:
        live = self._sessions.get(key)
        if live is None:
            live = self._sessions[key] = SessionLive()
        return live

    def _release_if_idle(self, key: SessionKey) -> None:
        live = self._sessions.get(key)
        if live is not None and live.idle():
            del self._sessions[key]

    def add_call(
        self,
        key: SessionKey,
        request_id: Any,
        stream_id: str,
        stream: ResponseStream,
        task: asyncio.Task[Any] | None = None,
    ) -> None:
        """Register a call's stream (a GET may resume it) and, once it has one, its task (a
        ``notifications/cancelled`` cancels it): a call started in the request's own task gets
        a task only if it has to wait (:meth:`call_task`)."""
        live = self._live(key)
        if task is not None:
            live.calls[request_id] = task
        live.streams[stream_id] = stream

    def call_task(self, key: SessionKey, request_id: Any, task: asyncio.Task[Any]) -> None:
        """The task that continues a call registered by :meth:`add_call` without one."""
        self._live(key).calls[request_id] = task

    def call_done(
        self, key: SessionKey, request_id: Any, stream_id: str, task: asyncio.Task[Any] | None
    ) -> None:
        live = self._sessions.get(key)
        if live is None:
            return
        # A client may reuse an id once its request is answered: only forget our own task.
        if live.calls.get(request_id) is task:
            del live.calls[request_id]
        live.streams.pop(stream_id, None)
        self._release_if_idle(key)

    # -- responses to the box's own requests (InputRequiredResult rounds) -------------------

    def expect_response(self, key: SessionKey, box_id: str) -> asyncio.Future[JsonObject]:
        """A future for the client's response to the request the box sends as ``box_id``.

        Register before sending, so an answer that arrives at once is not dropped. Only a call
        in progress registers, and it calls :meth:`forget_response` when it stops waiting.
        """
        live = self._live(key)
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        live.awaiting[box_id] = future
        return future

    def deliver_response(self, key: SessionKey, response_id: Any, message: JsonObject) -> bool:
        """Hand a client's POSTed response to the call waiting for it; False when none is
        (unknown id, answered already, or waiting in another process): the box drops it."""
        live = self._sessions.get(key)
        if live is None or not isinstance(response_id, str):
            return False
        future = live.awaiting.get(response_id)
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    def forget_response(self, key: SessionKey, box_id: str) -> None:
        live = self._sessions.get(key)
        if live is not None:
            future = live.awaiting.pop(box_id, None)
            if future is not None and not future.done():
                future.cancel()

    # -- tenant-wide notifications on standalone streams --------------------------------------

    def set_subscriptions(self, key: SessionKey, uris: frozenset[str]) -> None:
        """Mirror a session's subscriptions (only while it is live here; attaching its
        standalone stream loads them from the stored state)."""
        live = self._sessions.get(key)
        if live is not None:
            live.subscriptions = uris

    async def broadcast(self, tenant: str, message: JsonObject, uri: str | None = None) -> int:
        """Send ``message`` on the attached standalone stream of each of the tenant's live
        sessions (when ``uri`` is given: only those subscribed to it). Returns how many."""
        targets = [
            live.standalone
            for (owner, _), live in list(self._sessions.items())
            if owner == tenant
            and live.standalone_attached
            and live.standalone is not None
            and (uri is None or uri in live.subscriptions)
        ]
        for stream in targets:
            await stream.notify(message)
        return len(targets)

    def cancel_call(self, key: SessionKey, request_id: Any) -> bool:
        live = self._sessions.get(key)
        task = live.calls.get(request_id) if live is not None else None
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def live_stream(self, key: SessionKey, stream_id: str) -> ResponseStream | None:
        live = self._sessions.get(key)
        if live is None:
            return None
        if stream_id == STANDALONE_STREAM_ID:
            return live.standalone
        return live.streams.get(stream_id)

    def standalone(self, key: SessionKey, make: Callable[[], ResponseStream]) -> ResponseStream:
        live = self._live(key)
        if live.standalone is None or live.standalone.closed:
            live.standalone = make()
        return live.standalone

    def check_standalone_free(self, key: SessionKey) -> None:
        """409 when the session's one standalone GET stream is already open.

        The spec forbids sending a message on more than one stream; one GET stream per session
        keeps every unsolicited notification on exactly one connection.
        """
        live = self._sessions.get(key)
        if live is not None and live.standalone_attached:
            raise StreamConflict(
                "Conflict: this session already has an open GET stream; close it first"
            )

    def attach_standalone(
        self, key: SessionKey, make: Callable[[], ResponseStream]
    ) -> tuple[ResponseStream, Subscription]:
        """Claim the session's standalone GET stream (409 when already open).

        Its subscription mirror starts empty; the caller loads it from the stored state *after*
        attaching (see :meth:`set_subscriptions`), so no change made meanwhile is lost.
        """
        self.check_standalone_free(key)
        live = self._live(key)
        stream = self.standalone(key, make)
        live.standalone_attached = True
        self._open_streams[key[0]] = self._open_streams.get(key[0], 0) + 1
        live.subscriptions = frozenset()
        return stream, stream.subscribe(STANDALONE_BACKLOG)

    def detach_standalone(self, key: SessionKey, sub: Subscription) -> None:
        live = self._sessions.get(key)
        if live is None:
            return
        if live.standalone is not None:
            live.standalone.unsubscribe(sub)
        self._detached(key, live)
        if not live.background and not live.calls:
            live.standalone = None
        self._release_if_idle(key)

    def add_background(self, key: SessionKey, task: asyncio.Task[Any]) -> None:
        live = self._live(key)
        live.background.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            live.background.discard(finished)
            if not live.standalone_attached and not live.background and not live.calls:
                live.standalone = None
            self._release_if_idle(key)

        task.add_done_callback(done)

    async def end_session(self, key: SessionKey) -> None:
        """Cancel a session's calls and end its open streams (it was deleted)."""
        live = self._sessions.pop(key, None)
        if live is None:
            return
        self._detached(key, live)
        for task in [*live.calls.values(), *live.background]:
            task.cancel()
        for future in live.awaiting.values():
            future.cancel()
        for stream in [*live.streams.values(), live.standalone]:
            if stream is not None:
                await stream.abandon()

    async def close_standalone_streams(self) -> None:
        """End every session's GET stream, leaving calls in flight alone (SIGTERM: a GET stream
        never ends by itself, so it would hold the server's drain for the whole grace period;
        its client reconnects, with Last-Event-ID, once the box is back)."""
        for live in list(self._sessions.values()):
            if live.standalone is not None and live.standalone_attached:
                await live.standalone.abandon()

    async def aclose(self) -> None:
        """Cancel everything in flight (the server is shutting down)."""
        for key in list(self._sessions):
            await self.end_session(key)
