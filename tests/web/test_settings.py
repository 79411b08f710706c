"""Transport settings that change behaviour: origins, the challenge, retry, limits; and that they
come from the settings tree (TOML or env) through ``transport_settings``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.auth.tokens import TokenService
from smcp_box.config import OAuthSettings, QuotaSettings, load_settings
from smcp_box.store import Store
from smcp_box.store.audit_writer import AuditWriter
from smcp_box.tenancy.quotas import Admission
from smcp_box.web.app import create_app
from smcp_box.web.mcp import EXTENSION_KEY, transport_settings
from smcp_box.web.services import AppServices, McpServices
from tests.web.conftest import SUSPENDED_TOKEN, BoxUnderTest, run_box
from tests.web.fakes import Directory, RecordingObserver, TokenAuthenticator
from tests.web.rawhttp import base_headers, initialize, rpc, session_headers, sse_events

METADATA_URL = "https://box.lan/.well-known/oauth-protected-resource/t/{tenant}/mcp"
#: The behaviour tests below run under settings that came in through the environment.
SETTINGS = transport_settings(
    load_settings(
        None,
        environ={
            "SMCP_BOX_SERVER_ALLOWED_ORIGINS": "https://box.lan:*, https://admin.example",
            "SMCP_BOX_SERVER_SSE_KEEPALIVE_S": "0.5",
            "SMCP_BOX_SERVER_SSE_RETRY_MS": "2500",
            "SMCP_BOX_SERVER_RESOURCE_METADATA_URL": METADATA_URL,
            "SMCP_BOX_SERVER_AUTH_REALM": "lab",
        },
    )
)

#: The six transport settings that were once fixed in code, with non-default values.
TRANSPORT_SIX: dict[str, Any] = {
    "sse_retry_ms": 2500,
    "body_timeout_s": 7.5,
    "session_touch_s": 12.0,
    "auth_realm": "lab",
    "resource_metadata_url": METADATA_URL,
    "max_input_rounds": 3,
}


def _toml_value(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _app_services(store: Store) -> AppServices:
    async def no_problems() -> list[str]:
        return []

    async def no_figures() -> Any:
        raise AssertionError("not scraped")

    mcp = McpServices(
        tenants=Directory(),
        authenticator=TokenAuthenticator({}),
        sessions=store,
        auditor=AuditWriter(store),
        observer=RecordingObserver(),
        clock=time.time,
        new_session_id=lambda: "sess-0123456789abcdef",
        admission=Admission(QuotaSettings(), lambda _name: None),
    )
    tokens = TokenService(store, OAuthSettings())  # not started: this app serves nothing
    return AppServices(mcp=mcp, readiness=no_problems, metrics_snapshot=no_figures, tokens=tokens)


@pytest.mark.parametrize("layer", ["toml", "env"])
async def test_transport_settings_come_from_the_tree(tmp_path: Path, layer: str) -> None:
    if layer == "toml":
        path = tmp_path / "config.toml"
        lines = [f"{name} = {_toml_value(value)}" for name, value in TRANSPORT_SIX.items()]
        path.write_text("[server]\n" + "\n".join(lines) + "\n")
        settings = load_settings(path, environ={})
    else:
        env = {f"SMCP_BOX_SERVER_{k.upper()}": str(v) for k, v in TRANSPORT_SIX.items()}
        settings = load_settings(None, environ=env)
    store = await Store.open(tmp_path / "box.db", bytes(32))
    try:
        app = create_app(settings, _app_services(store))
    finally:
        await store.close()
    transport = app.extensions[EXTENSION_KEY]
    assert transport.settings is transport_settings(settings)
    for name, value in TRANSPORT_SIX.items():
        assert getattr(transport.settings, name) == value, name


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
