"""Run a coroutine's first step in the calling task; give it a task of its own only if it waits.

Why: a ``tools/call`` whose module answers inline (most do, see
``Sandbox.call_inline``) never waits on the event loop, yet a task per call cost a task object,
two loop round trips and a wake-up of the handler (about a twentieth of a request's CPU). Python
3.12's eager tasks do this; 3.11 has none, so :func:`start_inline` steps the coroutine itself.

Invariants:

- A coroutine that finishes in its first step never gets a task: its result is returned.
- One that waits is continued by a new task from exactly where it waits: the task first waits
  for the future the coroutine is waiting for, then resumes it; cancelling that task, even
  before its first step, raises ``CancelledError`` inside the coroutine where it waits (so its
  ``except``/``finally`` run), as cancelling an ordinary task would.
- Only for coroutines that hold nothing bound to the current task across a wait: during the
  first step ``asyncio.current_task()`` is the caller's, so an ``asyncio.timeout`` entered
  there and still open at the first wait would cancel the caller, not the new task. The call
  path holds none (the handshake era's input rounds wait with a deadline of their own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Finished(Generic[T]):
    """The coroutine finished in its first step, with ``result``."""

    result: T


class _Continuation(Coroutine[Any, Any, T]):
    """Hands the task the future a started coroutine waits for, then drives the coroutine.

    A task drives it like any coroutine (``send``/``throw``); the first ``send`` yields the
    pending future instead of resuming, so the task waits for it first.
    """

    def __init__(self, coro: Coroutine[Any, Any, T], pending: Any) -> None:
        self._coro = coro
        self._pending = pending
        self._started = False
        # Names the task's coroutine in reprs and debug output as the original's.
        self.__qualname__ = getattr(coro, "__qualname__", type(coro).__qualname__)

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            return self._pending
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        self._started = True
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:
        # Never awaited (a task drives it); present to be a Coroutine for asyncio's checks.
        raise TypeError("a continuation is driven by its task, not awaited")


def start_inline(coro: Coroutine[Any, Any, T], *, name: str) -> Finished[T] | asyncio.Task[T]:
    """Step ``coro`` here: its result if it finished, else the task that continues it.

    An exception the first step raises is raised here.
    """
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return Finished(stop.value)
    return asyncio.get_running_loop().create_task(_Continuation(coro, pending), name=name)
