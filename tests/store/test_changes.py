"""The in-process change feed (store/changes.py): what a single box uses, and the local half
of every fleet feed."""

from __future__ import annotations

import pytest

from smcp_box.seams import Change
from smcp_box.store.changes import MAX_PAYLOAD_BYTES, LocalChangeFeed


async def test_publish_reaches_listeners_of_its_topic_before_it_returns() -> None:
    feed = LocalChangeFeed("box_a")
    heard: list[Change] = []
    other: list[Change] = []
    feed.subscribe("credential", heard.append)
    feed.subscribe("tenant", other.append)
    await feed.publish("credential", "key:12")
    assert heard == [Change(topic="credential", payload="key:12", origin="box_a")]
    assert other == []


async def test_stopped_listener_hears_nothing_more() -> None:
    feed = LocalChangeFeed("box_a")
    heard: list[str] = []
    stop = feed.subscribe("tenant", lambda change: heard.append(change.payload))
    await feed.publish("tenant", "notes")
    stop()
    stop()  # twice is harmless
    await feed.publish("tenant", "notes")
    assert heard == ["notes"]


async def test_a_failing_listener_does_not_keep_the_change_from_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = LocalChangeFeed("box_a")
    heard: list[str] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    feed.subscribe("tenant", broken)
    feed.subscribe("tenant", lambda change: heard.append(change.payload))
    await feed.publish("tenant", "notes")
    assert heard == ["notes"]
    assert "change listener for 'tenant' failed" in caplog.text


async def test_oversized_payload_is_refused() -> None:
    feed = LocalChangeFeed("box_a")
    with pytest.raises(ValueError, match="exceeds"):
        await feed.publish("tenant", "x" * (MAX_PAYLOAD_BYTES + 1))
