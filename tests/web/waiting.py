"""Waiting in tests/web without sleeping for something to happen (or not happen).

A test waits for a condition on :class:`Changes` (the scripted seams call ``note()`` whenever
what they record changes, so the waiter wakes exactly then); state that nothing announces is
polled under a deadline with :func:`tests.support.waiting.wait_until`. Neither asserts on how
long anything took: the deadline only turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: How long a condition may take before the test fails (generous: CI machines are slow).
DEADLINE_S = 10.0


class Changes:
    """Wakes waiters whenever the owner's recorded state changes."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def note(self) -> None:
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within_s: float = DEADLINE_S) -> None:
        """Return once ``predicate()`` holds; fail after ``within_s`` seconds."""
        try:
            async with asyncio.timeout(within_s):
                # Single-threaded: nothing can change between the check and the clear.
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError("condition not reached before the deadline") from None
