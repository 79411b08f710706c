"""Waiting for something to happen, without sleeping for "long enough".

Tests wait on events where the code under test offers one. Where it does not, they poll a
condition with :func:`wait_until` (or :func:`wait_until_sync` outside an event loop): the
condition is checked every few milliseconds until it holds, and a deadline that is only a test
timeout (never an assertion about speed) turns a hang into a failure naming what was awaited.

This module is the one place in the tests that may call ``asyncio.sleep`` / ``time.sleep``
(see tests/test_no_sleeps.py).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

#: Default deadline: generous, so that a loaded CI machine never hits it in a passing test.
DEFAULT_TIMEOUT_S = 10.0
#: Default pause between two checks of the condition.
DEFAULT_INTERVAL_S = 0.005


class WaitTimeout(AssertionError):
    """The awaited condition did not hold before the deadline."""


def _failure(what: str, timeout: float, detail: Callable[[], object] | None) -> WaitTimeout:
    message = f"timed out after {timeout:g} s waiting for {what}"
    if detail is not None:
        message += f"\n{detail()}"
    return WaitTimeout(message)


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,  # noqa: ASYNC109 - the deadline is the helper's point
    interval: float = DEFAULT_INTERVAL_S,
    detail: Callable[[], object] | None = None,
) -> None:
    """Return as soon as ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds.

    ``predicate`` may be a plain function or a coroutine function. ``detail``, when given, is
    called on failure and its result appended to the message (a server log, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, detail)
        await asyncio.sleep(interval)


def wait_until_sync(
    predicate: Callable[[], bool],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_INTERVAL_S,
    detail: Callable[[], object] | None = None,
) -> None:
    """The blocking twin of :func:`wait_until`, for code outside an event loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, detail)
        time.sleep(interval)
