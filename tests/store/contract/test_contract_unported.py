"""Areas not on PostgreSQL yet refuse clearly, and the box refuses to start on such a backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from smcp_box.box import Box
from smcp_box.config import load_settings
from smcp_box.errors import StoreError
from smcp_box.store import Store
from smcp_box.store.store import unported_areas

from .conftest import Backend


def test_sqlite_has_every_area() -> None:
    assert unported_areas("sqlite") == []


def test_postgres_names_what_it_lacks() -> None:
    missing = unported_areas("postgres")
    assert missing == ["tasks", "blobs"]
    ported = {"key_check", "kv", "sessions", "apikeys", "audit", "tenant_state", "users"}
    ported |= {"signing_keys", "secrets", "approvals", "baselines", "oauth"}
    assert not ported & set(missing)


async def test_an_unported_area_refuses_by_name(backend: Backend) -> None:
    store: Store = await backend.open()
    if backend.name == "sqlite":
        assert await store.blobs.listing("t") == []
        assert await store.tasks.count_open() == {}
        return
    with pytest.raises(StoreError, match="'blobs' is not available on the postgres backend"):
        await store.blobs.listing("t")
    with pytest.raises(StoreError, match="'tasks' is not available"):
        await store.tasks.count_open()


async def test_a_box_on_postgres_refuses_to_start_naming_the_missing_areas(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None,
        environ={
            "SMCP_BOX_STORE_BACKEND": "postgres",
            "SMCP_BOX_STORE_DSN": "postgresql://smcp@127.0.0.1:1/smcp",
            "SMCP_BOX_STATE_DIR": str(tmp_path / "state"),
        },
    )
    with pytest.raises(StoreError, match="not ported to it: tasks, blobs") as caught:
        await Box.start(settings)
    assert "kv" not in str(caught.value)
    assert not (tmp_path / "state").exists()
