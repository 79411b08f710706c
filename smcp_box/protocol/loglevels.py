"""MCP log levels (RFC 5424 severities) and the box's filter for ``notifications/message``.

The box filters a module's log notifications itself, so a module never needs to track a
client's level: in the legacy era the level comes from the session (``logging/setLevel``; none
set means everything is delivered), in the modern era from the request's
``io.modelcontextprotocol/logLevel`` ``_meta`` key (absent means nothing is delivered: the
2026-07-28 spec forbids log notifications to a request that did not opt in).
"""

from __future__ import annotations

from typing import Any, Final

from smcp_box.errors import InvalidParams

#: Least to most severe.
LOG_LEVELS: Final[tuple[str, ...]] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)

LOG_MESSAGE_METHOD: Final = "notifications/message"


def parse_level(value: Any, *, where: str) -> str:
    """Validate a client-supplied level, or raise :class:`InvalidParams` (-32602)."""
    if not isinstance(value, str) or value not in LOG_LEVELS:
        raise InvalidParams(f"Invalid params: {where} must be one of {', '.join(LOG_LEVELS)}")
    return value


class LogFilter:
    """Decides which of a module's notifications reach the client."""

    __slots__ = ("_minimum",)

    def __init__(self, minimum: str | None, *, deliver_without_level: bool) -> None:
        # None means "no log notifications at all"; otherwise the index of the lowest level.
        if minimum is not None:
            self._minimum: int | None = LOG_LEVELS.index(minimum)
        else:
            self._minimum = 0 if deliver_without_level else None

    @classmethod
    def legacy(cls, session_level: str | None) -> LogFilter:
        return cls(session_level, deliver_without_level=True)

    @classmethod
    def modern(cls, requested_level: str | None) -> LogFilter:
        return cls(requested_level, deliver_without_level=False)

    def allows(self, message: dict[str, Any]) -> bool:
        if message.get("method") != LOG_MESSAGE_METHOD:
            return True
        if self._minimum is None:
            return False
        params = message.get("params")
        level = params.get("level") if isinstance(params, dict) else None
        if level not in LOG_LEVELS:
            # A log message without a valid level cannot be placed against the threshold; only
            # a client that asked for everything gets it.
            return self._minimum == 0
        return LOG_LEVELS.index(level) >= self._minimum
