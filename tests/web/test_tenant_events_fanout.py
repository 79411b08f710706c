"""Tenant notifications cross boxes through the change feed (web/tenant_events.py): two hubs
whose feeds are bridged stand in for two boxes (the PostgreSQL feed itself, and a GET stream
on a real second box: tests/fanout/)."""

from __future__ import annotations

from typing import Any

import pytest

from smcp_box.protocol.subscriptions import SUBSCRIPTION_ID_META_KEY, SubscriptionFilter
from smcp_box.seams import Change
from smcp_box.store.changes import (
    MAX_PAYLOAD_BYTES,
    TOPIC_LIST_CHANGED,
    TOPIC_RESOURCE_UPDATED,
    LocalChangeFeed,
)
from smcp_box.web.streams import SessionHub
from smcp_box.web.tenant_events import Listener, TenantEvents
from smcp_box.web.tool_schemas import ToolSchemas
from tests.support.waiting import wait_until

TOOLS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
URI = "blob:reports/2026-12.pdf"
UPDATED = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": URI}}


class RecordingStream:
    def __init__(self) -> None:
        self.notified: list[dict[str, Any]] = []

    async def notify(self, message: dict[str, Any]) -> None:
        self.notified.append(message)

    async def finish(self, reply: dict[str, Any]) -> None:
        self.notified.append(reply)


class Box:
    def __init__(self, box_id: str) -> None:
        self.feed = LocalChangeFeed(box_id)
        self.schemas = ToolSchemas()
        self.events = TenantEvents(SessionHub(), self.schemas, self.feed)
        self.stream = RecordingStream()
        granted = SubscriptionFilter(
            lists=frozenset({"toolsListChanged"}), resources=frozenset({URI})
        )
        self.events.add_listener(Listener("notes", "L1", granted, self.stream))  # type: ignore[arg-type]


def bridged() -> tuple[Box, Box]:
    """Box A's announcements reach box B's feed as another box's (what NOTIFY does)."""
    box_a, box_b = Box("box_a"), Box("box_b")
    for topic in (TOPIC_LIST_CHANGED, TOPIC_RESOURCE_UPDATED):
        box_a.feed.subscribe(topic, box_b.feed.deliver)
    return box_a, box_b


def plain(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` without the listen stream's subscription id."""
    params = dict(message.get("params", {}))
    meta = dict(params.pop("_meta", {}))
    assert meta.pop(SUBSCRIPTION_ID_META_KEY) == "L1"
    return (
        {**message, "params": params}
        if params
        else {k: v for k, v in message.items() if k != "params"}
    )


async def test_a_list_change_reaches_the_other_boxs_listener_once_and_its_own_once() -> None:
    box_a, box_b = bridged()
    heard: list[Change] = []
    box_a.feed.subscribe(TOPIC_LIST_CHANGED, heard.append)
    await box_a.events.publish("notes", TOOLS_CHANGED)
    assert heard == [Change(TOPIC_LIST_CHANGED, "notes\ttools", "box_a")]
    assert [plain(m) for m in box_a.stream.notified] == [TOOLS_CHANGED]
    await wait_until(lambda: len(box_b.stream.notified) == 1, what="box_b's listener")
    assert [plain(m) for m in box_b.stream.notified] == [TOOLS_CHANGED]
    # Box B forgets its cached tool schemas, as for its own module's change.
    assert "notes" in box_b.schemas._stale


async def test_a_resource_update_reaches_the_other_boxs_subscriber() -> None:
    box_a, box_b = bridged()
    await box_a.events.publish("notes", UPDATED)
    await wait_until(lambda: len(box_b.stream.notified) == 1, what="box_b's subscriber")
    assert [plain(m) for m in box_b.stream.notified] == [UPDATED]
    assert len(box_a.stream.notified) == 1


async def test_a_uri_too_long_to_announce_stays_on_its_box(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box_a, box_b = bridged()
    long_uri = "blob:" + "x" * MAX_PAYLOAD_BYTES
    message = {**UPDATED, "params": {"uri": long_uri}}
    await box_a.events.publish("notes", message)
    assert "too large to announce" in caplog.text
    assert box_b.stream.notified == []


async def test_an_unknown_list_kind_from_another_box_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box_b = Box("box_b")
    box_b.feed.deliver(Change(TOPIC_LIST_CHANGED, "notes\tgadgets", "box_a"))
    assert "unknown kind 'gadgets'" in caplog.text
    assert box_b.stream.notified == []


async def test_a_closed_hub_hears_nothing_more() -> None:
    box_a, box_b = bridged()
    await box_b.events.aclose()
    (ended,) = box_b.stream.notified  # the listen stream's result
    await box_a.events.publish("notes", TOOLS_CHANGED)
    await box_a.events.publish("notes", UPDATED)
    # A hub that still followed the feed would now hold a delivery task for each.
    assert box_b.events._delivering == set()
    assert box_b.stream.notified == [ended]
