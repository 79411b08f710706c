"""Transport settings that change behaviour: origins, the challenge, retry, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from smcp_box.web.mcp import TransportSettings
from tests.web.conftest import SUSPENDED_TOKEN, BoxUnderTest, run_box
from tests.web.rawhttp import base_headers, initialize, rpc, session_headers, sse_events

SETTINGS = TransportSettings(
    allowed_origins=("https://box.lan:*", "https://admin.example"),
    sse_keepalive_s=0.5,
    sse_retry_ms=2500,
    resource_metadata_url="https://box.lan/.well-known/oauth-protected-resource/t/{tenant}/mcp",
    auth_realm="lab",
)


@pytest.fixture
async def tuned() -> AsyncIterator[BoxUnderTest]:
    async for running in run_box(SETTINGS):
        yield running


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://box.lan:8765", 200),
        ("https://box.lan:1", 200),
        ("https://admin.example", 200),
        ("https://admin.example:444", 403),
        ("http://box.lan:8765", 403),
    ],
)
async def test_configured_origins(
    tuned: BoxUnderTest, http: httpx.AsyncClient, origin: str, status: int
) -> None:
    session = await initialize(http, tuned)
    response = await http.post(
        tuned.url(), headers=session_headers(session, Origin=origin), json=rpc("ping")
    )
    assert response.status_code == status


async def test_challenge_names_realm_error_and_metadata(
    tuned: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    response = await http.post(tuned.url(), headers=base_headers("wrong"), json=rpc("ping"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="lab", error="invalid_token", '
        'error_description="Invalid credential: the API key is unknown or revoked", '
        'resource_metadata="https://box.lan/.well-known/oauth-protected-resource/t/alpha/mcp"'
    )
    forbidden = await http.post(
        tuned.url(), headers=base_headers(SUSPENDED_TOKEN), json=rpc("ping")
    )
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]


async def test_priming_event_carries_retry(tuned: BoxUnderTest, http: httpx.AsyncClient) -> None:
    session = await initialize(http, tuned)
    async with http.stream("GET", tuned.url(), headers=session_headers(session)) as stream:
        priming = await anext(sse_events(stream))
    assert priming.retry == 2500
    assert priming.data == ""
