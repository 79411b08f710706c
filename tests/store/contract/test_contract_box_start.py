"""Contract: a real Box starts on either backend, and refuses another data key by name.

On PostgreSQL several boxes share the database, so a box with its own state folder (and so a
data key of its own) is the mismatch that matters: it must refuse to start, naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smcp_box.box import Box
from smcp_box.config import Settings, load_settings
from smcp_box.errors import DecryptionFailed

from .conftest import Backend


def _settings(backend: Backend, root: Path, box_id: str) -> Settings:
    environ = {
        "SMCP_BOX_STATE_DIR": str(root / "state"),
        "SMCP_BOX_CACHE_DIR": str(root / "cache"),
        "SMCP_BOX_TENANTS_DIR": str(root / "tenants"),
        "SMCP_BOX_CLUSTER_BOX_ID": box_id,
    }
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    if backend.name == "postgres":
        environ |= {"SMCP_BOX_STORE_BACKEND": "postgres", "SMCP_BOX_STORE_DSN": backend.where}
    else:
        environ["SMCP_BOX_STATE_DIR"] = str(Path(backend.where).parent / "state")
    return load_settings(None, environ=environ)


async def test_a_box_starts_and_serves_its_store(backend: Backend, tmp_path: Path) -> None:
    settings = _settings(backend, tmp_path / "one", "one")
    box = await Box.start(settings)
    try:
        assert box.box_id == "one"
        assert box.store.box_id == "one"
        await box.store.healthcheck()
        assert await box.store.tasks.count_open() == {}
        assert await box.store.blobs.all_usage() == {}
    finally:
        await box.stop()


async def test_a_box_with_another_data_key_refuses_to_start(
    backend: Backend, tmp_path: Path
) -> None:
    first = _settings(backend, tmp_path / "one", "one")
    box = await Box.start(first)
    await box.stop()
    if backend.name == "sqlite":
        # One box per SQLite file: the same box, restarted with a replaced key file.
        key_file = first.state_path() / "data.key"
        key_file.unlink()
        second = first
    else:
        # Another box on the shared database, whose own state folder made a key of its own.
        second = _settings(backend, tmp_path / "two", "two")
    with pytest.raises(DecryptionFailed, match="data key does not match") as caught:
        await Box.start(second)
    where = "contract_" if backend.name == "postgres" else str(first.database_path())
    assert where in str(caught.value)
    assert "original key file" in str(caught.value)
