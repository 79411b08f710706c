"""The authorization server's records: single-use codes, refresh rotation and reuse detection,
clients, consents and login sessions, against a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import replace

from smcp_box.store import Store
from smcp_box.store.oauth import ClientRecord, CodeGrant, RefreshRecord, RevokedAccess

from .conftest import FakeClock

GRANT = CodeGrant(
    client_id="c1",
    username="alice",
    tenant="notes",
    resource="https://box.lan/t/notes/mcp",
    redirect_uri="http://127.0.0.1:5000/cb",
    scope="mcp:tools",
    code_challenge="x" * 43,
    code_challenge_method="S256",
)


def _refresh(family: str = "fam1", expires_at: float = 1_800_000_000.0) -> RefreshRecord:
    return RefreshRecord(
        family=family,
        client_id="c1",
        username="alice",
        tenant="notes",
        resource=GRANT.resource,
        scope="mcp:tools",
        expires_at=expires_at,
    )


async def test_code_is_single_use_and_reuse_revokes_its_family(store: Store) -> None:
    await store.oauth.save_code("code-1", GRANT, ttl_s=60)
    assert await store.oauth.consume_code("code-1") == ("ok", GRANT)
    await store.oauth.link_code_family("code-1", "fam1")
    await store.oauth.save_refresh("rt-1", _refresh())

    assert await store.oauth.consume_code("code-1") == ("reused", None)
    assert await store.oauth.find_refresh("rt-1") is None  # the family went with the code
    assert await store.oauth.consume_code("never-issued") == ("unknown", None)


async def test_concurrent_redemptions_of_one_code_let_exactly_one_through(store: Store) -> None:
    await store.oauth.save_code("code-1", GRANT, ttl_s=60)
    results = await asyncio.gather(*(store.oauth.consume_code("code-1") for _ in range(5)))
    assert sorted(status for status, _ in results) == ["ok", "reused", "reused", "reused", "reused"]


async def test_expired_code_is_refused(store: Store, clock: FakeClock) -> None:
    await store.oauth.save_code("code-1", GRANT, ttl_s=60)
    clock.advance(61)
    assert await store.oauth.consume_code("code-1") == ("expired", None)


async def test_refresh_rotation_and_reuse_revokes_the_whole_family(store: Store) -> None:
    await store.oauth.save_refresh("rt-1", _refresh())
    status, record = await store.oauth.claim_refresh("rt-1")
    assert status == "ok"
    assert record is not None
    assert record.family == "fam1"
    await store.oauth.save_refresh("rt-2", _refresh())  # the rotation's successor

    status, record = await store.oauth.claim_refresh("rt-1")  # the old one, presented again
    assert status == "reused"
    assert record is not None
    assert record.username == "alice"
    assert (await store.oauth.claim_refresh("rt-2"))[0] == "revoked"
    assert await store.oauth.find_refresh("rt-2") is None


async def test_refresh_expiry_unknown_and_user_revocation(store: Store, clock: FakeClock) -> None:
    await store.oauth.save_refresh("rt-old", _refresh(expires_at=clock.now + 10))
    await store.oauth.save_refresh("rt-other", _refresh(family="fam2"))
    clock.advance(11)
    assert (await store.oauth.claim_refresh("rt-old"))[0] == "expired"
    assert (await store.oauth.claim_refresh("nope"))[0] == "unknown"
    assert await store.oauth.revoke_user_refresh("alice", "other-tenant") == 0
    assert await store.oauth.revoke_user_refresh("alice", "notes") == 1
    assert (await store.oauth.claim_refresh("rt-other"))[0] == "revoked"
    assert await store.oauth.prune() >= 1


async def test_clients_round_trip_and_removal_revokes_their_tokens(store: Store) -> None:
    client = ClientRecord(
        client_id="c1",
        kind="preregistered",
        client_name="Editor",
        redirect_uris=("http://127.0.0.1/cb",),
        created_at=1.0,
    )
    assert await store.oauth.add_client(client)
    assert not await store.oauth.add_client(client)  # the id is taken
    assert await store.oauth.get_client("c1") == client
    assert await store.oauth.list_clients() == [client]
    assert await store.oauth.count_clients("preregistered") == 1
    await store.oauth.save_refresh("rt-1", _refresh())
    await store.oauth.save_consent("alice", "c1", "notes", "mcp:tools")

    assert await store.oauth.remove_client("c1")
    assert await store.oauth.get_client("c1") is None
    assert await store.oauth.find_refresh("rt-1") is None
    assert await store.oauth.consent("alice", "c1", "notes") == frozenset()
    assert not await store.oauth.remove_client("c1")


async def test_consents_are_per_user_client_and_tenant(store: Store) -> None:
    await store.oauth.save_consent("alice", "c1", "notes", "mcp:tools mcp:prompts")
    assert await store.oauth.consent("alice", "c1", "notes") == {"mcp:tools", "mcp:prompts"}
    assert await store.oauth.consent("alice", "c1", "other") == frozenset()
    assert await store.oauth.consent("bob", "c1", "notes") == frozenset()


async def test_login_sessions_expire_and_end(store: Store, clock: FakeClock) -> None:
    await store.oauth.create_login_session("sid-1", "alice", ttl_s=100)
    assert await store.oauth.login_session_user("sid-1") == "alice"
    assert await store.oauth.login_session_user("sid-2") is None
    clock.advance(101)
    assert await store.oauth.login_session_user("sid-1") is None
    await store.oauth.create_login_session("sid-3", "alice", ttl_s=100)
    await store.oauth.end_login_session("sid-3")
    assert await store.oauth.login_session_user("sid-3") is None
    # The CSRF token is a keyed hash of the cookie: stable per cookie, different across cookies.
    assert store.oauth.login_csrf("sid-1") == store.oauth.login_csrf("sid-1")
    assert store.oauth.login_csrf("sid-1") != store.oauth.login_csrf("sid-2")


async def test_no_secret_is_stored_in_the_clear(
    store: Store, raw_db: Callable[[], sqlite3.Connection]
) -> None:
    await store.oauth.save_code("the-code-secret", GRANT, ttl_s=60)
    await store.oauth.save_refresh("the-refresh-secret", _refresh())
    await store.oauth.create_login_session("the-session-secret", "alice", ttl_s=60)
    conn = raw_db()
    dump = "\n".join(conn.iterdump())
    for secret in ("the-code-secret", "the-refresh-secret", "the-session-secret", "x" * 43):
        assert secret not in dump


async def test_live_families_and_revoking_a_users_access(store: Store, clock: FakeClock) -> None:
    start = clock()
    await store.oauth.save_refresh("rt-1", _refresh("fam1"))
    clock.advance(10)
    assert (await store.oauth.claim_refresh("rt-1"))[0] == "ok"
    await store.oauth.save_refresh("rt-2", _refresh("fam1"))  # fam1 rotated once
    await store.oauth.save_refresh("rt-3", replace(_refresh("fam2"), tenant="utils"))
    await store.oauth.save_refresh("rt-4", _refresh("gone", expires_at=clock() - 1))
    await store.oauth.save_refresh("rt-5", replace(_refresh("bob1"), username="bob"))
    await store.oauth.save_consent("alice", "c1", "notes", "mcp:tools")
    await store.oauth.save_consent("alice", "c1", "utils", "mcp:tools")

    families = await store.oauth.live_families("alice")
    # One entry per live family (not per rotation), dated from its first token; expired ones
    # and other users' are not listed.
    assert [(f.tenant, f.client_id, f.scope) for f in families] == [
        ("notes", "c1", "mcp:tools"),
        ("utils", "c1", "mcp:tools"),
    ]
    assert families[0].created_at == start
    assert families[0].expires_at == _refresh().expires_at

    revoked = await store.oauth.revoke_user_access("alice", "notes")
    assert revoked == RevokedAccess(families=1, consents=1)
    assert (await store.oauth.claim_refresh("rt-2"))[0] == "revoked"
    assert (await store.oauth.claim_refresh("rt-1"))[0] == "revoked"
    assert await store.oauth.consent("alice", "c1", "notes") == frozenset()
    assert await store.oauth.consent("alice", "c1", "utils") == frozenset({"mcp:tools"})
    assert [f.tenant for f in await store.oauth.live_families("alice")] == ["utils"]

    assert await store.oauth.revoke_user_access("alice") == RevokedAccess(1, 1)
    assert await store.oauth.live_families("alice") == []
    assert await store.oauth.revoke_user_access("alice") == RevokedAccess(0, 0)
    assert len(await store.oauth.live_families("bob")) == 1
