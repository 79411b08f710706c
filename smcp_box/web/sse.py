"""Server-Sent Events framing for MCP response streams.

Every JSON-RPC message is one ``event: message`` frame. A *priming* frame (2025-11-25+ legacy
streams) carries only an event id (and optionally ``retry``) with empty data, so a client that
loses the connection before any message can still resume with ``Last-Event-ID``. Keep-alive frames
are SSE comments, which every client must ignore.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

SSE_HEADERS: Final[dict[str, str]] = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    # Tells nginx-style proxies not to buffer the stream (the 2026-07-28 spec's SHOULD).
    "X-Accel-Buffering": "no",
}

KEEPALIVE: Final = b": keepalive\n\n"


@dataclass(frozen=True)
class Frame:
    """One SSE event: a JSON-RPC message (``data``), or a priming event (empty ``data``)."""

    event_id: str | None
    data: str
    retry_ms: int | None = None

    @property
    def is_priming(self) -> bool:
        return self.data == ""

    def encode(self) -> bytes:
        lines: list[str] = []
        if self.event_id is not None:
            # An id with a line break or NUL would end the field early or be ignored.
            if any(ch in self.event_id for ch in "\r\n\0"):
                raise ValueError("SSE event ids cannot contain CR, LF or NUL")
            lines.append(f"id: {self.event_id}")
        if self.retry_ms is not None:
            lines.append(f"retry: {int(self.retry_ms)}")
        if self.is_priming:
            lines.append("data: ")
        else:
            lines.append("event: message")
            lines.extend(f"data: {line}" for line in self.data.splitlines() or [""])
        return ("\n".join(lines) + "\n\n").encode("utf-8")


#: Yields the next frame, None when the stream has ended; raises TimeoutError when idle.
NextFrame = Callable[[float], Awaitable["Frame | None"]]


async def frame_stream(
    next_frame: NextFrame,
    *,
    keepalive_s: float,
    still_wanted: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[bytes]:
    """Encode frames until the stream ends, with a keep-alive comment after each idle period.

    ``still_wanted`` is asked on every idle period; returning False ends the stream (a legacy GET
    stream uses it to notice that its session was ended elsewhere).
    """
    while True:
        try:
            frame = await next_frame(keepalive_s)
        except TimeoutError:
            if still_wanted is not None and not await still_wanted():
                return
            yield KEEPALIVE
            continue
        if frame is None:
            return
        yield frame.encode()
