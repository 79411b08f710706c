"""TenantAuthenticator without HTTP: the per-mode rules on a real store and token service
(tests/auth/test_resource_server.py has them over a real box)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smcp_box.auth.apikeys import ApiKeyAuthenticator
from smcp_box.auth.resource import TenantAuthenticator, is_jwt
from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.auth.tokens import TokenService
from smcp_box.config import OAuthSettings
from smcp_box.errors import AuthError
from smcp_box.seams import AuthMode
from smcp_box.store import Store

RESOURCE = "http://box.test/t/t1/mcp"


@dataclass
class StubTenant:
    name: str
    auth_mode: AuthMode


@dataclass
class Setup:
    auth: TenantAuthenticator
    tokens: TokenService
    store: Store


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = await Store.open(tmp_path / "auth.db", bytes(32))
    tokens = TokenService(store, OAuthSettings())
    await tokens.start()
    yield Setup(TenantAuthenticator(ApiKeyAuthenticator(store), tokens), tokens, store)
    await store.close()


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


def mint(tokens: TokenService, scopes: frozenset[str] = frozenset(ALL_SCOPES)) -> str:
    token, _ = tokens.issue_access_token(
        issuer="http://box.test",
        subject="alice",
        tenant="t1",
        audience=RESOURCE,
        client_id="c",
        scopes=scopes,
    )
    return token


def test_shapes() -> None:
    assert is_jwt("eyJh.eyJi.c2ln")
    assert not is_jwt("smcp_0123456789abcdef_" + "A" * 43)


async def test_a_token_gives_a_user_principal_with_its_scopes(setup: Setup) -> None:
    token = mint(setup.tokens, frozenset({"mcp:prompts"}))
    principal = await setup.auth.authenticate(
        StubTenant("t1", "oauth"), bearer(token), None, RESOURCE
    )
    assert principal.tenant == "t1"
    assert principal.subject == "user:alice"
    assert principal.method == "oauth"
    assert principal.scopes == frozenset({"mcp:prompts"})


async def test_without_a_resource_url_no_token_passes(setup: Setup) -> None:
    with pytest.raises(AuthError, match="resource URL is unknown"):
        await setup.auth.authenticate(StubTenant("t1", "both"), bearer(mint(setup.tokens)), None)


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [("oauth", "requires an OAuth access token"), ("both", "access token or API key")],
)
async def test_a_missing_credential_says_what_to_send(
    setup: Setup, mode: AuthMode, fragment: str
) -> None:
    with pytest.raises(AuthError, match=fragment):
        await setup.auth.authenticate(StubTenant("t1", mode), {}, None, RESOURCE)


async def test_a_public_tenant_asks_for_nothing(setup: Setup) -> None:
    principal = await setup.auth.authenticate(
        StubTenant("t1", "none"), bearer(mint(setup.tokens)), None, RESOURCE
    )
    assert principal.method == "none"
