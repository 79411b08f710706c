"""API-key authentication against a real store: scoping, revocation, caching and audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smcp_box.auth.apikeys import ApiKeyAuthenticator
from smcp_box.errors import AuthError
from smcp_box.seams import AuthMode
from smcp_box.store import Store


@dataclass
class StubTenant:
    """Only the two attributes authentication reads; a real tenant needs a wasm module."""

    name: str
    auth_mode: AuthMode = "api_key"


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "auth.db", bytes(32), api_key_last_used_resolution=0)
    yield opened
    await opened.close()


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


async def test_key_authenticates_only_its_own_tenant(store: Store) -> None:
    auth = ApiKeyAuthenticator(store)
    key_id, secret = await store.create_api_key("alpha", "ci")
    principal = await auth.authenticate(StubTenant("alpha"), bearer(secret), "127.0.0.1")
    assert (principal.tenant, principal.key_id, principal.method) == ("alpha", key_id, "api_key")
    with pytest.raises(AuthError) as info:
        await auth.authenticate(StubTenant("beta"), bearer(secret), "127.0.0.1")
    assert secret not in info.value.message
    assert info.value.http_status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer smcp_nothing_real"},
    ],
)
async def test_missing_or_malformed_credentials_fail(store: Store, headers: dict[str, str]) -> None:
    auth = ApiKeyAuthenticator(store)
    with pytest.raises(AuthError):
        await auth.authenticate(StubTenant("alpha"), headers, None)


async def test_public_tenant_needs_no_key(store: Store) -> None:
    auth = ApiKeyAuthenticator(store)
    principal = await auth.authenticate(StubTenant("pub", "none"), {}, None)
    assert principal.method == "none"


async def test_revocation_applies_after_the_cache_ttl_or_forget(store: Store) -> None:
    clock = Monotonic()
    auth = ApiKeyAuthenticator(store, cache_ttl_s=2.0, monotonic=clock)
    key_id, secret = await store.create_api_key("alpha", "")
    tenant = StubTenant("alpha")
    await auth.authenticate(tenant, bearer(secret), None)
    assert await store.revoke_api_key(key_id)
    # Within the TTL the cached verification still stands (bounded staleness, by design) ...
    await auth.authenticate(tenant, bearer(secret), None)
    clock.now += 2.5
    with pytest.raises(AuthError):
        await auth.authenticate(tenant, bearer(secret), None)
    # ... and a revocation made in this process can clear it at once.
    key2, secret2 = await store.create_api_key("alpha", "")
    await auth.authenticate(tenant, bearer(secret2), None)
    await store.revoke_api_key(key2)
    auth.forget()
    with pytest.raises(AuthError):
        await auth.authenticate(tenant, bearer(secret2), None)


async def test_failures_are_not_audited_here(store: Store) -> None:
    """The transport audits each failure once, with the request's context; a row from here too
    would count every failure twice (a regression seen in review)."""
    auth = ApiKeyAuthenticator(store)
    _, secret = await store.create_api_key("alpha", "")
    with pytest.raises(AuthError):
        await auth.authenticate(StubTenant("beta"), bearer(secret), "10.0.0.9")
    assert await store.audit_page(event="auth.failure") == []
