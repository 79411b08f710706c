"""What the fleet tests share: the capability checks that decide which tests run, and
stateless echo calls through the balancer, checked and counted."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from smcp_box.store import AuditRecord
from smcp_box.store.sessions import Sessions
from tests.e2e.clients import modern_headers, modern_request, parse_single_response
from tests.support.haproxy import find_haproxy
from tests.support.postgres import find_initdb

#: The header a box names itself in (when [cluster] box_header is on).
BOX_HEADER = "smcp-box"

#: Every fleet test needs Debian's PostgreSQL and HAProxy (.ci/run installs both).
needs_fleet = [
    pytest.mark.skipif(find_initdb() is None, reason="PostgreSQL is not installed (initdb)"),
    pytest.mark.skipif(find_haproxy() is None, reason="HAProxy is not installed"),
]

#: Box heartbeats in the shared database (the store's fleet area).
HEARTBEATS = importlib.util.find_spec("smcp_box.store.fleet") is not None
#: ``smcp-box drain``: /readyz answers 503 while a box finishes its calls.
DRAIN = importlib.util.find_spec("smcp_box.web.drain") is not None
#: Fan-out through PostgreSQL LISTEN/NOTIFY (what tells every box's credential cache of a
#: revocation made on another).
FAN_OUT = importlib.util.find_spec("smcp_box.store.pg_notify") is not None
#: Sessions that move (owner and epoch on each session, takeover by compare-and-set).
SESSIONS_MOVE = hasattr(Sessions, "claim_session")
#: One audit hash chain per box (each row names its box).
AUDIT_CHAIN_PER_BOX = "box" in {f.name for f in dataclasses.fields(AuditRecord)}


@dataclass(frozen=True)
class Outcome:
    status: int
    #: The echoed text matched what was sent.
    echoed: bool
    #: The box named in the Smcp-Box header, when the boxes send it.
    box: str | None
    body: str


async def echo(http: httpx.AsyncClient, url: str, key: str, text: str, request_id: int) -> Outcome:
    """One stateless (2026-07-28) tools/call of utils' echo."""
    body = modern_request(request_id, "tools/call", {"name": "echo", "arguments": {"text": text}})
    try:
        response = await http.post(
            url, json=body, headers=modern_headers(key, "tools/call", "echo")
        )
    except httpx.RemoteProtocolError as exc:  # a reply cut short: a failed call
        return Outcome(0, False, None, f"incomplete reply: {exc}")
    echoed = False
    if response.status_code == 200:
        message = parse_single_response(response)
        content = message.get("result", {}).get("content", [{}])
        echoed = content[0].get("text") == text
    return Outcome(response.status_code, echoed, response.headers.get(BOX_HEADER), response.text)


async def echo_many(
    url: str,
    key: str,
    count: int,
    *,
    concurrency: int,
    after_each: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """``count`` echo calls, ``concurrency`` at a time, each with its own text;
    ``after_each(done)`` runs after each reply (to kill a box mid-run, say)."""
    outcomes: list[Outcome] = []
    numbers = iter(range(count))

    async def worker(http: httpx.AsyncClient) -> None:
        for number in numbers:
            outcomes.append(await echo(http, url, key, f"call {number}", number))
            if after_each is not None:
                after_each(len(outcomes))

    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return outcomes


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status != 200 or not o.echoed]
