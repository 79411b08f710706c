"""The PostgreSQL change feed (store/pg_notify.py): two feeds on one throwaway server stand in
for two boxes of a fleet."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.errors import StoreError
from smcp_box.seams import Change
from smcp_box.store.changes import (
    MAX_PAYLOAD_BYTES,
    TOPIC_CREDENTIAL,
    TOPIC_RESYNC,
    TOPIC_TENANT,
)
from smcp_box.store.pg_notify import PgChangeFeed, decode, encode
from tests.support.postgres import (
    throwaway_postgres_or_skip,
)
from tests.support.waiting import wait_until

_channels = itertools.count(1)
#: Opens a started feed for the named box (keyword arguments go to PgChangeFeed).
OpenFeed = Callable[..., Awaitable[PgChangeFeed]]


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    yield from throwaway_postgres_or_skip()


@pytest.fixture
async def open_feed(postgres_dsn: str) -> AsyncIterator[OpenFeed]:
    """Open a started feed for a box on this test's own channel; all closed at the end."""
    channel = f"test_changes_{next(_channels)}"
    opened: list[PgChangeFeed] = []

    async def make(box_id: str, **kwargs: float) -> PgChangeFeed:
        feed = PgChangeFeed(postgres_dsn, box_id, channel=channel, **kwargs)
        await feed.start()
        opened.append(feed)
        return feed

    yield make
    for feed in opened:
        await feed.close()


async def terminate_listener(feed: PgChangeFeed, dsn: str) -> None:
    """End ``feed``'s connection from the server's side, as an admin or a failover would."""
    import asyncpg

    assert feed._conn is not None
    pid = feed._conn.get_server_pid()
    admin = await asyncpg.connect(dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


def recorder(feed: PgChangeFeed, *topics: str) -> list[Change]:
    heard: list[Change] = []
    for topic in topics:
        feed.subscribe(topic, heard.append)
    return heard


async def test_a_change_reaches_the_other_box_and_its_own_box_once(open_feed: OpenFeed) -> None:
    box_a = await open_feed("box_a")
    box_b = await open_feed("box_b")
    heard_a = recorder(box_a, TOPIC_CREDENTIAL)
    heard_b = recorder(box_b, TOPIC_CREDENTIAL)
    await box_a.publish(TOPIC_CREDENTIAL, "apikey:00112233")
    change = Change(topic=TOPIC_CREDENTIAL, payload="apikey:00112233", origin="box_a")
    # Its own listeners hear it before publish returns.
    assert heard_a == [change]
    await wait_until(lambda: heard_b == [change], what="box_b to hear box_a's change")
    # A marker after it: once box_a hears box_b's marker, box_a's own notice (which PostgreSQL
    # delivers to its sender too, and earlier) has been received and skipped.
    await box_b.publish(TOPIC_CREDENTIAL, "marker")
    await wait_until(lambda: len(heard_a) == 2, what="box_a to hear box_b's marker")
    assert [c.payload for c in heard_a] == ["apikey:00112233", "marker"]


async def test_changes_arrive_in_publish_order_and_only_on_their_topic(open_feed: OpenFeed) -> None:
    box_a = await open_feed("box_a")
    box_b = await open_feed("box_b")
    tenants = recorder(box_b, TOPIC_TENANT)
    credentials = recorder(box_b, TOPIC_CREDENTIAL)
    for number in range(200):
        topic = TOPIC_TENANT if number % 2 else TOPIC_CREDENTIAL
        await box_a.publish(topic, str(number))
    await wait_until(lambda: len(tenants) + len(credentials) == 200, what="all 200 changes")
    assert [int(c.payload) for c in tenants] == list(range(1, 200, 2))
    assert [int(c.payload) for c in credentials] == list(range(0, 200, 2))


async def test_three_boxes_each_hear_the_others(open_feed: OpenFeed) -> None:
    feeds = [await open_feed(f"box_{n}") for n in range(3)]
    heard = [recorder(feed, TOPIC_TENANT) for feed in feeds]
    for feed in feeds:
        await feed.publish(TOPIC_TENANT, feed.box_id)
    for index, changes in enumerate(heard):
        await wait_until(lambda changes=changes: len(changes) == 3, what=f"box_{index} to hear 3")
        assert sorted(c.origin for c in changes) == ["box_0", "box_1", "box_2"]


async def test_payload_at_the_limit_crosses_and_one_over_is_refused(open_feed: OpenFeed) -> None:
    box_a = await open_feed("box_a")
    box_b = await open_feed("box_b")
    heard = recorder(box_b, TOPIC_TENANT)
    # Two-byte characters and tabs: the limit is in UTF-8 bytes, before JSON escaping.
    largest = ("é" * (MAX_PAYLOAD_BYTES // 2 - 50)) + "\t" * 100
    assert len(largest.encode()) == MAX_PAYLOAD_BYTES
    await box_a.publish(TOPIC_TENANT, largest)
    await wait_until(lambda: len(heard) == 1, what="the largest payload to arrive")
    assert heard[0].payload == largest
    with pytest.raises(ValueError, match=f"exceeds {MAX_PAYLOAD_BYTES} bytes"):
        await box_a.publish(TOPIC_TENANT, "x" * (MAX_PAYLOAD_BYTES + 1))


async def test_a_payload_escaping_past_notify_size_is_a_resync(open_feed: OpenFeed) -> None:
    box_a = await open_feed("box_a")
    box_b = await open_feed("box_b")
    here = recorder(box_a, TOPIC_TENANT)
    there = recorder(box_b, TOPIC_TENANT, TOPIC_RESYNC)
    # Control characters JSON writes as \u0001: six bytes each.
    awkward = "\x01" * 2_000
    await box_a.publish(TOPIC_TENANT, awkward)
    assert [c.payload for c in here] == [awkward]
    await wait_until(lambda: len(there) == 1, what="box_b to be told to resync")
    assert there[0] == Change(topic=TOPIC_RESYNC, payload="", origin="box_a")


async def test_reconnect_after_the_listener_is_killed_delivers_a_resync(
    open_feed: OpenFeed, postgres_dsn: str
) -> None:
    box_a = await open_feed("box_a", reconnect_first_s=0.01)
    box_b = await open_feed("box_b")
    resyncs = recorder(box_a, TOPIC_RESYNC)
    tenants = recorder(box_a, TOPIC_TENANT)
    await terminate_listener(box_a, postgres_dsn)
    await wait_until(lambda: len(resyncs) == 1, what="box_a to resync after reconnecting")
    assert resyncs[0] == Change(topic=TOPIC_RESYNC, payload="", origin="box_a")
    assert box_a.reconnects == 1
    # Listening again: box_b's next change reaches box_a.
    await box_b.publish(TOPIC_TENANT, "notes")
    await wait_until(lambda: [c.payload for c in tenants] == ["notes"], what="notes on box_a")


async def test_changes_published_while_disconnected_are_sent_after_reconnecting(
    open_feed: OpenFeed, postgres_dsn: str
) -> None:
    box_a = await open_feed("box_a", reconnect_first_s=0.01)
    box_b = await open_feed("box_b")
    heard_b = recorder(box_b, TOPIC_TENANT)
    heard_a = recorder(box_a, TOPIC_TENANT)
    # The connection goes before publish notices: the first send fails.
    await terminate_listener(box_a, postgres_dsn)
    for name in ("one", "two", "three"):
        await box_a.publish(TOPIC_TENANT, name)
    # Local listeners heard them at once, whatever the connection.
    assert [c.payload for c in heard_a] == ["one", "two", "three"]
    await wait_until(
        lambda: [c.payload for c in heard_b] == ["one", "two", "three"],
        what="box_b to get box_a's changes, in order, once box_a reconnected",
    )


async def test_start_fails_naming_the_server_when_it_cannot_connect(tmp_path: Path) -> None:
    feed = PgChangeFeed(f"postgresql://nobody@/nowhere?host={tmp_path}", "box_a")
    with pytest.raises(StoreError, match="change feed's connection to PostgreSQL"):
        await feed.start()
    await feed.close()


def test_envelope_round_trip_and_foreign_notices_are_ignored() -> None:
    change = Change(topic="tenant", payload="notes\tx", origin="box_a")
    assert decode(encode(change)) == change
    assert decode("not json") is None
    assert decode('{"topic": "tenant"}') is None
    assert decode('["tenant", "x", "box_a"]') is None


async def test_a_connection_that_stops_answering_pings_is_replaced(
    open_feed: OpenFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    box_a = await open_feed("box_a", ping_interval_s=0.05, reconnect_first_s=0.01)
    resyncs = recorder(box_a, TOPIC_RESYNC)
    assert box_a._conn is not None
    silent = box_a._conn

    import asyncpg

    fetchval = asyncpg.Connection.fetchval

    async def no_answer_from_silent(conn: Any, *args: Any, **kwargs: Any) -> Any:
        if conn is silent:
            raise TimeoutError
        return await fetchval(conn, *args, **kwargs)

    # A drop no FIN announced: the old connection looks open but never answers.
    monkeypatch.setattr(asyncpg.Connection, "fetchval", no_answer_from_silent)
    await wait_until(lambda: len(resyncs) == 1, what="a resync after a failed ping")
    assert box_a._conn is not silent
    assert box_a.connected


async def test_an_overflowing_outbox_sends_a_resync_then_what_it_kept(
    open_feed: OpenFeed, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    box_b = await open_feed("box_b")
    heard = recorder(box_b, TOPIC_TENANT, TOPIC_RESYNC)
    monkeypatch.setattr("smcp_box.store.pg_notify.OUTBOX_LIMIT", 2)
    # Not connected yet: everything waits in the outbox, which keeps the newest two.
    box_a = PgChangeFeed(postgres_dsn, "box_a", channel=box_b._channel)
    for name in ("one", "two", "three", "four"):
        await box_a.publish(TOPIC_TENANT, name)
    try:
        await box_a.start()
        await box_a._flush()
        await wait_until(lambda: len(heard) == 3, what="the resync and the two kept")
    finally:
        await box_a.close()
    assert [(c.topic, c.payload) for c in heard] == [
        (TOPIC_RESYNC, ""),
        (TOPIC_TENANT, "three"),
        (TOPIC_TENANT, "four"),
    ]
