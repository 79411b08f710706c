"""The fleet as admins see it, on one throwaway PostgreSQL: two stores stand for two boxes
(tests/store/contract has the area's own contract); the test clock makes one of them gone.

The admin API's status payload and ``smcp-box status`` are built from
:func:`~smcp_box.admin.fleet_routes.fleet_status`, shown here with its text form.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Iterator

import pytest

from smcp_box import __version__
from smcp_box.admin.cli_format import fleet_lines
from smcp_box.admin.fleet_routes import fleet_status
from smcp_box.store import Store
from smcp_box.store.fleet import Beat
from tests.store.conftest import FakeClock
from tests.support.postgres import (
    throwaway_postgres_or_skip,
)

DEAD_AFTER_S = 10.0
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    yield from throwaway_postgres_or_skip()


@pytest.fixture
async def two_boxes(postgres_dsn: str) -> AsyncIterator[tuple[Store, Store, FakeClock]]:
    clock = FakeClock()
    one = await Store.open_postgres(postgres_dsn, KEY, clock=clock)
    two = await Store.open_postgres(postgres_dsn, KEY, clock=clock)
    try:
        yield one, two, clock
    finally:
        await one.close()
        await two.close()


async def test_status_shows_both_boxes_then_one_gone(
    two_boxes: tuple[Store, Store, FakeClock],
) -> None:
    one, two, clock = two_boxes
    await one.fleet.claim(Beat("b1", "i1", "10.0.0.1:8765", __version__), dead_after_s=10)
    await two.fleet.claim(Beat("b2", "i2", "10.0.0.2:8765", __version__), dead_after_s=10)
    await two.fleet.beat(Beat("b2", "i2", "10.0.0.2:8765", __version__, sessions=4))

    boxes, database = await fleet_status(one, dead_after_s=DEAD_AFTER_S, box_id="b1", instance="i1")
    assert [(b["box_id"], b["status"], b["this_box"]) for b in boxes] == [
        ("b1", "up", True),
        ("b2", "up", False),
    ]
    assert boxes[1]["sessions"] == 4
    assert (database["backend"], database["reachable"], database["error"]) == (
        "postgres",
        True,
        None,
    )
    assert database["location"] == urllib.parse.urlsplit(database["location"]).geturl()
    assert float(database["latency_ms"]) >= 0.0

    # b2 falls silent; b1 keeps beating.
    clock.advance(DEAD_AFTER_S + 1)
    await one.fleet.beat(Beat("b1", "i1", "10.0.0.1:8765", __version__, state="draining"))
    boxes, database = await fleet_status(two, dead_after_s=DEAD_AFTER_S, box_id="b2", instance="i2")
    assert [(b["box_id"], b["status"]) for b in boxes] == [("b1", "draining"), ("b2", "gone")]
    text = "\n".join(
        fleet_lines(
            {
                "box": {"box_id": "b2", "address": "10.0.0.2:8765", "draining": False},
                "fleet": boxes,
                "database": database,
            }
        )
    )
    assert f"database: postgres {database['location']}, " in text
    # One row per box (the asking box's marked with a star): address, status, beat age.
    rows = [line.split() for line in text.splitlines() if line.startswith(("* ", "  "))]
    assert rows == [
        ["b1", "10.0.0.1:8765", "draining", "0", "s", "0"],
        ["*", "b2", "10.0.0.2:8765", "gone", "11", "s", "4"],
    ]


async def test_an_unreachable_database_is_reported_not_raised(
    two_boxes: tuple[Store, Store, FakeClock],
) -> None:
    one, _, _ = two_boxes
    await one.close()
    boxes, database = await fleet_status(one, dead_after_s=DEAD_AFTER_S, box_id="b1", instance="i1")
    assert boxes == []
    assert database["reachable"] is False
    assert "closed" in str(database["error"])
    text = "\n".join(
        fleet_lines(
            {
                "box": {"box_id": "b1", "address": "x:1", "draining": False},
                "fleet": boxes,
                "database": database,
            }
        )
    )
    assert "UNREACHABLE" in text
