"""Deadlines for a request's phases (reading its body, sending its reply) on one coarse timer.

Every MCP POST bounds two phases, each by seconds to minutes (``body_timeout_s``, Quart's
``RESPONSE_TIMEOUT``), and nearly every request finishes both in well under a millisecond.
``asyncio.timeout`` gives each phase a timer of its own in the loop's heap (scheduled,
cancelled, and later skipped over) and a context object with its own bookkeeping: twice per
request, that cost about as much as writing the reply's head. :class:`Deadlines` keeps the
armed phases in a dict and looks at them from one timer that runs only while some are armed,
every :data:`RESOLUTION_S` (sooner for a phase shorter than that), so a phase ends up to that
much after its deadline; none of these deadlines needs more precision.

The semantics are ``asyncio.timeout``'s: a phase past its deadline has its task cancelled,
and the block ends with ``TimeoutError`` instead of the cancellation; a cancellation from
elsewhere (the client left, the server stops) passes through as ``CancelledError``.

Invariant: a :class:`Deadline` is in its owner's ``_armed`` exactly while its block runs.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Final

#: How often the armed deadlines are looked at while any is armed, in seconds.
RESOLUTION_S: Final = 0.25


class Deadline:
    """One phase's deadline: a ``with`` block in a task (see :meth:`Deadlines.within`)."""

    __slots__ = ("_cancelling", "_owner", "_task", "expired", "when")

    def __init__(self, owner: Deadlines, task: asyncio.Task[object], when: float) -> None:
        self._owner = owner
        self._task = task
        self.when = when
        #: Set when the deadline passed and the task was cancelled for it.
        self.expired = False
        self._cancelling = 0

    def __enter__(self) -> Deadline:
        self._cancelling = self._task.cancelling()
        self._owner._arm(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._owner._armed.pop(self, None)
        if not self.expired:
            return
        # As asyncio.timeout: the cancellation this deadline caused is taken back; if it was
        # the only one, the block ends with TimeoutError.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def expire(self) -> None:
        if not self.expired:
            self.expired = True
            self._task.cancel()


class Deadlines:
    """The armed deadlines of one event loop's requests, looked at by one timer."""

    def __init__(self, resolution_s: float = RESOLUTION_S) -> None:
        self.resolution_s = resolution_s
        #: Used as an ordered set.
        self._armed: dict[Deadline, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def within(self, seconds: float | None) -> Deadline | _NoDeadline:
        """A ``with`` block of the running task that ends with ``TimeoutError`` once
        ``seconds`` have passed (None: no deadline)."""
        if seconds is None:
            return _NO_DEADLINE
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.within needs a running task")
        return Deadline(self, task, task.get_loop().time() + seconds)

    @property
    def armed(self) -> int:
        return len(self._armed)

    def _arm(self, deadline: Deadline) -> None:
        self._armed[deadline] = None
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._schedule(min(deadline.when, loop.time() + self.resolution_s))
        elif deadline.when < self._timer_at:
            # Shorter than the next look: look at its time (rare; most phases are long).
            self._timer.cancel()
            self._schedule(deadline.when)

    def _schedule(self, when: float) -> None:
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_at(when, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        if not self._armed:
            return  # nothing armed: no timer until the next phase starts
        loop = asyncio.get_running_loop()
        now = loop.time()
        soonest = now + self.resolution_s
        for deadline in list(self._armed):
            if deadline.when <= now:
                self._armed.pop(deadline, None)
                deadline.expire()
            elif deadline.when < soonest:
                soonest = deadline.when
        if self._armed:
            self._schedule(soonest)


class _NoDeadline:
    """``within(None)``: a block with no deadline."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_DEADLINE: Final = _NoDeadline()
