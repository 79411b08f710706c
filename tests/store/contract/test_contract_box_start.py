"""Contract: a real Box starts on either backend, refuses another data key by name, and
recovers only its own (or a dead box's) crash leftovers.

On PostgreSQL several boxes share the database, so a box with its own state folder (and so a
data key of its own) is the mismatch that matters: it must refuse to start, naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smcp_box.box import Box
from smcp_box.config import Settings, load_settings
from smcp_box.errors import DecryptionFailed
from smcp_box.store.blobs import CHUNK_BYTES, BlobQuotas
from smcp_box.store.keyfile import load_data_key
from smcp_box.store.store import open_configured

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


async def _left_behind(settings: Settings) -> tuple[str, str]:
    """As the box of ``settings`` would leave them in a crash: a running task and the chunks
    of an uncommitted blob write; returns (task id, blob version)."""
    key = load_data_key(settings.state_path(), settings.credentials_path())
    store = await open_configured(settings, key)
    try:
        task = await store.tasks.create(
            "notes",
            "alice",
            "slow",
            {"name": "slow"},
            ttl_ms=60_000,
            poll_interval_ms=1000,
            timeout_s=30.0,
            max_open=10,
        )
        writer = await store.blobs.writer("notes", "doc", "text/plain", BlobQuotas())
        await writer.write(b"x" * (CHUNK_BYTES + 1))
        return task.task_id, writer.version
    finally:
        await store.close()


async def test_a_box_recovers_its_own_leftovers_at_start_and_a_dead_boxs_on_demand(
    backend: Backend, tmp_path: Path
) -> None:
    one = _settings(backend, tmp_path / "one", "one")
    box = await Box.start(one)
    await box.stop()
    dead = _settings(backend, tmp_path / "one", "dead")  # same database and key, another box
    mine, _ = await _left_behind(one)
    theirs, their_version = await _left_behind(dead)

    box = await Box.start(one)
    try:
        failed = await box.store.tasks.get("notes", mine, None)
        running = await box.store.tasks.get("notes", theirs, None)
        assert failed is not None
        assert running is not None
        assert (failed.status, running.status) == ("failed", "working")
        assert await box.store.blobs.orphan_versions() == []
        assert await box.store.blobs.orphan_versions("dead") == [their_version]
        # The fleet's sweep, once the dead box's heartbeat stopped:
        assert await box.recover_for("dead") == (1, 1)  # one chunk flushed, one byte buffered
        gone = await box.store.tasks.get("notes", theirs, None)
        assert gone is not None
        assert gone.status == "failed"
        assert await box.store.blobs.orphan_versions("dead") == []
    finally:
        await box.stop()


async def test_a_box_stopping_leaves_other_boxes_tasks_running(
    backend: Backend, tmp_path: Path
) -> None:
    one = _settings(backend, tmp_path / "one", "one")
    box = await Box.start(one)
    await box.stop()
    theirs, _ = await _left_behind(_settings(backend, tmp_path / "one", "other"))
    box = await Box.start(one)
    await box.stop()  # fails this box's own running tasks, and only those
    key = load_data_key(one.state_path(), one.credentials_path())
    store = await open_configured(one, key)
    try:
        task = await store.tasks.get("notes", theirs, None)
        assert task is not None
        assert task.status == "working"
    finally:
        await store.close()
