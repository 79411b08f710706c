"""Hostile modules through the whole box: each fault is a clear JSON-RPC error naming its limit,
the tenant keeps serving, and other tenants are served while the fault runs."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import modern_call_tool
from tests.ops.support import busy_calls
from tests.support.waiting import wait_until


@pytest.mark.parametrize(
    ("tenant", "tool", "code", "words"),
    [
        ("faults", "spin", -32052, "wall-clock"),
        ("faults-fuel", "spin", -32051, "fuel"),
        ("faults", "grow", -32053, "memory"),
        ("faults", "trap", -32050, "unreachable"),
        # C keeps its stack in linear memory: overflowing it is an out-of-bounds access.
        ("faults", "recurse", -32050, "out of bounds"),
    ],
)
async def test_fault_is_a_clear_error_and_the_tenant_recovers(
    box: BoxProcess, keys: dict[str, str], tenant: str, tool: str, code: int, words: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await modern_call_tool(http, box.url(tenant), keys[tenant], tool, {})
        assert reply["error"]["code"] == code, reply
        assert words in reply["error"]["message"].lower(), reply
        again = await modern_call_tool(http, box.url(tenant), keys[tenant], "ok", {})
        assert again["result"]["content"][0]["text"] == "still serving"


async def test_other_tenants_are_served_during_a_runaway_call(
    box: BoxProcess, keys: dict[str, str]
) -> None:
    tenant = "faults-runaway"  # spins until its client goes away: its limit is a minute

    async def running() -> bool:
        return await busy_calls(box.base_url, tenant) == 1

    async with httpx.AsyncClient(timeout=30) as http:
        runaway = asyncio.create_task(
            modern_call_tool(http, box.url(tenant), keys[tenant], "spin", {})
        )
        await wait_until(running, what="the runaway call to be running", detail=box.log)
        for i in range(5):
            reply = await modern_call_tool(
                http, box.url("utils"), keys["utils"], "hash", {"text": str(i)}, request_id=i
            )
            assert "result" in reply
        assert not runaway.done(), "the runaway call ended before the other tenant was served"
        # Its client gives up: the box stops the wasm and frees the slot.
        runaway.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runaway

    async def stopped() -> bool:
        return await busy_calls(box.base_url, tenant) == 0

    await wait_until(stopped, what="the abandoned call to be stopped", detail=box.log)
