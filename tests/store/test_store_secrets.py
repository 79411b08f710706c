"""Tenant secrets in the store: sealed per tenant and name, listed by name only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smcp_box.errors import DecryptionFailed
from tests.store.conftest import FakeClock, OpenStore


async def test_set_list_delete_and_reopen(
    open_store: OpenStore, db_path: Path, clock: FakeClock
) -> None:
    store = await open_store()
    await store.set_secret("notes", "TOKEN", "first")
    clock.advance(5)
    await store.set_secret("notes", "TOKEN", "second")
    await store.set_secret("utils", "KEY", "other")
    assert await store.secret_names("notes") == [("notes", "TOKEN", clock.now)]
    assert [name for _, name, _ in await store.secret_names()] == ["TOKEN", "KEY"]
    await store.close()
    again = await open_store()
    assert await again.all_secrets() == {"notes": {"TOKEN": "second"}, "utils": {"KEY": "other"}}
    assert await again.delete_secret("notes", "TOKEN") is True
    assert await again.delete_secret("notes", "TOKEN") is False
    assert await again.delete_tenant_secrets("utils") == 1
    assert await again.all_secrets() == {}


async def test_a_value_moved_to_another_tenant_does_not_open(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store()
    await store.set_secret("notes", "TOKEN", "for notes only")
    await store.set_secret("utils", "TOKEN", "for utils")
    await store.close()
    with sqlite3.connect(db_path) as raw:
        (sealed,) = raw.execute(
            "SELECT value_enc FROM tenant_secrets WHERE tenant = 'notes'"
        ).fetchone()
        raw.execute("UPDATE tenant_secrets SET value_enc = ? WHERE tenant = 'utils'", (sealed,))
    reopened = await open_store()
    with pytest.raises(DecryptionFailed):
        await reopened.all_secrets()
