"""Hypercorn's keep-alive (header) deadline kept by a timer instead of a task per request.

Hypercorn keeps a connection's keep-alive deadline as a task (``AsyncioSingleTask``): when a
request head arrives the connection cancels and awaits it, and when the reply ends it spawns a
new one, which waits on the worker's ``terminated`` event under ``asyncio.wait_for`` (a second
task). Measured on this machine, that cycle costs about 18 µs per request, more than parsing
the request and writing its reply together. :class:`IdleDeadline` keeps the same deadline with
one timer handle that a request cancels and the end of its reply arms again (about 2 µs).

It must keep both ways Hypercorn's task ends an idle connection:

* **the deadline passes** (no complete request head within ``keep_alive_timeout`` of the
  connection opening or its last reply ending): the connection's own ``on_deadline`` runs
  (the guard counts it) and the connection is closed, from a task in its task group, as
  Hypercorn's task closes it;
* **the server stops** while the connection is idle: it is closed at once (not left to the
  graceful timeout, which would cancel its task). A task would notice by waiting on
  ``terminated``; a timer cannot wait, so :class:`TerminatedEvent` (the worker context's
  ``terminated``, see :class:`GuardedWorkerContext`) calls every armed deadline when it is set,
  and a deadline armed after that closes its connection at once.

Invariants: a deadline is in its event's ``armed`` set exactly while its timer is pending; once
its connection starts closing (:meth:`IdleDeadline.retire`) or it has closed it, it never arms
again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio.worker_context import AsyncioSingleTask, EventWrapper, WorkerContext
from hypercorn.config import Config


class TerminatedEvent(EventWrapper):
    """The worker's ``terminated`` event that also ends the armed deadlines when it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: set[IdleDeadline] = set()

    async def set(self) -> None:
        await super().set()
        for deadline in list(self.armed):
            deadline.server_stopped()


class GuardedWorkerContext(WorkerContext):
    """Hypercorn's worker context with a :class:`TerminatedEvent` (installed by
    :func:`smcp_box.web.connections.install`)."""

    def __init__(self, max_requests: int | None) -> None:
        super().__init__(max_requests)
        self.terminated = TerminatedEvent()


class IdleDeadline(AsyncioSingleTask):
    """Stands in for a connection's ``idle_task``: Hypercorn calls ``restart`` when the
    connection opens or a reply ends, and ``stop`` when a request head arrives or the
    connection closes. ``close`` closes the connection (Hypercorn's ``_initiate_server_close``);
    ``on_deadline`` is called first when the deadline passed (not when the server stops)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        terminated: TerminatedEvent,
        config: Config,
        close: Callable[[], Awaitable[None]],
        on_deadline: Callable[[], None],
    ) -> None:
        super().__init__()
        self._loop = loop
        self._terminated = terminated
        #: Read at every arming, as Hypercorn reads ``keep_alive_timeout`` for each idle task.
        self._config = config
        self._close = close
        self._on_deadline = on_deadline
        self._timer: asyncio.TimerHandle | None = None
        self._task_group: Any = None
        #: The connection is closing (closed by this deadline, or retired): never armed again.
        self._ended = False

    async def restart(self, task_group: Any, action: Callable[..., Any]) -> None:
        # ``action`` is Hypercorn's idle task body, which this class replaces.
        del action
        self._disarm()
        if self._ended:
            return
        self._task_group = task_group
        if self._terminated.is_set():
            self._end()
            return
        self._timer = self._loop.call_later(self._config.keep_alive_timeout, self._deadline_passed)
        self._terminated.armed.add(self)

    async def stop(self) -> None:
        self._disarm()

    def retire(self) -> None:
        """The connection is closing by other means: never arm again. Called before its task
        group may end, so that no deadline fires into a finished group."""
        self._disarm()
        self._ended = True

    def server_stopped(self) -> None:
        """The server is stopping and this connection is idle: close it now."""
        if self._timer is not None:
            self._disarm()
            self._end()

    def _deadline_passed(self) -> None:
        self._timer = None
        self._terminated.armed.discard(self)
        self._on_deadline()
        self._end()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._terminated.armed.discard(self)

    def _end(self) -> None:
        self._ended = True
        # In the connection's task group, as Hypercorn's idle task runs: the connection's
        # task waits for it before it ends. Shielded like Hypercorn's, so that the close
        # finishes even if the group is cancelled meanwhile.
        closing = self._shielded_close()
        try:
            self._task_group.spawn(lambda: closing)
        except RuntimeError:
            # The group has just ended (its last task finished this turn): the connection's
            # own close is already under way.
            closing.close()

    async def _shielded_close(self) -> None:
        await asyncio.shield(self._close())
