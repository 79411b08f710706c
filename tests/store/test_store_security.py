"""What someone holding only the database files can and cannot learn or change."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smcp_box.errors import DecryptionFailed
from smcp_box.store import Store

Raw = Callable[[], sqlite3.Connection]

MARKERS = {
    "session_id": "SESSIONMARKER-5f2a9c",
    "client_info": "CLIENTINFOMARKER-77ab",
    "state": "STATEMARKER-0c1d",
    "stream_id": "STREAMMARKER-9e8f",
    "payload": "PAYLOADMARKER-a1b2c3",
    "kv_key": "KVKEYMARKER-d4e5",
    "kv_value": "KVVALUEMARKER-f6a7",
}


async def write_markers(store: Store) -> str:
    """Write every kind of sensitive value; returns the API key secret part."""
    m = MARKERS
    await store.create_session("acme", m["session_id"], "2025-06-18", {"name": m["client_info"]})
    await store.update_session_state("acme", m["session_id"], {"note": m["state"]})
    for i in range(3):
        await store.append_event("acme", m["session_id"], m["stream_id"], f"{m['payload']}{i}")
    await store.kv_set("acme", m["kv_key"], m["kv_value"])
    _, secret = await store.create_api_key("acme", "label")
    # smcp_<16 hex id>_<43 characters>; the secret part may itself contain "_".
    return secret[len("smcp_") + 16 + 1 :]


def file_bytes(db_path: Path) -> dict[str, bytes]:
    found = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            found[path.name] = path.read_bytes()
    return found


def file_modes(db_path: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in db_path.parent.glob(db_path.name + "*")}


def leaks(db_path: Path, needles: list[str]) -> list[tuple[str, str]]:
    hits = []
    for name, data in file_bytes(db_path).items():
        for needle in needles:
            if needle.encode() in data:
                hits.append((name, needle))
    return hits


async def test_database_files_hold_no_plaintext(store: Store, db_path: Path, raw_db: Raw) -> None:
    secret = await write_markers(store)
    needles = [*MARKERS.values(), secret]
    # Before a checkpoint the data sits in the -wal file; after it, in the main file.
    assert len(file_bytes(db_path)["box.sqlite3-wal"]) > 0
    assert leaks(db_path, needles) == []
    raw_db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert leaks(db_path, needles) == []
    # And the values are really there, readable with the key.
    assert await store.kv_get("acme", MARKERS["kv_key"]) == MARKERS["kv_value"]


async def test_marker_search_finds_unencrypted_values(open_store: Any, db_path: Path) -> None:
    # Control for the test above: with encryption off the same search does find them.
    store = await open_store(encrypt=False)
    await write_markers(store)
    found = {needle for _, needle in leaks(db_path, list(MARKERS.values()))}
    assert {MARKERS["payload"], MARKERS["kv_value"], MARKERS["client_info"]} <= found
    # Lookups are keyed hashes in either mode: ids and key names are not stored in clear.
    assert MARKERS["kv_key"] in found  # the sealed copy of the name, unencrypted here
    await store.close()


async def test_database_files_are_owner_only(store: Store, db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        await store.kv_set("acme", "k", "v")
    finally:
        os.umask(old)
    modes = file_modes(db_path)
    assert sorted(modes) == ["box.sqlite3", "box.sqlite3-shm", "box.sqlite3-wal"]
    for name, mode in modes.items():
        assert mode & 0o077 == 0, (name, oct(mode))


async def test_kv_value_moved_to_another_key_fails(store: Store, raw_db: Raw) -> None:
    await store.kv_set("acme", "a", "value of a")
    raw = raw_db()
    (blob_a,) = raw.execute("SELECT value_enc FROM kv").fetchone()
    await store.kv_set("acme", "b", "value of b")
    raw.execute("UPDATE kv SET value_enc = ? WHERE value_enc != ?", (blob_a, blob_a))
    assert await store.kv_get("acme", "a") == "value of a"
    with pytest.raises(DecryptionFailed, match="table kv"):
        await store.kv_get("acme", "b")


async def test_kv_value_moved_to_another_tenant_fails(store: Store, raw_db: Raw) -> None:
    await store.kv_set("acme", "k", "acme secret")
    await store.kv_set("globex", "k", "globex data")
    raw = raw_db()
    (acme_blob,) = raw.execute("SELECT value_enc FROM kv WHERE tenant = 'acme'").fetchone()
    raw.execute("UPDATE kv SET value_enc = ? WHERE tenant = 'globex'", (acme_blob,))
    with pytest.raises(DecryptionFailed):
        await store.kv_get("globex", "k")
    # Relabelling the row's tenant does not help either.
    raw.execute("DELETE FROM kv WHERE tenant = 'globex'")
    raw.execute("UPDATE kv SET tenant = 'globex' WHERE tenant = 'acme'")
    assert await store.kv_get("globex", "k") is None
    with pytest.raises(DecryptionFailed):
        await store.kv_list("globex")


async def test_unencrypted_blob_is_refused(store: Store, raw_db: Raw) -> None:
    await store.kv_set("acme", "k", "v")
    raw_db().execute("UPDATE kv SET value_enc = ?", (b"\x00forged",))
    with pytest.raises(DecryptionFailed, match="envelope version 0"):
        await store.kv_get("acme", "k")


async def test_session_fields_moved_between_rows_fail(open_store: Any, raw_db: Raw) -> None:
    # Tampering happens while no box runs: a running store serves open sessions from its
    # write-through cache, which only its own writes change.
    store = await open_store()
    await store.create_session("acme", "s1", "2025-06-18", {"name": "one"})
    await store.create_session("acme", "s2", "2025-06-18", {"name": "two"})
    await store.close()
    raw = raw_db()
    (info,) = raw.execute("SELECT client_info FROM sessions ORDER BY id LIMIT 1").fetchone()
    raw.execute("UPDATE sessions SET client_info = ? WHERE id = 2", (info,))
    store = await open_store()
    assert await store.get_session("acme", "s1") is not None
    with pytest.raises(DecryptionFailed):
        await store.get_session("acme", "s2")
    await store.close()
    # Swapping columns within a row fails too: state and client_info have distinct AADs.
    raw.execute("UPDATE sessions SET state = client_info WHERE id = 1")
    store = await open_store()
    with pytest.raises(DecryptionFailed):
        await store.get_session("acme", "s1")


async def test_events_moved_between_positions_fail(store: Store, raw_db: Raw) -> None:
    await store.create_session("acme", "s1", "2025-06-18", {})
    first = await store.append_event("acme", "s1", "get", "first")
    await store.append_event("acme", "s1", "get", "second")
    await store.append_event("acme", "s1", "get", "third")
    raw = raw_db()
    (blob,) = raw.execute("SELECT payload FROM events WHERE seq = 3").fetchone()
    raw.execute("UPDATE events SET payload = ? WHERE seq = 2", (blob,))
    with pytest.raises(DecryptionFailed):
        await store.replay_events("acme", "s1", first)


async def test_wrong_data_key_is_refused(open_store: Any) -> None:
    store = await open_store()
    await store.kv_set("acme", "k", "v")
    await store.close()
    with pytest.raises(DecryptionFailed, match="does not match"):
        await open_store(key=b"\xff" * 32)
    # The right key still works afterwards: the refusal wrote nothing.
    store = await open_store()
    assert await store.kv_get("acme", "k") == "v"
