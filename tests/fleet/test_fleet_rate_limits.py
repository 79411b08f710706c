"""Rate limits across boxes: HAProxy's stick tables count each credential (by its SHA-256)
and each client address for the whole fleet, so a limit of 20 lets exactly 20 calls through
however many boxes serve them, and one key's excess costs another key nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.support import echo_many, failures, needs_fleet
from tests.support.fleet import Fleet, fresh_database, running_fleet
from tests.support.haproxy import stats_query

pytestmark = [pytest.mark.slow, *needs_fleet]

PER_KEY = 20
PER_IP = 45
#: Long enough that no run of this test outlasts one window, even on a loaded machine.
WINDOW_S = 120


@pytest.fixture(scope="module", params=[1, 3], ids=["1-box", "3-boxes"])
def limited_fleet(
    request: pytest.FixtureRequest, fleet_postgres: str, fleet_tenants: Path, fleet_cache: Path
) -> Iterator[Fleet]:
    limits = [
        f"--rate-per-key={PER_KEY}",
        f"--rate-per-ip={PER_IP}",
        f"--rate-window={WINDOW_S}",
    ]
    with running_fleet(
        fleet_tenants,
        dsn=fresh_database(fleet_postgres),
        box_ids=[f"box{n}" for n in range(1, request.param + 1)],
        lb_args=limits,
        cache_dir=fleet_cache,
    ) as running:
        yield running


async def test_per_key_and_per_address_limits_hold_for_the_whole_fleet(
    limited_fleet: Fleet,
) -> None:
    fleet = limited_fleet
    first, second, third = (fleet.create_key("utils") for _ in range(3))
    url = fleet.url("utils")

    # 30 calls with one key: exactly 20 through, the rest refused by HAProxy with 429.
    outcomes = await echo_many(url, first, 30, concurrency=5)
    assert sum(1 for o in outcomes if o.status == 200 and o.echoed) == PER_KEY
    refused = [o for o in outcomes if o.status == 429]
    assert len(refused) == 30 - PER_KEY
    assert all("too many requests from this credential" in o.body for o in refused)
    # The boxes served exactly the calls let through, spread over all of them.
    served = fleet.served("/t/utils/mcp", 200)
    assert sum(served.values()) == PER_KEY
    assert all(served.values()), served

    # Another key is unaffected (the address has made 30 requests, 40 after these).
    assert failures(await echo_many(url, second, 10, concurrency=5)) == []

    # The address limit (45) counts every key: 5 more pass, then 429 for this address.
    outcomes = await echo_many(url, third, 10, concurrency=1)
    assert [o.status for o in outcomes] == [200] * 5 + [429] * 5
    assert "too many requests from this address" in outcomes[-1].body

    # HAProxy keeps the credential's hash only: never the key, never the header.
    table = stats_query(fleet.lb.stats_socket, "show table rate_per_key")
    for key in (first, second, third):
        assert key not in table
        digest = hashlib.sha256(f"Bearer {key}".encode()).hexdigest().upper()
        assert f"key={digest}" in table
