"""Draining: a box about to leave the fleet finishes what it has and takes nothing new.

``smcp-box drain`` (through the admin API) turns the switch on: ``/readyz`` answers 503 naming
it, so a load balancer stops sending new work; ``initialize`` is refused with
:class:`~smcp_box.errors.BoxDraining` (503 with ``Retry-After``), so a handshake-era client opens
its session on another box. Requests of sessions already open here, stateless (2026-07-28)
calls and calls in flight go on as before: draining refuses new sessions, never work.
``smcp-box drain --undo`` turns it off again.
"""

from __future__ import annotations

from typing import Final

from smcp_box.errors import BoxDraining

#: Seconds a refused client is told to wait before it tries again (most go elsewhere at once).
DRAIN_RETRY_AFTER_S: Final = 5.0


class DrainSwitch:
    """Whether this box is draining, and since when (the wall clock of ``drain``)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def draining(self) -> bool:
        return self.since is not None

    def drain(self, now: float) -> bool:
        """Start draining; False when the box already was (``since`` is kept)."""
        if self.since is not None:
            return False
        self.since = now
        return True

    def undo(self) -> bool:
        """Serve new sessions again; False when the box was not draining."""
        was = self.since is not None
        self.since = None
        return was

    def check_new_session(self) -> None:
        """Raise :class:`BoxDraining` while draining: a new session belongs on another box."""
        if self.since is not None:
            raise BoxDraining(
                "Service unavailable: this box is draining and opens no new sessions; "
                "send initialize again (a load balancer sends it to another box)",
                retry_after=DRAIN_RETRY_AFTER_S,
            )

    def readiness_problem(self) -> str | None:
        """What ``/readyz`` says while draining; None when not."""
        if self.since is None:
            return None
        return (
            "draining: this box finishes open sessions and calls but takes no new sessions "
            "(smcp-box drain --undo serves again)"
        )
