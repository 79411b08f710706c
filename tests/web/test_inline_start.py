"""start_inline: a coroutine's first step runs in the caller's task; one that waits is continued
by a task of its own, from where it waits, and cancelling that task reaches it there."""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.web.inline_start import Finished, start_inline


async def one_loop_turn() -> None:
    """Let the loop run every callback that is ready once, then come back (the yield that
    ``asyncio.sleep(0)`` gives, without a call that reads as a timed wait)."""
    turned: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(turned.set_result, None)
    await turned


async def test_a_coroutine_that_never_waits_gets_no_task() -> None:
    caller = asyncio.current_task()
    seen: list[asyncio.Task[object] | None] = []

    async def quick() -> int:
        seen.append(asyncio.current_task())
        return 7

    before = len(asyncio.all_tasks())
    started = start_inline(quick(), name="quick")
    assert started == Finished(7)
    assert seen == [caller]
    assert len(asyncio.all_tasks()) == before


async def test_a_coroutine_that_waits_is_continued_by_its_own_task() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    seen: list[asyncio.Task[object] | None] = []

    async def waits() -> str:
        seen.append(asyncio.current_task())
        got = await gate
        seen.append(asyncio.current_task())
        return got + "!"

    started = start_inline(waits(), name="waits")
    assert isinstance(started, asyncio.Task)
    assert started.get_name() == "waits"
    assert seen == [asyncio.current_task()]
    await one_loop_turn()
    assert not started.done()  # it waits for the same future, not resumed early
    gate.set_result("done")
    assert await started == "done!"
    assert seen[1] is started


async def test_cancelling_before_its_first_step_reaches_the_coroutine_where_it_waits() -> None:
    cleaned: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cleaned.append("cancelled where it waited")
            await one_loop_turn()  # cleanup may itself wait
            raise

    started = start_inline(waits(), name="waits")
    assert isinstance(started, asyncio.Task)
    started.cancel()  # before the task has run at all
    with pytest.raises(asyncio.CancelledError):
        await started
    assert started.cancelled()
    assert cleaned == ["cancelled where it waited"]


async def test_a_later_wait_and_cancel_behave_as_in_any_task() -> None:
    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def waits_twice() -> None:
        await first
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            cleaned.append("finally")

    started = start_inline(waits_twice(), name="twice")
    assert isinstance(started, asyncio.Task)
    first.set_result(None)
    await one_loop_turn()
    await one_loop_turn()
    started.cancel()
    with pytest.raises(asyncio.CancelledError):
        await started
    assert cleaned == ["finally"]


async def test_an_error_in_the_first_step_is_raised_to_the_caller() -> None:
    async def broken() -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        start_inline(broken(), name="broken")


async def test_an_error_after_the_first_wait_is_the_tasks() -> None:
    async def fails_later() -> None:
        await one_loop_turn()
        raise ValueError("later")

    started = start_inline(fails_later(), name="later")
    assert isinstance(started, asyncio.Task)
    with pytest.raises(ValueError, match="later"):
        await started
