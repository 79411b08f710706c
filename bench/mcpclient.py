"""Small MCP-over-HTTP client helpers for the suite: set up sessions and check replies.

Load itself comes from bench.loadgen; these helpers make the few requests around it (open a
legacy session, check that a peer answers the echo call correctly before it is measured, time
single calls for cold start and density).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from bench import loadgen
from bench.peers import payload


class PeerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoint:
    """One MCP endpoint as the load generator sees it: URL, era and the headers to send."""

    url: str
    era: str  # "modern" or "legacy"
    key: str | None = None
    session_id: str | None = None

    def headers(self) -> dict[str, str]:
        return payload.call_headers(self.era, self.session_id, self.key)

    def body(self) -> bytes:
        return payload.call_body(self.era)

    def target(self) -> loadgen.Target:
        """The load generator's view; a session's requests each get their own id."""
        split = None
        if self.session_id:
            marker = 987654321
            before, after = payload.call_body(self.era, marker).split(str(marker).encode())
            split = (before, after)
        sessions = self.open_sessions if self.session_id else None
        return loadgen.Target(self.url, self.headers(), self.body(), split, sessions)

    def open_sessions(self, count: int) -> list[dict[str, str]]:
        """``count`` new sessions of this endpoint's era: each one's request headers."""
        with httpx.Client(timeout=10) as client:
            return [
                payload.call_headers(self.era, open_session(client, self.url, self.key), self.key)
                for _ in range(count)
            ]


def _decode(reply: httpx.Response) -> dict:
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        # A server may answer a POST on an SSE stream; the reply is the last data line.
        data = [line[5:].strip() for line in reply.text.splitlines() if line.startswith("data:")]
        if not data:
            raise PeerError(f"empty SSE reply from {reply.request.url}")
        return json.loads(data[-1])
    return reply.json()


def open_session(client: httpx.Client, url: str, key: str | None = None) -> str:
    """A legacy-era session: initialize, then notifications/initialized; returns its id."""
    headers = payload.call_headers("legacy", None, key)
    reply = client.post(url, content=payload.initialize_body(), headers=headers)
    if reply.status_code != 200:
        raise PeerError(f"initialize at {url} answered {reply.status_code}: {reply.text[:300]}")
    session_id = reply.headers.get("mcp-session-id")
    if not session_id:
        raise PeerError(f"initialize at {url} returned no Mcp-Session-Id")
    headers = payload.call_headers("legacy", session_id, key)
    done = client.post(url, content=payload.INITIALIZED_BODY, headers=headers)
    if done.status_code not in (200, 202):
        raise PeerError(f"notifications/initialized answered {done.status_code}: {done.text[:300]}")
    return session_id


def call_echo(client: httpx.Client, endpoint: Endpoint, text: str = payload.TEXT) -> float:
    """One echo tools/call, checked; returns its latency in milliseconds."""
    return probe_echo(client, endpoint, text)[0]


def probe_echo(
    client: httpx.Client, endpoint: Endpoint, text: str = payload.TEXT
) -> tuple[float, str]:
    """One echo tools/call, checked; its latency (ms) and the reply's content type."""
    body = payload.call_body(endpoint.era, text=text)
    start = time.perf_counter()
    reply = client.post(endpoint.url, content=body, headers=endpoint.headers())
    elapsed = (time.perf_counter() - start) * 1000
    if reply.status_code != 200:
        raise PeerError(
            f"tools/call at {endpoint.url} answered {reply.status_code}: {reply.text[:300]}"
        )
    message = _decode(reply)
    try:
        echoed = message["result"]["content"][0]["text"]
    except (KeyError, IndexError, TypeError):
        raise PeerError(f"tools/call at {endpoint.url} returned {message!r:.300}") from None
    if echoed != text:
        raise PeerError(f"tools/call at {endpoint.url} echoed {echoed!r:.80}, not the input")
    return elapsed, reply.headers.get("content-type", "").split(";")[0]
