"""The fleet's change feed on PostgreSQL: ``LISTEN``/``NOTIFY`` on one dedicated connection.

Each box opens one asyncpg connection of its own (never one of the store's pool, and never
through a transaction pooler, which would not keep a ``LISTEN`` alive), listens on
:data:`CHANNEL`, and sends its own changes with ``pg_notify`` on the same connection, so that
one box's changes reach every other box in the order it published them.

Invariants (those of :class:`smcp_box.seams.ChangeFeed`):

* :meth:`PgChangeFeed.publish` calls this box's listeners before it sends anything, so a change
  takes effect here whether or not the database is reachable.
* A notice carries a JSON envelope ``{"topic", "payload", "origin"}``; the box skips notices
  whose origin is itself (PostgreSQL also delivers a session's own notices to it), so it never
  hears its own change twice.
* Notices sent while this box's connection is down are lost to it. When the connection comes
  back (reconnecting with backoff), the feed delivers :data:`~.changes.TOPIC_RESYNC` to its own
  listeners, which then drop every cached thing and reload. What this box published meanwhile
  waits in a bounded outbox and is sent, in order, once connected; if the outbox overflowed,
  other boxes get a resync notice instead of the changes it dropped.
* A silent network drop is found by a ping every :data:`PING_INTERVAL_S`.

asyncpg is imported only when a feed is started, as for the store (the ``postgres`` extra).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from smcp_box.errors import StoreError
from smcp_box.seams import Change, ChangeListener

from .changes import TOPIC_RESYNC, LocalChangeFeed, check_payload
from .pg import CONNECT_TIMEOUT_S, redact_dsn

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

#: The one channel every box of a fleet listens on.
CHANNEL: Final = "smcp_box_changes"
#: PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more.
NOTIFY_MAX_BYTES: Final = 7_999
#: First and longest pause between two attempts to reconnect.
RECONNECT_FIRST_S: Final = 0.05
RECONNECT_MAX_S: Final = 5.0
#: How often an idle connection is checked (finds a drop no FIN announced).
PING_INTERVAL_S: Final = 10.0
#: A NOTIFY or ping that takes longer than this counts as a lost connection.
SEND_TIMEOUT_S: Final = 5.0
#: Changes kept while disconnected; beyond this the oldest go and a resync is sent instead.
OUTBOX_LIMIT: Final = 1_000


def encode(change: Change) -> str:
    """The notice text of ``change``: its JSON envelope."""
    envelope = {"topic": change.topic, "payload": change.payload, "origin": change.origin}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> Change | None:
    """The change a notice carries; None for text that is not one of our envelopes."""
    try:
        envelope = json.loads(text)
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    fields = [envelope.get(name) for name in ("topic", "payload", "origin")]
    if not all(isinstance(value, str) for value in fields):
        return None
    topic, payload, origin = (str(value) for value in fields)
    return Change(topic=topic, payload=payload, origin=origin)


def _connection_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    # InternalClientError: what asyncpg raises for a statement sent on a connection the
    # server has just ended, before it noticed.
    return (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        OSError,
        TimeoutError,
    )


class PgChangeFeed:
    """A :class:`~smcp_box.seams.ChangeFeed` shared by every box on one PostgreSQL database.

    :meth:`start` before use (it connects, or raises), :meth:`close` at the end."""

    def __init__(
        self,
        dsn: str,
        box_id: str,
        *,
        password: str | None = None,
        channel: str = CHANNEL,
        reconnect_first_s: float = RECONNECT_FIRST_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
        ping_interval_s: float = PING_INTERVAL_S,
    ) -> None:
        self.box_id = box_id
        self._dsn = dsn
        self._password = password
        self._channel = channel
        self._reconnect_first_s = reconnect_first_s
        self._reconnect_max_s = reconnect_max_s
        self._ping_interval_s = ping_interval_s
        self._local = LocalChangeFeed(box_id)
        self._conn: asyncpg.Connection[Any] | None = None
        #: One statement at a time on the connection, and publish order kept.
        self._send_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._outbox: collections.deque[str] = collections.deque()
        self._outbox_overflowed = False
        self._supervisor: asyncio.Task[None] | None = None
        self._errors: tuple[type[BaseException], ...] = ()
        #: How many times the connection was made again (for status and tests).
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._lost.is_set()

    async def start(self) -> None:
        """Connect and listen; StoreError naming the server when that fails."""
        try:
            import asyncpg  # noqa: F401  (the postgres extra's presence, checked once)
        except ImportError:
            raise StoreError(
                '[store] backend = "postgres" needs asyncpg: install smcp-box[postgres].'
            ) from None
        self._errors = _connection_errors()
        try:
            self._conn = await self._connect()
        except self._errors as exc:
            raise StoreError(
                f"Cannot open the change feed's connection to PostgreSQL at "
                f"{redact_dsn(self._dsn)}: {exc}. Check [store] dsn and that the server is up."
            ) from None
        self._supervisor = asyncio.create_task(self._supervise())

    async def close(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=SEND_TIMEOUT_S)
            except Exception:
                conn.terminate()
        if self._outbox:
            log.warning("change feed closed with %d change(s) unsent", len(self._outbox))

    def subscribe(self, topic: str, listener: ChangeListener) -> Callable[[], None]:
        return self._local.subscribe(topic, listener)

    async def publish(self, topic: str, payload: str) -> None:
        check_payload(topic, payload)
        change = Change(topic=topic, payload=payload, origin=self.box_id)
        text = encode(change)
        if len(text.encode("utf-8", "surrogatepass")) > NOTIFY_MAX_BYTES:
            # Only a payload full of characters JSON escapes gets here: other boxes cannot
            # be told what changed, so they are told to drop everything instead.
            log.error("change %r does not fit a NOTIFY once escaped; sending a resync", topic)
            text = encode(Change(topic=TOPIC_RESYNC, payload="", origin=self.box_id))
        self._local.deliver(change)
        async with self._send_lock:
            if self._outbox or not self._send_ready():
                self._queue(text)
                return
            if not await self._notify(text):
                self._queue(text)

    def _send_ready(self) -> bool:
        return self._conn is not None and not self._lost.is_set()

    async def _notify(self, text: str) -> bool:
        """Send one notice (holding the send lock); False, marking the connection lost, when
        it could not be sent."""
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.execute(
                "SELECT pg_notify($1, $2)", self._channel, text, timeout=SEND_TIMEOUT_S
            )
        except self._errors as exc:
            log.warning("change feed: sending a notice failed (%s); reconnecting", exc)
            self._lost.set()
            return False
        return True

    def _queue(self, text: str) -> None:
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.popleft()
            self._outbox_overflowed = True
        self._outbox.append(text)

    async def _connect(self) -> asyncpg.Connection[Any]:
        import asyncpg

        conn = await asyncpg.connect(self._dsn, password=self._password, timeout=CONNECT_TIMEOUT_S)
        try:
            await conn.add_listener(self._channel, self._received)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._terminated)
        return conn

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._lost.set()

    def _received(self, conn: Any, pid: int, channel: str, text: str) -> None:
        change = decode(text)
        if change is None:
            log.warning("change feed: ignored a notice on %s that is not ours", channel)
            return
        if change.origin == self.box_id:
            return
        self._local.deliver(change)

    async def _supervise(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), self._ping_interval_s)
            except TimeoutError:
                if not await self._ping():
                    self._lost.set()
                continue
            await self._reconnect()

    async def _ping(self) -> bool:
        async with self._send_lock:
            conn = self._conn
            if conn is None:
                return False
            try:
                await conn.fetchval("SELECT 1", timeout=SEND_TIMEOUT_S)
            except self._errors as exc:
                log.warning("change feed: the connection stopped answering (%s)", exc)
                return False
            return True

    async def _reconnect(self) -> None:
        old, self._conn = self._conn, None
        if old is not None:
            old.terminate()
        delay = self._reconnect_first_s
        while True:
            try:
                conn = await self._connect()
                break
            except self._errors as exc:
                log.warning(
                    "change feed: cannot reconnect to %s (%s); retrying in %.2g s",
                    redact_dsn(self._dsn),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max_s)
        self._conn = conn
        self._lost.clear()
        if conn.is_closed():
            self._lost.set()
            return
        self.reconnects += 1
        log.warning("change feed: reconnected; caches here start again from the database")
        self._local.deliver(Change(topic=TOPIC_RESYNC, payload="", origin=self.box_id))
        await self._flush()

    async def _flush(self) -> None:
        """Send what was published while disconnected, oldest first."""
        async with self._send_lock:
            if self._outbox_overflowed:
                resync = encode(Change(topic=TOPIC_RESYNC, payload="", origin=self.box_id))
                if not await self._notify(resync):
                    return
                self._outbox_overflowed = False
            while self._outbox:
                if not await self._notify(self._outbox[0]):
                    return
                self._outbox.popleft()
