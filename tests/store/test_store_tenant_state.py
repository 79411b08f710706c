"""Admin state of tenants (migration 2): round trips, sealed columns, insert-if-absent, and an
existing version-1 database migrated in place."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from smcp_box.errors import DecryptionFailed
from smcp_box.store import Store, TenantAdminState
from smcp_box.store.migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from tests.store.conftest import OpenStore

Raw = Callable[[], sqlite3.Connection]

MANIFEST = (
    'name = "extra"\nmodule = "m.wasm"\nsha256 = "' + "a" * 64 + '"\n[config]\ntoken = "s3cret"\n'
)


async def test_round_trip_and_replace(store: Store) -> None:
    assert await store.tenant_states() == {}
    assert await store.tenant_state("notes") is None
    await store.save_tenant_state(TenantAdminState("notes", enabled=False, limits={"fuel": 5}))
    added = TenantAdminState("extra", "admin", manifest=MANIFEST, module_sha256="a" * 64)
    await store.save_tenant_state(added)
    notes = await store.tenant_state("notes")
    assert notes is not None
    assert (notes.origin, notes.enabled, dict(notes.limits), notes.removed) == (
        "folder",
        False,
        {"fuel": 5},
        False,
    )
    assert notes.updated_at == 1_700_000_000.0
    got = await store.tenant_state("extra")
    assert got is not None
    assert got.manifest == MANIFEST
    assert got.module_sha256 == "a" * 64
    await store.save_tenant_state(TenantAdminState("notes", removed=True))
    states = await store.tenant_states()
    assert sorted(states) == ["extra", "notes"]
    assert states["notes"].removed
    assert states["notes"].enabled is None
    assert await store.delete_tenant_state("notes")
    assert not await store.delete_tenant_state("notes")
    assert sorted(await store.tenant_states()) == ["extra"]


async def test_insert_if_absent_never_overwrites(store: Store) -> None:
    assert await store.add_tenant_state_if_absent(TenantAdminState("notes", enabled=False))
    assert not await store.add_tenant_state_if_absent(TenantAdminState("notes", enabled=True))
    saved = await store.tenant_state("notes")
    assert saved is not None
    assert saved.enabled is False


async def test_manifest_and_limits_are_sealed_and_bound_to_their_row(
    store: Store, raw_db: Raw
) -> None:
    await store.save_tenant_state(
        TenantAdminState("extra", "admin", manifest=MANIFEST, limits={"fuel": 123456789})
    )
    await store.save_tenant_state(TenantAdminState("other", limits={"fuel": 1}))
    raw = raw_db()
    blob = b"".join(
        bytes(v)
        for row in raw.execute("SELECT limits_enc, manifest_enc FROM tenant_admin")
        for v in row
        if v is not None
    )
    assert b"s3cret" not in blob
    assert b"123456789" not in blob
    # A sealed value moved to another tenant's row no longer authenticates.
    raw.execute(
        "UPDATE tenant_admin SET limits_enc = "
        "(SELECT limits_enc FROM tenant_admin WHERE tenant = 'extra') WHERE tenant = 'other'"
    )
    with pytest.raises(DecryptionFailed):
        await store.tenant_state("other")


def test_an_admin_row_needs_its_manifest(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    migrate(conn)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO tenant_admin (tenant, origin, limits_enc, updated_at)"
            " VALUES ('x', 'admin', x'00', 0)"
        )
    conn.close()


async def test_a_version_1_database_is_migrated(tmp_path: Path, open_store: OpenStore) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:1]) == 0
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()
    store = await open_store(path)
    await store.save_tenant_state(TenantAdminState("notes", enabled=False))
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_an_added_tenants_module_is_kept_with_its_row(store: Store) -> None:
    module = b"\0asm\x01\0\0\0"
    sha = hashlib.sha256(module).hexdigest()
    state = TenantAdminState("extra", "admin", manifest=MANIFEST, module_sha256=sha)
    with pytest.raises(ValueError, match="sha256"):
        await store.save_added_tenant(replace(state, module_sha256="b" * 64), module)
    assert await store.tenant_state("extra") is None
    await store.save_added_tenant(state, module)
    assert await store.added_tenant_module("extra") == module
    assert await store.added_tenant_module("notes") is None
    assert await store.delete_tenant_state("extra")
    assert await store.added_tenant_module("extra") is None
