"""Quotas at the transport, through a real Hypercorn: 429 with Retry-After for rates and
lockouts, JSON-RPC errors naming the quota, 403 outside a tenant's networks, client addresses
behind trusted proxies, and one audit row per minute for a flood of refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import httpx
import pytest

from smcp_box.config import QuotaSettings
from smcp_box.errors import QUOTA_EXCEEDED
from smcp_box.tenancy.quotas import (
    PROMPT_REFUSALS_PER_S,
    Admission,
    TenantPolicy,
    parse_networks,
    resolve_quotas,
)
from smcp_box.web.streams import SessionHub
from tests.support.waiting import wait_until
from tests.web.conftest import BETA_TOKEN, BoxUnderTest, TransportSettings, run_box
from tests.web.rawhttp import base_headers, initialize, rpc, session_headers
from tests.web.test_bad_input import assert_error


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


DEFAULTS = resolve_quotas(QuotaSettings(), {})


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def boxed(
    clock: Clock,
    alpha: TenantPolicy,
    settings: QuotaSettings | None = None,
    transport: TransportSettings | None = None,
) -> AsyncIterator[BoxUnderTest]:
    admission = Admission(
        settings or QuotaSettings(),
        lambda name: alpha if name == "alpha" else TenantPolicy(DEFAULTS),
        clock=clock,
    )
    async for box in run_box(transport or TransportSettings(), admission=admission):
        yield box


def streams_are(hub: SessionHub, count: int) -> Callable[[], bool]:
    return lambda: hub.open_streams("alpha") == count


def limited(**changes: float) -> TenantPolicy:
    return TenantPolicy(replace(DEFAULTS, **changes))  # type: ignore[arg-type]


async def test_rate_limit_answers_429_with_retry_after_and_a_jsonrpc_error(
    clock: Clock, http: httpx.AsyncClient
) -> None:
    async for box in boxed(clock, limited(requests_per_s=1.0, burst=2)):
        for request_id in (1, 2):
            ok = await http.post(
                box.url(), headers=base_headers(), json=rpc("ping", {}, request_id)
            )
            assert ok.status_code in (200, 400), ok.text
        refused = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        body = assert_error(refused, 429, QUOTA_EXCEEDED)
        assert refused.headers["retry-after"] == "1"
        assert body["error"]["data"]["quota"] == "requests_per_s"
        assert "allows 1 requests/s (burst 2)" in body["error"]["message"]
        # Counted for /metrics by its kind, like every refused request.
        assert box.observer.observations[-1][3] == "rate_limited"
        # Another tenant is not limited by alpha's quota.
        other = await http.post(box.url("beta"), headers=base_headers(BETA_TOKEN), json=rpc("ping"))
        assert other.status_code != 429
        clock.now += 1.0
        again = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        assert again.status_code != 429
        # A second refusal within the minute adds no row; the next row counts both.
        await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        rows = [r for r in await box.audit_rows() if r["event"] == "quota.exceeded"]
        assert len(rows) == 1
        assert rows[0]["tenant"] == "alpha"
        assert rows[0]["outcome"] == "denied"
        assert rows[0]["detail"]["quota"] == "requests_per_s"
        clock.now += 61.0
        for _ in range(3):
            await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        rows = [r for r in await box.audit_rows() if r["event"] == "quota.exceeded"]
        assert [r["detail"]["refusals"] for r in rows] == [1, 2]


async def flooding_alpha(
    clock: Clock, http: httpx.AsyncClient, hold_s: float
) -> AsyncIterator[tuple[BoxUnderTest, Admission]]:
    """A box whose alpha (1 request/s, burst 1) has spent its token and has been refused
    promptly as often as a second allows: its next refusal is held ``hold_s``."""
    admission = Admission(
        QuotaSettings(),
        lambda name: limited(requests_per_s=1.0, burst=1) if name == "alpha" else None,
        clock=clock,
        refusal_hold_s=hold_s,
    )
    async for box in run_box(TransportSettings(), admission=admission):
        await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        for _ in range(PROMPT_REFUSALS_PER_S):
            refused = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
            assert refused.status_code == 429
        yield box, admission


def held_once(admission: Admission) -> Callable[[], bool]:
    return lambda: admission.held_refusals == 1


async def test_a_flooding_tenants_refusals_are_held_without_delaying_another(
    clock: Clock, http: httpx.AsyncClient
) -> None:
    async for box, admission in flooding_alpha(clock, http, hold_s=3600.0):
        held = asyncio.create_task(http.post(box.url(), headers=base_headers(), json=rpc("ping")))
        await wait_until(held_once(admission), what="alpha's refusal to be held")
        # Beta is admitted and answered while alpha's refusal waits out its hold.
        other = await http.post(box.url("beta"), headers=base_headers(BETA_TOKEN), json=rpc("ping"))
        assert other.status_code not in (429, 500), other.text
        assert not held.done()
        held.cancel()  # the client leaving ends the hold
        with pytest.raises(asyncio.CancelledError):
            await held


async def test_a_held_refusal_is_the_same_429(clock: Clock, http: httpx.AsyncClient) -> None:
    async for box, admission in flooding_alpha(clock, http, hold_s=0.01):
        refused = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        body = assert_error(refused, 429, QUOTA_EXCEEDED)
        assert refused.headers["retry-after"] == "1"
        assert body["error"]["data"]["quota"] == "requests_per_s"
        assert admission.held_refusals == 1


async def test_key_guessing_address_is_locked_out(clock: Clock, http: httpx.AsyncClient) -> None:
    settings = QuotaSettings(auth_failures_per_ip=3, auth_failure_window_s=120)
    async for box in boxed(clock, limited(), settings):
        for _ in range(3):
            guess = await http.post(box.url(), headers=base_headers("guess"), json=rpc("ping"))
            assert guess.status_code == 401
        # Even a good key is refused from this address until the window has passed.
        locked = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        body = assert_error(locked, 429, QUOTA_EXCEEDED)
        assert locked.headers["retry-after"] == "120"
        assert body["error"]["data"]["quota"] == "auth_failures_per_ip"
        clock.now += 120
        unlocked = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        assert unlocked.status_code != 429


async def test_allowed_networks_and_trusted_proxies(clock: Clock, http: httpx.AsyncClient) -> None:
    lan_only = TenantPolicy(DEFAULTS, parse_networks(["10.0.0.0/8"]))
    async for box in boxed(clock, lan_only):
        refused = await http.post(box.url(), headers=base_headers(), json=rpc("ping"))
        assert_error(refused, 403, -32600)
        # Without trusted proxies, a client cannot talk its way in with the header.
        forged = await http.post(
            box.url(),
            headers=base_headers(**{"X-Forwarded-For": "10.1.2.3"}),
            json=rpc("ping"),
        )
        assert forged.status_code == 403
    proxied = TransportSettings(trusted_proxies=("127.0.0.0/8",))
    async for box in boxed(clock, lan_only, transport=proxied):
        through_proxy = await http.post(
            box.url(),
            headers=base_headers(**{"X-Forwarded-For": "10.1.2.3"}),
            json=rpc("ping"),
        )
        assert through_proxy.status_code != 403, through_proxy.text
        # Audit rows name the client, not the proxy.
        await http.post(
            box.url(),
            headers=base_headers("wrong", **{"X-Forwarded-For": "10.9.9.9"}),
            json=rpc("ping"),
        )
        failures = [r for r in await box.audit_rows() if r["event"] == "auth.failure"]
        assert failures[-1]["source_ip"] == "10.9.9.9"


async def test_session_quota_names_max_sessions(clock: Clock, http: httpx.AsyncClient) -> None:
    async for box in boxed(clock, limited(max_sessions=2)):
        first = await initialize(http, box)
        await initialize(http, box)
        refused = await http.post(
            box.url(),
            headers=base_headers(),
            json=rpc(
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "0"},
                },
            ),
        )
        # Refused once the message is read: the error answers the initialize's id.
        body = assert_error(refused, 429, QUOTA_EXCEEDED, request_id=1)
        assert body["error"]["data"] == {"quota": "max_sessions"}
        ended = await http.delete(box.url(), headers=session_headers(first))
        assert ended.status_code in (200, 204)
        await initialize(http, box)


async def test_stream_quota_counts_open_get_streams(clock: Clock, http: httpx.AsyncClient) -> None:
    async for box in boxed(clock, limited(max_sse_streams=1)):
        assert box.transport is not None
        hub = box.transport.hub

        one, two = await initialize(http, box), await initialize(http, box)
        async with http.stream("GET", box.url(), headers=session_headers(one)) as stream:
            assert stream.status_code == 200
            await wait_until(streams_are(hub, 1), what="stream counted")
            refused = await http.get(box.url(), headers=session_headers(two))
            body = assert_error(refused, 429, QUOTA_EXCEEDED)
            assert body["error"]["data"] == {"quota": "max_sse_streams"}
        await wait_until(streams_are(hub, 0), what="stream released")
        # Ending a session with its stream open releases the count too.
        async with http.stream("GET", box.url(), headers=session_headers(two)) as stream:
            assert stream.status_code == 200
            await wait_until(streams_are(hub, 1), what="stream counted")
            await http.delete(box.url(), headers=session_headers(two))
            await wait_until(streams_are(hub, 0), what="count released")


async def test_per_call_quota_refusal_is_a_jsonrpc_error_counted_and_audited(
    clock: Clock, http: httpx.AsyncClient
) -> None:
    async for box in boxed(clock, limited()):
        session = await initialize(http, box)
        box.observer.observations.clear()
        for request_id in (2, 3):
            reply = await http.post(
                box.url(),
                headers=session_headers(session),
                json=rpc("tools/call", {"name": "fuel_quota"}, request_id),
            )
            body = assert_error(reply, 200, QUOTA_EXCEEDED, request_id)
            assert body["error"]["data"]["quota"] == "fuel_per_minute"
        # Counted for /metrics by its kind, like every refusal.
        assert [o[3] for o in box.observer.observations] == ["quota_fuel", "quota_fuel"]
        # Audited once for the minute, like the HTTP-level refusals.
        rows = [r for r in await box.audit_rows() if r["event"] == "quota.exceeded"]
        assert [(r["tenant"], r["detail"]["quota"]) for r in rows] == [("alpha", "fuel_per_minute")]
        assert rows[0]["detail"]["refusals"] == 1


async def test_a_refused_kv_write_is_counted_and_audited(
    clock: Clock, http: httpx.AsyncClient
) -> None:
    async for box in boxed(clock, limited()):
        session = await initialize(http, box)
        box.observer.observations.clear()
        for request_id in (2, 3):
            reply = await http.post(
                box.url(),
                headers=session_headers(session),
                json=rpc("tools/call", {"name": "kv_refused"}, request_id),
            )
            assert reply.status_code == 200
            assert "result" in reply.json()  # the module's answer goes through
        assert [o[3] for o in box.observer.observations] == ["quota_kv", "quota_kv"]
        rows = [r for r in await box.audit_rows() if r["event"] == "quota.exceeded"]
        assert [(r["detail"]["quota"], r["detail"]["refusals"]) for r in rows] == [
            ("kv_max_keys", 1)
        ]


def _body_of(size: int, request_id: int) -> bytes:
    """A ping request of exactly ``size`` bytes (padded in a params field)."""
    bare = json.dumps(rpc("ping", {"pad": ""}, request_id), separators=(",", ":")).encode()
    padded = rpc("ping", {"pad": "x" * (size - len(bare))}, request_id)
    body = json.dumps(padded, separators=(",", ":")).encode()
    assert len(body) == size
    return body


async def test_request_size_quota_at_its_boundary_answers_413(
    clock: Clock, http: httpx.AsyncClient
) -> None:
    async for box in boxed(clock, limited()):
        session = await initialize(http, box)
        box.alpha.max_request_bytes = 300
        headers = session_headers(session)
        at_limit = await http.post(box.url(), headers=headers, content=_body_of(300, 2))
        assert at_limit.status_code == 200, at_limit.text
        over = await http.post(box.url(), headers=headers, content=_body_of(301, 3))
        body = assert_error(over, 413, QUOTA_EXCEEDED, None)
        assert body["error"]["data"]["quota"] == "max_message_bytes"
        assert "max_message_bytes" in body["error"]["message"]
        rows = [r for r in await box.audit_rows() if r["event"] == "quota.exceeded"]
        assert [r["detail"]["quota"] for r in rows] == ["max_message_bytes"]
