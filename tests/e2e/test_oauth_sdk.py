"""The full OAuth flow with the official MCP SDK client (``mcp.client.auth.OAuthClientProvider``)
against a real box (in-process, real Hypercorn, real wasm ``notes`` tenant with auth = "oauth").

The SDK discovers everything from the tenant's 401: protected resource metadata, then the
authorization server metadata; it registers by Client ID Metadata Document (served over https
by a loopback server whose host is on ``cimd_allowed_hosts``) or by dynamic registration; the
test plays the browser (sign-in and consent forms submitted with httpx, cookies kept) and hands
the code to the SDK's callback; the SDK exchanges it with PKCE and calls tools in both protocol
eras, refreshes, and the test revokes.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from smcp_box.auth.cimd import CimdFetcher
from smcp_box.auth.passwords import hash_password
from smcp_box.box import Box
from smcp_box.ops.certs import issue_server_certificate, load_or_create_ca
from tests.ops.support import box_settings, copy_examples, serving, short_dir, started
from tests.support.loopback_http import LoopbackHttp, Route
from tests.web.oauth_box import PASSWORD, REDIRECT, redirect_params, sign_in_and_consent

ALL = frozenset({"mcp:tools", "mcp:resources", "mcp:prompts"})


class Memory:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """The browser: opens the authorization URL, signs in, allows; keeps where it landed."""

    def __init__(self) -> None:
        self.browser = httpx.AsyncClient()
        self.landed: list[httpx.Response] = []

    async def open(self, url: str) -> None:
        self.landed.append(await sign_in_and_consent(self.browser, url))

    async def callback(self) -> AuthorizationCodeResult:
        answer = self.landed[-1]
        assert answer.status_code == 302, answer.text
        params = redirect_params(answer)
        return AuthorizationCodeResult(
            code=params["code"], state=params["state"], iss=params["iss"]
        )


def tls_contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = load_or_create_ca(folder / "ca", hostname="testbox")
    issued = issue_server_certificate(ca, folder / "tls", ["127.0.0.1"])
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(issued.cert_path, issued.key_path)
    return server, ssl.create_default_context(cafile=str(ca.cert_path))


@asynccontextmanager
async def oauth_box() -> AsyncIterator[tuple[Box, str, Path]]:
    workdir = short_dir()
    tenants = copy_examples(workdir / "tenants", ("notes",))
    manifest = tenants / "notes" / "tenant.toml"
    manifest.write_text(manifest.read_text().replace('auth = "api_key"', 'auth = "oauth"'))
    settings = box_settings(
        workdir, tenants, workdir / "cache", **{"oauth.cimd_allowed_hosts": ["127.0.0.1"]}
    )
    async with started(settings) as box:
        await box.store.create_user("alice", hash_password(PASSWORD))
        await box.store.set_user_grant("alice", "notes", ALL)
        async with serving(box) as base:
            yield box, base, workdir


def metadata(redirect: str = REDIRECT) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name="SDK test client",
        redirect_uris=[redirect],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
    )


async def call_notes(url: str, provider: OAuthClientProvider, mode: str) -> str:
    http = httpx2.AsyncClient(auth=provider, timeout=30)
    transport = streamable_http_client(url, http_client=http)
    async with http, Client(transport, mode=mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        created = await client.call_tool("note_create", {"title": f"via {mode}", "body": "x"})
        assert not created.is_error
        assert {p.name for p in (await client.list_prompts()).prompts}
        return str(created.structured_content)


@pytest.mark.parametrize("registration", ["metadata document", "dynamic"])
async def test_sdk_oauth_flow_both_eras_refresh_and_revocation(registration: str) -> None:
    routes: dict[str, Route] = {}
    async with oauth_box() as (box, base, workdir):
        server_tls, client_tls = tls_contexts(workdir)
        assert box.oauth is not None
        box.oauth.server.cimd = CimdFetcher(box.settings.oauth, ssl_context=client_tls)
        async with LoopbackHttp(routes, tls=server_tls) as docs:
            client_id_url = f"https://127.0.0.1:{docs.port}/mcp-client.json"
            routes["/mcp-client.json"] = Route(
                body=json.dumps(
                    {
                        "client_id": client_id_url,
                        "client_name": "SDK test client",
                        "redirect_uris": [REDIRECT],
                        "grant_types": ["authorization_code", "refresh_token"],
                        "token_endpoint_auth_method": "none",
                    }
                ).encode()
            )
            url = f"{base}/t/notes/mcp"
            person, storage = Person(), Memory()
            provider = OAuthClientProvider(
                server_url=url,
                client_metadata=metadata(),
                storage=storage,
                redirect_handler=person.open,
                callback_handler=person.callback,
                client_metadata_url=client_id_url if registration != "dynamic" else None,
            )
            async with person.browser:
                await call_notes(url, provider, "legacy")
                assert len(person.landed) == 1  # one sign-in
                # The second era reuses the token the first one got.
                await call_notes(url, provider, "2026-07-28")
                assert len(person.landed) == 1

            context = provider.context
            assert context.oauth_metadata is not None
            assert str(context.oauth_metadata.issuer).rstrip("/") == base
            assert storage.client is not None
            if registration == "dynamic":
                assert storage.client.client_id.startswith("dyn_")
                assert docs.hits == 0
            else:
                assert storage.client.client_id == client_id_url
                assert docs.hits >= 1
            first = storage.tokens
            assert first is not None
            assert first.scope is not None
            assert set(first.scope.split()) == ALL

            # Refresh: the SDK refreshes a token it thinks expired, and the box rotates.
            context.token_expiry_time = 1.0  # long past (0 would mean "no expiry")
            await call_notes(url, provider, "2026-07-28")
            second = storage.tokens
            assert second is not None
            assert second.refresh_token not in (None, first.refresh_token)
            assert second.access_token != first.access_token

            # Revocation: the access token stops working at the tenant at once, and the
            # refresh token's family is gone.
            async with httpx.AsyncClient() as http:
                for token in (second.access_token, second.refresh_token):
                    revoked = await http.post(
                        f"{base}/oauth/revoke",
                        data={"token": token, "client_id": storage.client.client_id},
                    )
                    assert revoked.status_code == 200
                refused = await http.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    headers={
                        "Authorization": f"Bearer {second.access_token}",
                        "Accept": "application/json, text/event-stream",
                        "Content-Type": "application/json",
                        "MCP-Protocol-Version": "2025-11-25",
                    },
                )
                assert refused.status_code == 401
                refresh = await http.post(
                    f"{base}/oauth/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": second.refresh_token,
                        "client_id": storage.client.client_id,
                    },
                )
                assert refresh.json()["error"] == "invalid_grant"

        await box.auditor.flush()
        events = {(row.event, row.outcome) for row in await box.store.audit_page(limit=1000)}
        assert {("oauth.login", "ok"), ("oauth.consent", "ok"), ("oauth.token", "ok")} <= events
        assert ("oauth.token", "revoke") in events
        if registration == "dynamic":
            assert ("oauth.register", "ok") in events
