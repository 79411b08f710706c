"""A real Hypercorn serving ``create_app`` with the authorization server, over the real store,
token service and audit writer, and a browser stand-in that fills in the pages as a person
would (httpx, following the forms' hidden fields, cookies kept by the client).

The tenants are the scripted :class:`~tests.web.fakes.EchoRuntime` (alpha takes OAuth, beta only
API keys). Users are real rows of the store: alice may use alpha's tools and prompts, bob only
beta.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from smcp_box.auth.passwords import hash_password
from smcp_box.auth.server import BoxAuthorizationServer, ClientMetadataSource
from smcp_box.auth.throttle import LoginThrottle
from smcp_box.auth.tokens import TokenService
from smcp_box.config import OAuthSettings, QuotaSettings, Settings
from smcp_box.metrics import BoxFigures, TenantFigures
from smcp_box.store import Store
from smcp_box.store.audit_writer import AuditWriter
from smcp_box.store.oauth import ClientRecord
from smcp_box.tenancy.quotas import Admission
from smcp_box.web.app import create_app
from smcp_box.web.services import AppServices, McpServices, OAuthServices
from tests.support.serving import serve_on_loopback
from tests.web.fakes import Directory, EchoRuntime, RecordingObserver, TokenAuthenticator

REDIRECT = "http://127.0.0.1:33333/callback"
CLIENT_ID = "editor"
PASSWORD = "correct horse battery staple"


@dataclass
class OAuthBox:
    base_url: str
    store: Store
    tokens: TokenService
    auditor: AuditWriter
    server: BoxAuthorizationServer
    now: list[float] = field(default_factory=lambda: [1_700_000_000.0])

    @property
    def resource(self) -> str:
        return f"{self.base_url}/t/alpha/mcp"

    async def audit(self, event: str) -> list[Any]:
        await self.auditor.flush()
        rows = await self.store.audit_page(event=event, limit=1000)
        return sorted(rows, key=lambda row: row.id)


@asynccontextmanager
async def run_oauth_box(
    oauth: OAuthSettings | None = None,
    *,
    cimd: Callable[[OAuthSettings], ClientMetadataSource] | None = None,
) -> AsyncIterator[OAuthBox]:
    settings = Settings(oauth=oauth or OAuthSettings())
    now = [1_700_000_000.0]
    alpha = EchoRuntime("alpha", auth_mode="oauth")
    beta = EchoRuntime("beta")
    directory = Directory(alpha, beta)
    with tempfile.TemporaryDirectory(prefix="smcp-oauth-") as folder:
        store = await Store.open(Path(folder) / "box.db", secrets.token_bytes(32))
        auditor = AuditWriter(store)
        password_hash = hash_password(PASSWORD)
        for name, tenant, scopes in (
            ("alice", "alpha", {"mcp:tools", "mcp:prompts"}),
            ("bob", "beta", {"mcp:tools"}),
        ):
            await store.create_user(name, password_hash)
            await store.set_user_grant(name, tenant, frozenset(scopes))
        auditor.start()
        tokens = TokenService(store, settings.oauth)
        await tokens.start()
        server = BoxAuthorizationServer(
            settings=settings.oauth,
            records=store.oauth,
            users=store,
            tokens=tokens,
            tenants=directory,
            auditor=auditor,
            cimd=cimd(settings.oauth) if cimd is not None else None,
        )
        await store.oauth.add_client(
            ClientRecord(
                client_id=CLIENT_ID,
                kind="preregistered",
                client_name="Test Editor",
                redirect_uris=(REDIRECT,),
                created_at=now[0],
            )
        )

        async def readiness() -> list[str]:
            return []

        async def no_metrics() -> tuple[BoxFigures, list[TenantFigures]]:
            raise AssertionError("not scraped here")

        mcp = McpServices(
            tenants=directory,
            authenticator=TokenAuthenticator({}),
            sessions=store,
            auditor=auditor,
            observer=RecordingObserver(),
            clock=lambda: now[0],
            new_session_id=lambda: secrets.token_urlsafe(32),
            admission=Admission(QuotaSettings(), lambda _name: None),
        )
        throttle = LoginThrottle(
            settings.oauth.login_max_failures_per_user,
            settings.oauth.login_max_failures_per_ip,
            settings.oauth.login_window_s,
        )
        app = create_app(
            settings,
            AppServices(
                mcp=mcp,
                readiness=readiness,
                metrics_snapshot=no_metrics,
                tokens=tokens,
                oauth=OAuthServices(server=server, throttle=throttle),
            ),
        )
        async with serve_on_loopback(app) as base_url:
            try:
                yield OAuthBox(base_url, store, tokens, auditor, server, now)
            finally:
                await auditor.close()
                await store.close()


# --- the browser stand-in -----------------------------------------------------------------------


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_url(box: OAuthBox, **overrides: str | None) -> tuple[str, str]:
    """An authorization URL for the pre-registered client; returns (url, code verifier)."""
    verifier, challenge = pkce()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": box.resource,
        "scope": "mcp:tools mcp:prompts",
    }
    params.update(overrides)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{box.base_url}/oauth/authorize?{query}", verifier


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The first form's action and hidden fields."""
    action = html.unescape(re.search(r'<form method="post" action="([^"]*)"', page)[1])  # type: ignore[index]
    hidden = {
        html.unescape(m[1]): html.unescape(m[2])
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    return action, hidden


def redirect_params(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    assert location.startswith(REDIRECT.split("?")[0]) or "://" in location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in_and_consent(
    http: httpx.AsyncClient,
    url: str,
    *,
    username: str = "alice",
    password: str = PASSWORD,
    approve: str = "approve",
) -> httpx.Response:
    """Open ``url``, sign in, press Allow (or ``approve``); the response that goes back to the
    client (a redirect), or whatever page stopped the way."""
    page = await http.get(url)
    if page.status_code != 200 or "Sign in" not in page.text:
        return page
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    action, hidden = form_of(page.text)
    signed = await http.post(
        base + action, data={**hidden, "username": username, "password": password}
    )
    if signed.status_code != 303:
        return signed
    consent = await http.get(base + signed.headers["location"])
    if consent.status_code != 200 or "Allow access?" not in consent.text:
        return consent
    action, hidden = form_of(consent.text)
    return await http.post(base + action, data={**hidden, "step": approve})


async def exchange(
    box: OAuthBox, http: httpx.AsyncClient, code: str, verifier: str, **extra: str
) -> httpx.Response:
    return await http.post(
        f"{box.base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
            "resource": box.resource,
            **extra,
        },
    )


async def get_tokens(box: OAuthBox, http: httpx.AsyncClient) -> dict[str, Any]:
    url, verifier = authorize_url(box)
    answer = await sign_in_and_consent(http, url)
    assert answer.status_code == 302, answer.text
    response = await exchange(box, http, redirect_params(answer)["code"], verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


Check = Callable[[httpx.Response], Awaitable[None]]
