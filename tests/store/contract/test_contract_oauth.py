"""Contract: the authorization server's records, with two boxes racing where it matters."""

from __future__ import annotations

import asyncio

from smcp_box.store import Store
from smcp_box.store.oauth import ClientRecord, CodeGrant, RefreshRecord

from .conftest import Backend

GRANT = CodeGrant(
    "client", "alice", "t", "https://box/t/t/mcp", "https://app/cb", "tools", "c", "S256"
)


def _refresh(family: str, expires_at: float = 2e9) -> RefreshRecord:
    return RefreshRecord(family, "client", "alice", "t", "https://box/t/t/mcp", "tools", expires_at)


async def test_clients(store: Store) -> None:
    client = ClientRecord("client", "dynamic", "App", ("https://app/cb",), 1.0)
    assert await store.oauth.add_client(client) is True
    assert await store.oauth.add_client(client) is False
    got = await store.oauth.get_client("client")
    assert got is not None
    assert got.redirect_uris == ("https://app/cb",)
    assert await store.oauth.count_clients("dynamic") == 1
    assert [c.client_id for c in await store.oauth.list_clients()] == ["client"]
    assert await store.oauth.remove_client("client") is True


async def test_a_code_is_redeemed_once_whichever_boxes_race(backend: Backend) -> None:
    boxes = [await backend.open(), await backend.open()]
    await boxes[0].oauth.save_code("the-code", GRANT, ttl_s=60)
    results = await asyncio.gather(*(boxes[i % 2].oauth.consume_code("the-code") for i in range(6)))
    outcomes = sorted(outcome for outcome, _ in results)
    assert outcomes == ["ok"] + ["reused"] * 5
    assert [grant for outcome, grant in results if outcome == "ok"] == [GRANT]
    assert await boxes[1].oauth.consume_code("no-such-code") == ("unknown", None)


async def test_a_refresh_token_rotates_once_and_reuse_revokes_its_family(
    backend: Backend,
) -> None:
    boxes = [await backend.open(), await backend.open()]
    await boxes[0].oauth.save_refresh("rt-1", _refresh("fam"))
    await boxes[0].oauth.save_refresh("rt-other", _refresh("fam"))
    results = await asyncio.gather(*(box.oauth.claim_refresh("rt-1") for box in boxes))
    assert sorted(outcome for outcome, _ in results) == ["ok", "reused"]
    # The reuse revoked the whole family, the sibling token included.
    assert await boxes[1].oauth.find_refresh("rt-other") is None
    assert (await boxes[0].oauth.claim_refresh("rt-other"))[0] == "revoked"


async def test_user_access_is_listed_and_revoked_per_tenant(store: Store) -> None:
    await store.oauth.save_refresh("a", _refresh("fam-a"))
    await store.oauth.save_refresh("b", _refresh("fam-b"))
    await store.oauth.save_consent("alice", "client", "t", "tools")
    assert await store.oauth.consent("alice", "client", "t") == frozenset({"tools"})
    assert len(await store.oauth.live_families("alice")) == 2
    revoked = await store.oauth.revoke_user_access("alice", "t")
    assert (revoked.families, revoked.consents) == (2, 1)
    assert await store.oauth.live_families("alice") == []
    assert await store.oauth.revoke_user_refresh("alice") == 0


async def test_login_sessions_and_pruning(backend: Backend, clock: object) -> None:
    store = await backend.open()
    await store.oauth.create_login_session("cookie", "alice", ttl_s=10)
    assert await store.oauth.login_session_user("cookie") == "alice"
    await store.oauth.save_code("old-code", GRANT, ttl_s=5)
    clock.advance(20)  # type: ignore[attr-defined]
    assert await store.oauth.login_session_user("cookie") is None
    assert await store.oauth.prune() == 2
