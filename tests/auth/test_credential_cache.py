"""The per-box credential cache and its invalidation through the change feed, on one box
(SQLite, the in-process feed): revocations act at once, a cached check reads nothing, failures
are never cached, and a verification that raced a revocation is not kept.

The same across boxes on PostgreSQL: tests/fanout/test_fleet_fanout.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.auth.apikeys import CACHE_TTL_S, ApiKeyAuthenticator, apikey_change
from smcp_box.auth.tokens import TokenService
from smcp_box.config import OAuthSettings
from smcp_box.errors import AuthError
from smcp_box.store import Store
from smcp_box.store.changes import TOPIC_CREDENTIAL, TOPIC_RESYNC, LocalChangeFeed
from tests.auth.test_apikeys import StubTenant, bearer

TENANT = StubTenant("alpha")


class CountingVerifier:
    """The store's key check, counting the reads that reach the database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads = 0
        #: When set, each read waits for it (to interleave a revocation).
        self.gate: asyncio.Event | None = None
        #: Set when a read starts.
        self.reading = asyncio.Event()

    async def verify_api_key(self, secret: str) -> Any:
        self.reads += 1
        self.reading.set()
        record = await self.store.verify_api_key(secret)
        if self.gate is not None:
            await self.gate.wait()
        return record


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "auth.db", bytes(32), api_key_last_used_resolution=0)
    yield opened
    await opened.close()


@pytest.fixture
def feed() -> LocalChangeFeed:
    return LocalChangeFeed("box_a")


async def test_the_ttl_is_a_safety_net_of_half_a_minute() -> None:
    assert 30.0 <= CACHE_TTL_S <= 60.0


async def test_a_cached_check_reads_nothing_from_the_database(store: Store) -> None:
    verifier = CountingVerifier(store)
    auth = ApiKeyAuthenticator(verifier)
    _, secret = await store.create_api_key("alpha", "")
    for _ in range(50):
        await auth.authenticate(TENANT, bearer(secret), None)
    assert verifier.reads == 1
    assert auth.cached == 1


async def test_a_revocation_on_the_feed_is_refused_at_once(
    store: Store, feed: LocalChangeFeed
) -> None:
    auth = ApiKeyAuthenticator(store)
    auth.follow(feed)
    key_id, secret = await store.create_api_key("alpha", "")
    other_id, other = await store.create_api_key("alpha", "")
    await auth.authenticate(TENANT, bearer(secret), None)
    await auth.authenticate(TENANT, bearer(other), None)
    assert await store.revoke_api_key(key_id)
    await feed.publish(TOPIC_CREDENTIAL, apikey_change(key_id))
    with pytest.raises(AuthError):
        await auth.authenticate(TENANT, bearer(secret), None)
    # Only that key's entry went.
    assert auth.cached == 1
    await auth.authenticate(TENANT, bearer(other), None)
    # Other credential kinds leave API keys alone.
    await feed.publish(TOPIC_CREDENTIAL, "user:alice")
    assert auth.cached == 1
    assert other_id != key_id


async def test_a_resync_drops_everything(store: Store, feed: LocalChangeFeed) -> None:
    auth = ApiKeyAuthenticator(store)
    stop = auth.follow(feed)
    _, secret = await store.create_api_key("alpha", "")
    await auth.authenticate(TENANT, bearer(secret), None)
    await feed.publish(TOPIC_RESYNC, "")
    assert auth.cached == 0
    # Stopped: changes no longer reach it.
    await auth.authenticate(TENANT, bearer(secret), None)
    stop()
    await feed.publish(TOPIC_RESYNC, "")
    assert auth.cached == 1


async def test_failures_are_never_cached(store: Store) -> None:
    verifier = CountingVerifier(store)
    auth = ApiKeyAuthenticator(verifier)
    _, secret = await store.create_api_key("alpha", "")
    # Refused for another tenant, then accepted for its own: the refusal was not kept.
    with pytest.raises(AuthError):
        await auth.authenticate(StubTenant("beta"), bearer(secret), None)
    await auth.authenticate(TENANT, bearer(secret), None)
    for _ in range(3):
        with pytest.raises(AuthError):
            await auth.authenticate(TENANT, bearer("smcp_0123456789abcdef_nope"), None)
    assert verifier.reads == 5


async def test_a_check_that_raced_a_revocation_is_not_cached(
    store: Store, feed: LocalChangeFeed
) -> None:
    verifier = CountingVerifier(store)
    auth = ApiKeyAuthenticator(verifier)
    auth.follow(feed)
    key_id, secret = await store.create_api_key("alpha", "")
    verifier.gate = asyncio.Event()
    # The read happens before the revocation; the notice arrives before the read returns.
    checking = asyncio.create_task(auth.authenticate(TENANT, bearer(secret), None))
    await asyncio.wait_for(verifier.reading.wait(), 10)
    assert await store.revoke_api_key(key_id)
    await feed.publish(TOPIC_CREDENTIAL, apikey_change(key_id))
    verifier.gate.set()
    await checking  # it read the key before it was revoked: this one call passes ...
    verifier.gate = None
    assert auth.cached == 0
    with pytest.raises(AuthError):  # ... but nothing kept it
        await auth.authenticate(TENANT, bearer(secret), None)


async def test_the_cache_is_bounded_least_recently_used_first(store: Store) -> None:
    verifier = CountingVerifier(store)
    auth = ApiKeyAuthenticator(verifier, max_entries=2)
    secrets = [(await store.create_api_key("alpha", ""))[1] for _ in range(3)]
    await auth.authenticate(TENANT, bearer(secrets[0]), None)
    await auth.authenticate(TENANT, bearer(secrets[1]), None)
    await auth.authenticate(TENANT, bearer(secrets[0]), None)  # used again: kept
    await auth.authenticate(TENANT, bearer(secrets[2]), None)  # evicts secrets[1]
    assert auth.cached == 2
    assert verifier.reads == 3
    await auth.authenticate(TENANT, bearer(secrets[0]), None)
    assert verifier.reads == 3
    await auth.authenticate(TENANT, bearer(secrets[1]), None)
    assert verifier.reads == 4


async def test_a_token_revoked_by_one_service_is_refused_by_another_that_heard_it(
    tmp_path: Path,
) -> None:
    """Two token services sharing a store and a feed stand in for two boxes: the second
    refuses the token as soon as the first's revocation is announced, without a refresh."""
    store = await Store.open(tmp_path / "tokens.db", bytes(32))
    try:
        feed = LocalChangeFeed("box_a")
        settings = OAuthSettings(access_token_ttl_s=300)
        here = TokenService(store, settings, changes=feed)
        await here.start()
        there = TokenService(store, settings, changes=feed)
        await there.start()
        heard: list[str] = []
        feed.subscribe(TOPIC_CREDENTIAL, lambda change: heard.append(change.payload))
        audience = "https://box.lan/t/notes/mcp"
        token, claims = here.issue_access_token(
            issuer="https://box.lan",
            subject="alice",
            tenant="notes",
            audience=audience,
            client_id="c",
            scopes=frozenset(),
        )
        there.verify_access_token(token, audience=audience)
        assert await here.revoke_access_token(token)
        assert heard == [f"token:{claims.jti}"]
        with pytest.raises(AuthError, match="revoked"):
            there.verify_access_token(token, audience=audience)
    finally:
        await store.close()
