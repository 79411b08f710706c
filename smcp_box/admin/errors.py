"""Errors of the admin API, on both sides of the socket.

They derive from :class:`smcp_box.errors.BoxError` so that one handler maps them to responses;
they live here until the lead folds them into ``errors.py``.
"""

from __future__ import annotations

from typing import ClassVar

from smcp_box.errors import BoxError


class AdminError(BoxError):
    """The admin request itself was wrong (a missing field, a value of the wrong type)."""

    http_status: ClassVar[int] = 400
    kind: ClassVar[str] = "bad_request"


class BadRequest(AdminError):
    pass


class NotFound(AdminError):
    """The named tenant, key or session does not exist."""

    http_status = 404
    kind = "not_found"


class Conflict(AdminError):
    """The request clashes with the current state (a tenant of that name already exists)."""

    http_status = 409
    kind = "conflict"


class AdminUnauthorized(AdminError):
    """A TCP admin request without the admin token (the socket needs none)."""

    http_status = 401
    kind = "auth"


class AdminUnavailable(BoxError):
    """Client side: nothing answers on the admin socket, so the box is not running there."""

    kind = "unavailable"


class AdminRequestFailed(BoxError):
    """Client side: the box answered with an error; ``status`` and ``error_kind`` say which."""

    kind = "admin"

    def __init__(self, status: int, error_kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_kind = error_kind
