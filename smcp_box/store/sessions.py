"""Sessions and their replayable SSE event streams.

A session row is found by ``lookup("session", tenant, session id)``; the id itself is stored only
sealed, for listing. Because the tenant is inside the lookup, a session id of one tenant never
finds another tenant's session, and its events are reachable only through their session row.

Event ids are ``"<stream seq>-<event seq>"``: the stream's number within the session (1, 2, ...)
and the event's number within that stream. Both only ever grow, so an id is never reused, even
after old events are pruned, and ``Last-Event-ID`` alone names the stream to resume. Both
numbers are allocated in the database (``streams.seq``, ``streams.next_event``) inside the
transaction that holds the session row's lock, so boxes appending to one stream at once get
consecutive ids with no gap and no duplicate.

Sessions that move (docs/scale-out.md): every row names the box that owns it and an epoch that
every change of owner bumps. :meth:`Sessions.claim_session` takes a session over with a
compare-and-set on (owner, epoch), so of boxes racing for one session exactly one wins, and
announces it (``TOPIC_SESSION``: tenant, the id's lookup hash, the new owner) so that the other
boxes drop their cached copy. A state write names the epoch its writer read and is refused
(:class:`~smcp_box.errors.SessionMoved`) once the session has moved on, so a stale owner never
overwrites the new owner's state.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from smcp_box.config import SessionSettings, StoreSettings
from smcp_box.errors import SessionMoved, SessionNotFound, StoreError
from smcp_box.seams import Change, ChangeFeed, JsonObject, SessionRecord

from .changes import TOPIC_SESSION
from .crypto import Crypto
from .db import Database, Row

log = logging.getLogger(__name__)

DEFAULT_MAX_EVENTS_PER_SESSION: Final = StoreSettings().max_events_per_session
_DEFAULT_LIFETIMES: Final = SessionSettings()

# Bounded digit runs: an overlong id is garbage, not a huge integer to allocate and compare.
_EVENT_ID: Final = re.compile(r"([0-9]{1,15})-([0-9]{1,15})")

# The columns :meth:`Sessions._record` reads, in its order (also the takeover's RETURNING).
_SELECT_SESSIONS: Final = (
    "SELECT tenant, sid_hash, sid_enc, protocol_version, client_info, state, created_at,"
    " last_seen, ended, owner_box, epoch FROM sessions"
)


#: Open sessions kept in memory (a few hundred bytes each).
SESSION_CACHE_SIZE = 10_000


def format_event_id(stream_seq: int, event_seq: int) -> str:
    return f"{stream_seq}-{event_seq}"


def parse_event_id(event_id: str) -> tuple[int, int] | None:
    match = _EVENT_ID.fullmatch(event_id)
    if match is None:
        return None
    return int(match[1]), int(match[2])


class Sessions:
    def __init__(
        self,
        db: Database,
        crypto: Crypto,
        clock: Callable[[], float],
        *,
        max_events_per_session: int = DEFAULT_MAX_EVENTS_PER_SESSION,
    ) -> None:
        if max_events_per_session < 1:
            raise ValueError("max_events_per_session must be at least 1")
        self._db = db
        self._crypto = crypto
        self._clock = clock
        self._max_events = max_events_per_session
        # Write-through cache of open sessions by lookup hash: every handshake-era request
        # reads its session, and a read through aiosqlite's one thread costs more than the rest
        # of the request. Invariants: it holds only sessions this box owns; every write to a
        # session in this class updates or drops its entry; another box writes a session only
        # after taking it over, which it announces, and the notice drops the entry here
        # (:meth:`join_fleet`). Until the notice arrives an entry may be stale, which the
        # epoch-conditional state writes make harmless: the first write refused re-reads.
        self._cache: OrderedDict[bytes, SessionRecord] = OrderedDict()
        #: This box's id, the owner of the sessions it creates or takes over ("" until
        #: :meth:`join_fleet`: a store that is no box's, e.g. in tests and tools).
        self._box_id = ""
        self._feed: ChangeFeed | None = None
        self._cache_size = SESSION_CACHE_SIZE
        self._idle_timeout_s = _DEFAULT_LIFETIMES.idle_timeout_s
        self._max_age_s = _DEFAULT_LIFETIMES.max_age_s

    def configure(
        self, *, idle_timeout_s: float, max_age_s: float, max_events_per_session: int
    ) -> None:
        """Set the lifetimes :meth:`get_session` holds sessions to and the events kept per
        session (at start, and again on SIGHUP; an append prunes to the new bound)."""
        if max_events_per_session < 1:
            raise ValueError("max_events_per_session must be at least 1")
        self._idle_timeout_s = idle_timeout_s
        self._max_age_s = max_age_s
        self._max_events = max_events_per_session

    def join_fleet(self, box_id: str, feed: ChangeFeed | None) -> Callable[[], None]:
        """Own sessions as ``box_id`` from now on, announce takeovers on ``feed``, and drop
        the cached copy of a session another box announces it took over (or ended).
        Returns the function that stops listening."""
        self._box_id = box_id
        self._feed = feed
        self._cache.clear()  # entries were owned under the previous id
        if feed is None:
            return lambda: None
        return feed.subscribe(TOPIC_SESSION, self._on_session_notice)

    def _on_session_notice(self, change: Change) -> None:
        parts = change.payload.split("\t")
        if len(parts) != 3:
            log.warning("ignoring a malformed %r notice from box %s", TOPIC_SESSION, change.origin)
            return
        _tenant, sid_hash_hex, owner = parts
        if owner == self._box_id:
            return  # this box's own takeover: its entry is the new owner's
        try:
            self._cache.pop(bytes.fromhex(sid_hash_hex), None)
        except ValueError:
            log.warning("ignoring a malformed %r notice from box %s", TOPIC_SESSION, change.origin)

    async def _announce(self, tenant: str, sid_hash: bytes) -> None:
        if self._feed is None:
            return
        try:
            # The lookup hash, never the id: a session id is a bearer secret of the client.
            await self._feed.publish(TOPIC_SESSION, f"{tenant}\t{sid_hash.hex()}\t{self._box_id}")
        except Exception:
            # The takeover is committed; a box that misses the notice serves from a stale copy
            # until its first state write is refused by the epoch check and re-reads.
            log.exception("could not announce a session takeover to the other boxes")

    def expired(self, record: SessionRecord, now: float) -> bool:
        """Past its idle or absolute lifetime: treated as gone before the cleaner deletes it."""
        return (
            now - record.last_seen > self._idle_timeout_s
            or now - record.created_at > self._max_age_s
        )

    def _remember(self, sid_hash: bytes, record: SessionRecord) -> None:
        self._cache[sid_hash] = record
        self._cache.move_to_end(sid_hash)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _sid_hash(self, tenant: str, session_id: str) -> bytes:
        return self._crypto.lookup("session", tenant, session_id)

    async def create_session(
        self, tenant: str, session_id: str, protocol_version: str, client_info: JsonObject
    ) -> None:
        sid_hash = self._sid_hash(tenant, session_id)
        seal = self._crypto
        now = self._clock()
        rows = await self._db.write_one(
            "INSERT INTO sessions (tenant, sid_hash, sid_enc, protocol_version, client_info,"
            " state, created_at, last_seen, owner_box, epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
            " ON CONFLICT (sid_hash) DO NOTHING RETURNING id",
            (
                tenant,
                sid_hash,
                seal.seal_text(session_id, "session", tenant, sid_hash, "sid"),
                protocol_version,
                seal.seal_json(client_info, "session", tenant, sid_hash, "client_info"),
                seal.seal_json({}, "session", tenant, sid_hash, "state"),
                now,
                now,
                self._box_id,
            ),
        )
        if not rows:
            raise StoreError(
                f"A session with this id already exists for tenant {tenant!r}; session ids must "
                "be fresh random values."
            )
        self._remember(
            sid_hash,
            SessionRecord(
                tenant=tenant,
                session_id=session_id,
                protocol_version=protocol_version,
                client_info=client_info,
                created_at=now,
                last_seen=now,
                ended=False,
                state={},
                owner_box=self._box_id,
                epoch=0,
            ),
        )

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord | None:
        """The session, or None when there is none or it has expired (past its idle or
        absolute lifetime), whether or not the background cleaner has deleted it yet."""
        sid_hash = self._sid_hash(tenant, session_id)
        record = self._cache.get(sid_hash)
        if record is None:
            async with self._db.read() as tx:
                row = await tx.one(_SELECT_SESSIONS + " WHERE sid_hash = ?", (sid_hash,))
            if row is None:
                return None
            record = self._record(row)
            if not record.ended and record.owner_box == self._box_id:
                self._remember(sid_hash, record)
        if self.expired(record, self._clock()):
            # The row stays for the cleaner (one delete for many); the cache entry goes, so
            # the next lookup reads the row and finds it expired again.
            self._cache.pop(sid_hash, None)
            return None
        return record

    async def list_sessions(self, tenant: str | None = None) -> list[SessionRecord]:
        async with self._db.read() as tx:
            rows = await tx.all(
                _SELECT_SESSIONS
                + " WHERE (CAST(?1 AS TEXT) IS NULL OR tenant = ?1) ORDER BY created_at, id",
                (tenant,),
            )
        return [self._record(row) for row in rows]

    async def claim_session(
        self, tenant: str, session_id: str, seen: SessionRecord
    ) -> SessionRecord:
        """The session as this box owns it: ``seen`` itself when it does already (no write);
        else taken over from ``seen``'s owner and epoch with one compare-and-set, announced.

        A lost race (another box took it over since ``seen`` was read) returns the row as it
        is now, owned by the winner: the caller serves from the winner's state and, should it
        need to write that state, claims again from there (see docs/scale-out.md for why).
        :class:`~smcp_box.errors.SessionNotFound` when the session ended meanwhile.
        """
        if seen.owner_box == self._box_id:
            return seen
        sid_hash = self._sid_hash(tenant, session_id)
        # RETURNING the whole row: the former owner may have written the state since ``seen``
        # was read (at the same epoch), and the new owner must serve what the row holds.
        row = await self._db.write_one(
            "UPDATE sessions SET owner_box = ?, epoch = epoch + 1, last_seen = ?"
            " WHERE sid_hash = ? AND owner_box = ? AND epoch = ? AND ended = 0"
            " RETURNING tenant, sid_hash, sid_enc, protocol_version, client_info, state,"
            " created_at, last_seen, ended, owner_box, epoch",
            (self._box_id, self._clock(), sid_hash, seen.owner_box, seen.epoch),
        )
        if row:
            record = self._record(row[0])
            self._remember(sid_hash, record)
            await self._announce(tenant, sid_hash)
            return record
        async with self._db.read() as tx:
            now_row = await tx.one(_SELECT_SESSIONS + " WHERE sid_hash = ?", (sid_hash,))
        if now_row is None or now_row[8]:
            self._cache.pop(sid_hash, None)
            raise _not_found(tenant)
        record = self._record(now_row)
        if record.owner_box == self._box_id:
            # Another request of this box won it (it announced the takeover).
            self._remember(sid_hash, record)
        return record

    def _record(self, row: Row) -> SessionRecord:
        tenant, sid_hash, sid_enc, version, client_info, state, created, seen, ended = row[:9]
        owner_box, epoch = row[9:]
        # The tenant column is clear text, but it is part of every AAD: a row whose tenant was
        # edited fails to decrypt instead of surfacing under another tenant.
        ctx = ("session", tenant, sid_hash)
        return SessionRecord(
            tenant=tenant,
            session_id=self._crypto.open_text(sid_enc, *ctx, "sid"),
            protocol_version=version,
            client_info=self._crypto.open_json(client_info, *ctx, "client_info"),
            created_at=created,
            last_seen=seen,
            ended=bool(ended),
            state=self._crypto.open_json(state, *ctx, "state"),
            owner_box=owner_box,
            epoch=int(epoch),
        )

    async def update_session_state(
        self, tenant: str, session_id: str, state: JsonObject, *, epoch: int | None = None
    ) -> None:
        """Replace the state and mark the session seen. With ``epoch`` (the writer's record's),
        only while this box owns the session at that epoch: else the cached copy is dropped and
        :class:`~smcp_box.errors.SessionMoved` raised, and the writer re-reads. Without, the
        write is unconditional (a store that is no fleet box's: tools and tests)."""
        sid_hash = self._sid_hash(tenant, session_id)
        sealed = self._crypto.seal_json(state, "session", tenant, sid_hash, "state")
        now = self._clock()
        if epoch is None:
            rows = await self._db.write_one(
                "UPDATE sessions SET state = ?, last_seen = ? WHERE sid_hash = ? AND ended = 0"
                " RETURNING id",
                (sealed, now, sid_hash),
            )
        else:
            rows = await self._db.write_one(
                "UPDATE sessions SET state = ?, last_seen = ? WHERE sid_hash = ? AND ended = 0"
                " AND owner_box = ? AND epoch = ? RETURNING id",
                (sealed, now, sid_hash, self._box_id, epoch),
            )
        if not rows:
            self._cache.pop(sid_hash, None)
            if epoch is not None and await self._is_open(sid_hash):
                raise SessionMoved(
                    f"This session of tenant {tenant!r} was taken over by another box since "
                    "this request read it; send the request again."
                )
            raise _not_found(tenant)
        cached = self._cache.get(sid_hash)
        if cached is not None:
            self._remember(sid_hash, replace(cached, state=dict(state), last_seen=now))

    async def _is_open(self, sid_hash: bytes) -> bool:
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT 1 FROM sessions WHERE sid_hash = ? AND ended = 0", (sid_hash,)
            )
        return row is not None

    async def end_session(self, tenant: str, session_id: str) -> bool:
        """Mark the session ended and drop its events; False if it was not open."""
        sid_hash = self._sid_hash(tenant, session_id)
        self._cache.pop(sid_hash, None)
        async with self._db.write() as tx:
            row = await tx.one(
                "UPDATE sessions SET ended = 1, last_seen = ? WHERE sid_hash = ? AND ended = 0"
                " RETURNING id",
                (self._clock(), sid_hash),
            )
            if row is None:
                return False
            # An ended session can never be resumed, so its events are dead weight.
            await tx.run("DELETE FROM streams WHERE session = ?", (row[0],))
        await self._announce(tenant, sid_hash)  # other boxes drop their copies too
        return True

    async def expire_sessions(self, idle_before: float, created_before: float | None = None) -> int:
        """Delete sessions (open or ended) last seen before ``idle_before``, or created before
        ``created_before``, with their events."""
        rows = await self._db.write_one(
            "DELETE FROM sessions WHERE last_seen < ?1 OR created_at < ?2 RETURNING id",
            (idle_before, float("-inf") if created_before is None else created_before),
        )
        if rows:
            self._cache.clear()
        return len(rows)

    async def count_open_sessions(self, tenant: str | None = None) -> int:
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT count(*) FROM sessions WHERE ended = 0"
                " AND (CAST(?1 AS TEXT) IS NULL OR tenant = ?1)",
                (tenant,),
            )
        return int(row[0]) if row else 0

    async def count_owned_sessions(self, owner_box: str) -> int:
        """Open sessions ``owner_box`` owns now (a box's figure in its heartbeat)."""
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT count(*) FROM sessions WHERE ended = 0 AND owner_box = ?", (owner_box,)
            )
        return int(row[0]) if row else 0

    async def append_event(self, tenant: str, session_id: str, stream_id: str, payload: str) -> str:
        sid_hash = self._sid_hash(tenant, session_id)
        stream_hash = self._crypto.lookup("stream", tenant, sid_hash, stream_id)
        payload_bytes = payload.encode()
        now = self._clock()
        async with self._db.write() as tx:
            session = await tx.one(
                "UPDATE sessions SET last_seen = ? WHERE sid_hash = ? AND ended = 0"
                " RETURNING id, event_count",
                (now, sid_hash),
            )
            if session is None:
                raise _not_found(tenant)
            session_pk, event_count = session
            stream = await tx.one(
                "UPDATE streams SET next_event = next_event + 1"
                " WHERE session = ? AND stream_hash = ? RETURNING id, seq, next_event - 1",
                (session_pk, stream_hash),
            )
            if stream is None:
                stream_enc = self._crypto.seal_text(
                    stream_id, "stream", tenant, sid_hash, stream_hash
                )
                stream = await tx.one(
                    "INSERT INTO streams (session, seq, stream_hash, stream_enc, next_event)"
                    " SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, 2 FROM streams WHERE session = ?"
                    " RETURNING id, seq, 1",
                    (session_pk, stream_hash, stream_enc, session_pk),
                )
                assert stream is not None
            stream_pk, stream_seq, event_seq = stream
            sealed = self._crypto.seal(
                payload_bytes, "event", tenant, sid_hash, stream_seq, event_seq
            )
            await tx.run(
                "INSERT INTO events (session, stream, seq, payload) VALUES (?, ?, ?, ?)",
                (session_pk, stream_pk, event_seq, sealed),
            )
            excess = event_count + 1 - self._max_events
            if excess > 0:
                await tx.run(
                    "DELETE FROM events WHERE id IN"
                    " (SELECT id FROM events WHERE session = ? ORDER BY id LIMIT ?)",
                    (session_pk, excess),
                )
        # The row was just marked seen: the cached copy must not look idler than the row, or a
        # session only receiving events would expire at lookup while the cleaner spares it.
        cached = self._cache.get(sid_hash)
        if cached is not None:
            self._cache[sid_hash] = replace(cached, last_seen=now)
        return format_event_id(stream_seq, event_seq)

    async def replay_events(
        self, tenant: str, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, str]]] | None:
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return None
        stream_seq, after_seq = parsed
        sid_hash = self._sid_hash(tenant, session_id)
        async with self._db.read() as tx:
            stream = await tx.one(
                "SELECT st.id, st.stream_hash, st.stream_enc, st.next_event"
                " FROM streams st JOIN sessions s ON s.id = st.session"
                " WHERE s.sid_hash = ? AND s.ended = 0 AND st.seq = ?",
                (sid_hash, stream_seq),
            )
            # An id is known only if this stream actually issued it; pruned events still count
            # (the client then gets what is left rather than a refusal).
            if stream is None or not 1 <= after_seq < stream[3]:
                return None
            rows = await tx.all(
                "SELECT seq, payload FROM events WHERE stream = ? AND seq > ? ORDER BY seq",
                (stream[0], after_seq),
            )
        stream_id = self._crypto.open_text(stream[2], "stream", tenant, sid_hash, stream[1])
        events = [
            (
                format_event_id(stream_seq, seq),
                self._crypto.open_text(payload, "event", tenant, sid_hash, stream_seq, seq),
            )
            for seq, payload in rows
        ]
        return stream_id, events


def _not_found(tenant: str) -> SessionNotFound:
    # Never echo the session id: it is a bearer secret of the client.
    return SessionNotFound(
        f"No open session with that id for tenant {tenant!r}; it ended or expired. Start a new "
        "session with initialize."
    )
