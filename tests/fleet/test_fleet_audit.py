"""Audit across the fleet: three boxes each write their own hash chain while serving 200
concurrent audited calls; every chain verifies and no call's row is missing."""

from __future__ import annotations

import json

import pytest

from tests.fleet.support import AUDIT_CHAIN_PER_BOX, echo_many, failures, needs_fleet
from tests.support.fleet import Fleet
from tests.support.waiting import wait_until_sync

pytestmark = [
    pytest.mark.slow,
    *needs_fleet,
    pytest.mark.skipif(not AUDIT_CHAIN_PER_BOX, reason="one audit chain per box not built"),
]

CALLS_PER_BOX = 200


def tool_call_rows(fleet: Fleet) -> list[dict[str, object]]:
    out = fleet.box("box1").cli("audit", "export", "--event", "tool.call").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def test_three_boxes_under_concurrent_calls_keep_every_chain_whole(
    fleet: Fleet, utils_key: str
) -> None:
    before = len(tool_call_rows(fleet))
    total = CALLS_PER_BOX * len(fleet.boxes)
    outcomes = await echo_many(fleet.url("utils"), utils_key, total, concurrency=60)
    assert failures(outcomes) == []
    served = fleet.served("/t/utils/mcp", 200)
    assert all(served.values()), served

    # Rows are written in batches behind the replies: wait for all of them.
    rows: list[dict[str, object]] = []

    def all_written() -> bool:
        nonlocal rows
        rows = tool_call_rows(fleet)
        return len(rows) >= before + total

    wait_until_sync(all_written, what=f"{total} tool.call audit rows", timeout=60, interval=0.2)
    assert len(rows) == before + total
    # Each box chained the calls it served.
    by_box = {box: sum(1 for row in rows if row["box"] == box) for box in fleet.boxes}
    assert all(by_box.values()), by_box

    verified = fleet.box("box2").cli("audit", "verify", "--json", check=False)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert report["ok"] is True
    chains = {chain["box"]: chain for chain in report["chains"]}
    for box in fleet.boxes:
        assert chains[box]["ok"] is True
        assert chains[box]["rows"] >= by_box[box]
