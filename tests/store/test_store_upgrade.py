"""Upgrading across a schema change, as docs/operations.md's "Upgrading" section describes it.

A database written by the previous release (0.1.0: schema version 1, ``MIGRATIONS[:1]``) is
opened by this release: the migrations run at start, and every row the old release wrote (API
keys, kv data, sessions and their events, the audit chain) reads back intact. The rollback
path: the older release refuses the upgraded database with a clear error and leaves it alone,
and ``smcp-box restore`` of the backup taken before the upgrade gives it its data back.

(``test_store_tenant_state.py`` checks the version-2 table itself on a migrated database, and
``test_store_db.py`` the refusal of a newer schema by the current release.)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import Settings, load_settings
from smcp_box.errors import StoreError
from smcp_box.ops.backup import run_restore
from smcp_box.seams import JsonObject
from smcp_box.store import AuditEntry, Store
from smcp_box.store import db as store_db
from smcp_box.store.chain import ZERO_HASH, ChainRow, decode_head, encode_head, row_hash
from smcp_box.store.crypto import Crypto, canonical_json
from smcp_box.store.keyfile import create_key_file, read_key_file
from smcp_box.store.migrations import MIGRATIONS, SCHEMA_VERSION, migrate

#: The schema of release 0.1.0, the previous release.
PREVIOUS_RELEASE = MIGRATIONS[:1]


@pytest.fixture
def previous_release(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While active, Store.open migrates only as far as the previous release did.

    Later migrations add tables, and columns to ``sessions`` (owner and epoch, for fleets):
    the store writes the rows of the other version-1 tables exactly as 0.1.0 wrote them, and
    :func:`write_as_previous_release` copies a session's version-1 columns in.
    """
    monkeypatch.setattr(
        store_db, "migrate", functools.partial(migrate, migrations=PREVIOUS_RELEASE)
    )
    yield
    monkeypatch.undo()


def settings_in(tmp_path: Path) -> Settings:
    overrides = {
        "state_dir": str(tmp_path / "state"),
        "cache_dir": str(tmp_path / "cache"),
        "runtime_dir": str(tmp_path / "run"),
        "tenants_dir": str(tmp_path / "tenants"),
    }
    return load_settings(None, environ={}, overrides=overrides)


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


async def write_as_previous_release(path: Path, key: bytes) -> dict[str, str]:
    """Rows of every v1 table, written by the store code on the 0.1.0 schema."""
    store = await Store.open(path, key, token_source=random.Random(7).randbytes)
    try:
        key_id, secret = await store.create_api_key("notes", "laptop")
        await store.kv_set("notes", "note:0001", '{"title":"hello","body":"world"}')
        event_id = await copy_in_a_session(path, key)
    finally:
        await store.close()
    append_audit_as_previous_release(path, key, "key.create", {"key_id": key_id})
    return {"key_id": key_id, "secret": secret, "event_id": event_id}


async def copy_in_a_session(path: Path, key: bytes) -> str:
    """A session with an event, as 0.1.0 wrote it: made by this release's code in a scratch
    database, its version-1 columns copied into ``path`` (sealed values are bound to the tenant
    and the session, not to the file). Returns the event's id."""
    scratch = path.with_name("scratch.db")
    with pytest.MonkeyPatch.context() as current:
        current.setattr(store_db, "migrate", migrate)
        store = await Store.open(scratch, key)
        try:
            await store.create_session("notes", "sid-1", "2025-06-18", {"name": "old-client"})
            await store.update_session_state("notes", "sid-1", {"initialized": True})
            event_id = await store.append_event("notes", "sid-1", "stream-1", '{"jsonrpc":"2.0"}')
        finally:
            await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS scratch", (str(scratch),))
        # event_count starts at 0: the events trigger counts the copied event.
        conn.execute(
            "INSERT INTO sessions (id, tenant, sid_hash, sid_enc, protocol_version, client_info,"
            " state, created_at, last_seen, ended, event_count) SELECT id, tenant, sid_hash,"
            " sid_enc, protocol_version, client_info, state, created_at, last_seen, ended, 0"
            " FROM scratch.sessions"
        )
        conn.execute("INSERT INTO streams SELECT * FROM scratch.streams")
        conn.execute("INSERT INTO events SELECT * FROM scratch.events")
    finally:
        conn.close()
    scratch.unlink()
    return event_id


def sessions_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])
    finally:
        conn.close()


def append_audit_as_previous_release(
    path: Path, key: bytes, event: str, detail: JsonObject
) -> None:
    """One audit row as 0.1.0 wrote it: one chain for the whole database, a row's place in it
    its id, and the head (``audit_head``) framed without a box."""
    crypto = Crypto(key)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        head = conn.execute("SELECT value FROM meta WHERE name = 'audit_head'").fetchone()
        last_id, prev = (0, ZERO_HASH) if head is None else decode_head(crypto, head[0]) or (0, b"")
        row = ChainRow(
            id=last_id + 1, ts=1_700_000_000.0 + last_id, kind="event", event=event,
            tenant="notes", actor="admin", source_ip=None, outcome="ok",
            detail=canonical_json(detail), prev_hash=prev, hash=b"", sig=None,
        )  # fmt: skip
        row = dataclasses.replace(row, hash=row_hash(crypto, prev, row))
        conn.execute(
            "INSERT INTO audit (id, ts, kind, event, tenant, actor, source_ip, outcome, detail,"
            " prev_hash, hash, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            dataclasses.astuple(row),
        )
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('audit_head', ?) ON CONFLICT (name)"
            " DO UPDATE SET value = excluded.value",
            (encode_head(crypto, row.id, row.hash),),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def assert_previous_rows_intact(
    store: Store, written: dict[str, str], database: Path, *, sessions_readable: bool = True
) -> None:
    record = await store.verify_api_key(written["secret"])
    assert record is not None
    assert (record.key_id, record.tenant) == (written["key_id"], "notes")
    assert await store.kv_get("notes", "note:0001") == '{"title":"hello","body":"world"}'
    assert await store.kv_usage("notes") == (1, len("note:0001") + 32)
    if sessions_readable:
        session = await store.get_session("notes", "sid-1")
        assert session is not None
        assert session.client_info == {"name": "old-client"}
        assert session.state == {"initialized": True}
        assert (session.owner_box, session.epoch) == ("", 0)  # the first request takes it over
    verification = await store.verify_audit_chain()
    assert verification.ok, verification.message
    assert verification.rows_checked == 1
    # Read as the file holds it: the rollback's stand-in for 0.1.0 is this release's store
    # code, which pages the audit log by columns 0.1.0 did not have.
    with sqlite3.connect(database) as raw:
        (detail,) = raw.execute("SELECT detail FROM audit WHERE event = 'key.create'").fetchone()
    assert json.loads(detail) == {"key_id": written["key_id"]}


async def test_previous_release_database_is_migrated_at_start_with_its_data(
    tmp_path: Path, previous_release: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "smcp-box.db"
    key = bytes(range(32))
    written = await write_as_previous_release(path, key)
    assert user_version(path) == len(PREVIOUS_RELEASE) == 1
    monkeypatch.undo()  # the upgrade: this release's migrations

    store = await Store.open(path, key)
    try:
        assert user_version(path) == SCHEMA_VERSION
        await assert_previous_rows_intact(store, written, path)
        # The new release's own tables work on the migrated file.
        assert await store.tenant_states() == {}
        replay = await store.replay_events("notes", "sid-1", written["event_id"])
        assert replay is not None
    finally:
        await store.close()


async def test_the_single_chain_becomes_the_chain_of_the_first_box_that_writes(
    tmp_path: Path, previous_release: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "smcp-box.db"
    key = bytes(range(32))
    written = await write_as_previous_release(path, key)
    append_audit_as_previous_release(path, key, "key.revoke", {"key_id": written["key_id"]})
    monkeypatch.undo()

    # Upgraded, before any box writes: one legacy chain, intact, rows in place.
    reader = await Store.open(path, key, box_id="reader")
    try:
        (legacy,) = await reader.verify_audit_chains()
        assert (legacy.box, legacy.rows, legacy.head, legacy.ok) == ("", 2, 2, True)
    finally:
        await reader.close()
    with sqlite3.connect(path) as raw:
        before = raw.execute("SELECT id, hash FROM audit ORDER BY id").fetchall()

    # The first box to write adopts it and carries on where it ended; no hash is rewritten.
    store = await Store.open(path, key, box_id="homelab")
    try:
        (new_id,) = await store.append_audit_many(
            [AuditEntry("box.start", None, "box", None, "ok")]
        )
        assert new_id == 3
        (chain,) = await store.verify_audit_chains()
        assert (chain.box, chain.rows, chain.head, chain.ok) == ("homelab", 3, 3, True)
        assert [(r.box, r.seq) for r in await store.audit_page(since_id=0)] == [
            ("homelab", 1),
            ("homelab", 2),
            ("homelab", 3),
        ]
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        after = raw.execute("SELECT id, hash FROM audit WHERE id < 3 ORDER BY id").fetchall()
        names = [r[0] for r in raw.execute("SELECT name FROM meta WHERE name LIKE 'audit%'")]
    assert after == before
    assert names == ["audit_head:homelab"]

    # Another box has a chain of its own, beside it.
    other = await Store.open(path, key, box_id="second")
    try:
        await other.append_audit_many([AuditEntry("box.start", None, "box", None, "ok")])
        chains = await other.verify_audit_chains()
        assert [(c.box, c.rows, c.ok) for c in chains] == [
            ("homelab", 3, True),
            ("second", 1, True),
        ]
    finally:
        await other.close()


async def test_rollback_is_the_previous_release_and_the_backup_from_before_the_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_in(tmp_path)
    settings.state_path().mkdir(parents=True, mode=0o700)
    create_key_file(settings.state_path() / "data.key", random.Random(1).randbytes)
    key = read_key_file(settings.state_path() / "data.key")
    database = settings.database_path()
    old_schema = functools.partial(migrate, migrations=PREVIOUS_RELEASE)

    # 0.1.0 runs and writes; the admin backs up before upgrading.
    monkeypatch.setattr(store_db, "migrate", old_schema)
    written = await write_as_previous_release(database, key)
    backup = tmp_path / "before-upgrade.db"
    store = await Store.open(database, key)
    await store.backup(backup)
    await store.close()

    # The upgrade migrates the database at start.
    monkeypatch.undo()
    store = await Store.open(database, key)
    await store.close()
    assert user_version(database) == SCHEMA_VERSION

    # Rolled back to 0.1.0: it refuses the newer schema, says why and what to do, and does not
    # touch the file.
    monkeypatch.setattr(store_db, "migrate", old_schema)
    with pytest.raises(StoreError) as refused:
        await Store.open(database, key)
    message = refused.value.message
    assert f"schema version {SCHEMA_VERSION}" in message
    assert "written by a newer release" in message
    assert "restore a backup taken before the upgrade" in message
    assert user_version(database) == SCHEMA_VERSION

    # `smcp-box restore` of the pre-upgrade backup, with 0.1.0 installed.
    result = await run_restore(settings, backup)
    assert result.previous is not None  # the upgraded file is kept as .bak
    assert user_version(database) == len(PREVIOUS_RELEASE)
    store = await Store.open(database, key)
    try:
        # This release's session code needs the owner columns 0.1.0 never had: the row itself
        # is what the restore must give back.
        await assert_previous_rows_intact(store, written, database, sessions_readable=False)
    finally:
        await store.close()
    assert sessions_rows(database) == 1
