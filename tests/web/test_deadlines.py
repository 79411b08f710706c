"""The request phases' deadlines (smcp_box/web/deadlines.py): asyncio.timeout's semantics on
one coarse timer."""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.web.deadlines import Deadlines


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


async def _one_turn() -> None:
    """Let the loop run once (the block awaits something that is soon done)."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


async def test_a_phase_past_its_deadline_ends_with_timeout_error() -> None:
    deadlines = Deadlines(resolution_s=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        with deadlines.within(0.02):
            await _forever()
    assert loop.time() - started >= 0.02
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the cancellation it caused was taken back
    assert deadlines.armed == 0


async def test_a_long_deadline_is_kept_at_the_resolution() -> None:
    deadlines = Deadlines(resolution_s=0.03)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        with deadlines.within(0.1):  # several looks before it passes
            await _forever()
    elapsed = loop.time() - started
    assert 0.1 <= elapsed < 5.0


async def test_a_phase_done_in_time_is_never_cancelled_later() -> None:
    deadlines = Deadlines(resolution_s=0.01)
    loop = asyncio.get_running_loop()
    with deadlines.within(0.02):
        await _one_turn()
    assert deadlines.armed == 0
    # Long after the deadline would have passed, the task runs on undisturbed.
    later = loop.create_future()
    loop.call_later(0.1, later.set_result, "done")
    assert await later == "done"


async def test_another_cancellation_passes_through() -> None:
    deadlines = Deadlines(resolution_s=0.01)
    entered = asyncio.Event()

    async def phase() -> None:
        with deadlines.within(60):
            entered.set()
            await _forever()

    task = asyncio.create_task(phase())
    await entered.wait()
    task.cancel()  # the client left: not a timeout
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.armed == 0


async def test_many_phases_each_end_at_their_own_deadline() -> None:
    deadlines = Deadlines(resolution_s=0.02)
    loop = asyncio.get_running_loop()
    ended: dict[float, float] = {}
    started = loop.time()

    async def phase(seconds: float) -> None:
        try:
            with deadlines.within(seconds):
                await _forever()
        except TimeoutError:
            ended[seconds] = loop.time() - started

    await asyncio.gather(*(phase(s) for s in (0.09, 0.01, 0.05, 0.03)))
    assert sorted(ended, key=ended.__getitem__) == [0.01, 0.03, 0.05, 0.09]
    assert all(ended[s] >= s for s in ended)
    assert deadlines.armed == 0


async def test_no_deadline_is_no_timer() -> None:
    deadlines = Deadlines()
    with deadlines.within(None):
        await _one_turn()
    assert deadlines.armed == 0
