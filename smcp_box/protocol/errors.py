"""Transport errors the MCP endpoint needs beyond those in :mod:`smcp_box.errors`.

They extend the one exception tree (so the app-wide handler still understands them); they live
here only because this package owns the transport. Candidates to move into ``errors.py``.
"""

from __future__ import annotations

from smcp_box.errors import BoxError, TransportError


class StreamConflict(TransportError):
    """A legacy session already has its standalone GET stream open."""

    http_status = 409


class BodyTimeout(TransportError):
    """The client did not finish sending its request body in time."""

    http_status = 408


class InputRoundFailed(BoxError):
    """An InputRequiredResult round for a handshake-era client could not be completed: the
    client lacks the capability, refused, did not answer in time, or the rounds ran out.

    -32603: the handshake revisions have no error code for a missing client capability.
    """

    kind = "input"
