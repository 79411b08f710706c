"""The in-process change feed (store/changes.py): what a single box uses, and the local half
of every fleet feed."""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.seams import Change
from smcp_box.store.changes import MAX_PAYLOAD_BYTES, CoalescedJob, LocalChangeFeed
from tests.support.waiting import wait_until


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


async def test_a_coalesced_job_runs_once_more_for_triggers_during_a_run() -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    calls: list[int] = []

    async def job() -> None:
        calls.append(len(calls))
        started.set()
        await release.wait()

    coalesced = CoalescedJob(job, "testing")
    coalesced.trigger()
    await asyncio.wait_for(started.wait(), 10)
    # Three changes while the first run is busy: one more run covers them all.
    for _ in range(3):
        coalesced.trigger()
    release.set()
    await wait_until(lambda: coalesced.runs == 2, what="the second run")
    assert calls == [0, 1]
    await coalesced.close()


async def test_a_failing_coalesced_job_is_logged_and_runs_again_next_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[str] = []

    async def job() -> None:
        attempts.append("run")
        if len(attempts) == 1:
            raise RuntimeError("database away")

    coalesced = CoalescedJob(job, "reloading tenants")
    coalesced.trigger(None)
    await wait_until(lambda: coalesced.runs == 1, what="the failing run")
    assert "reloading tenants after another box's change failed" in caplog.text
    coalesced.trigger(None)
    await wait_until(lambda: coalesced.runs == 2, what="the next run")
    assert attempts == ["run", "run"]
    await coalesced.close()
