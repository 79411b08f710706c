"""``smcp-box backup`` while a real box serves and writes, and ``smcp-box restore``: refused
while the box runs, refused for backups it could not use, and a real round trip."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

from smcp_box.box import Box
from smcp_box.errors import ConfigError
from smcp_box.ops.backup import inspect_backup, run_restore
from smcp_box.store import Store
from smcp_box.store.keyfile import read_key_file
from smcp_box.store.statelock import exclusive
from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import modern_call_tool
from tests.ops.support import add_ops_tenant, box_settings, ops_box, started
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def data_key(proc: BoxProcess) -> bytes:
    return read_key_file(proc.workdir / "state" / "data.key")


async def notes_in(path: Path, key: bytes) -> int:
    store = await Store.open(path, key)
    try:
        return len(await store.kv_list("notes"))
    finally:
        await store.close()


async def write_notes(
    http: httpx.AsyncClient, proc: BoxProcess, key: str, stop: asyncio.Event, total: list[int]
) -> int:
    """Create notes until ``stop``; ``total[0]`` counts the notes of every writer."""
    written = 0
    while not stop.is_set():
        args = {"title": f"note {written}", "body": "x" * 200}
        reply = await modern_call_tool(http, proc.url("notes"), key, "note_create", args, written)
        assert "result" in reply, reply
        written += 1
        total[0] += 1
    return written


async def test_backups_while_serving_and_writing_are_consistent(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    proc = ops_box(workdir, ops_module, module_cache, examples=("notes",))
    proc.start()
    backups = workdir / "backups"
    backups.mkdir()
    try:
        key = proc.create_key("notes")
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=30) as http:
            total = [0]
            writers = [
                asyncio.create_task(write_notes(http, proc, key, stop, total)) for _ in range(4)
            ]
            outputs = []
            for i in range(3):
                # Every backup starts after more notes were written, while writes go on.
                wanted = 8 * (i + 1)
                await wait_until(
                    lambda wanted=wanted: total[0] >= wanted, what=f"{wanted} notes written"
                )
                done = await asyncio.to_thread(proc.cli, "backup", str(backups / f"b{i}.db"))
                outputs.append(done.stdout)
            await wait_until(lambda: total[0] >= 32, what="more notes after the last backup")
            stop.set()
            written = sum(await asyncio.gather(*writers))
        assert written > 20
        # A folder as the target gets a dated file.
        dated = await asyncio.to_thread(proc.cli, "backup", str(backups), "--json")
        assert "smcp-box-" in dated.stdout
        refused = await asyncio.to_thread(proc.cli, "backup", str(backups / "b0.db"), check=False)
        assert refused.returncode == 1
        assert "exists" in refused.stderr
        assert proc.stop() == 0
    finally:
        proc.stop()
    counts = []
    for i, out in enumerate(outputs):
        assert "audit chain intact" in out, out
        path = backups / f"b{i}.db"
        info = inspect_backup(path, data_key(proc))
        assert info.audit.ok, info.audit
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        counts.append(await notes_in(path, data_key(proc)))
    # Each backup is a later snapshot of the same growing data.
    assert 0 < counts[0] <= counts[1] <= counts[2]


async def test_restore_round_trip(workdir: Path, ops_module: Path, module_cache: Path) -> None:
    proc = ops_box(workdir, ops_module, module_cache)
    proc.start()
    backup = workdir / "before.db"
    try:
        kept = proc.create_key("ops")
        proc.cli("backup", str(backup))
        lost = proc.create_key("ops")
        # Refused while the box runs.
        running = proc.cli("restore", str(backup), check=False)
        assert running.returncode == 1
        assert "running" in running.stderr
        assert proc.stop() == 0
        restored = proc.cli("restore", str(backup))
        assert "kept as" in restored.stdout
        baks = list((workdir / "state").glob("smcp-box.db.*.bak"))
        assert len(baks) == 1
        proc.start()
        async with httpx.AsyncClient(timeout=30) as http:
            ok = await modern_call_tool(http, proc.url("ops"), kept, "hello", {})
            assert ok["result"]["content"][0]["text"] == "hello"
            # The key made after the backup is gone with the rest of the newer state.
            gone = await http.post(
                proc.url("ops"), json={}, headers={"Authorization": f"Bearer {lost}"}
            )
            assert gone.status_code == 401
        assert proc.cli("audit", "verify").returncode == 0
        assert proc.stop() == 0
    finally:
        proc.stop()
    # The replaced database still holds the newer key's row.
    store = await Store.open(baks[0], data_key(proc))
    try:
        assert len(await store.list_api_keys("ops")) == 2
    finally:
        await store.close()


async def test_restore_refuses_backups_it_cannot_use(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    other = ops_box(workdir / "other", ops_module, module_cache)
    other.start()
    other.cli("backup", str(workdir / "foreign.db"))
    assert other.stop() == 0
    proc = ops_box(workdir / "box", ops_module, module_cache)
    proc.start()
    proc.cli("backup", str(workdir / "own.db"))
    assert proc.stop() == 0

    foreign = proc.cli("restore", str(workdir / "foreign.db"), check=False)
    assert foreign.returncode == 1
    assert "data key" in foreign.stderr
    (workdir / "garbage.db").write_bytes(b"not a database at all" * 100)
    garbage = proc.cli("restore", str(workdir / "garbage.db"), check=False)
    assert garbage.returncode == 1
    assert "not a readable smcp-box database" in garbage.stderr
    with sqlite3.connect(workdir / "own.db") as raw:
        raw.execute("UPDATE audit SET actor = 'nobody' WHERE id = 1")
    broken = proc.cli("restore", str(workdir / "own.db"), check=False)
    assert broken.returncode == 1
    assert "audit chain does not verify" in broken.stderr
    # Nothing was replaced by the refusals.
    assert not list((workdir / "box" / "state").glob("*.bak"))
    forced = proc.cli("restore", str(workdir / "own.db"), "--force")
    assert forced.returncode == 0
    assert proc.cli("audit", "verify", check=False).returncode == 1


async def test_restore_refuses_while_a_box_holds_the_state_lock(
    tmp_path: Path, ops_module: Path, module_cache: Path
) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box:
        # No admin socket here: the lock alone must stop the restore.
        await box.store.backup(tmp_path / "b.db")
        with pytest.raises(ConfigError, match="is running"):
            await run_restore(settings, tmp_path / "b.db")
    result = await run_restore(settings, tmp_path / "b.db")
    assert result.previous is not None
    assert result.previous.exists()
    # A restore in progress (it holds the lock exclusively) keeps a box from starting.
    with exclusive(settings.state_path()), pytest.raises(ConfigError, match="restore is in"):
        await Box.start(settings)


async def test_backup_and_restore_carry_blobs(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    proc = ops_box(workdir, ops_module, module_cache)
    first, second, out = workdir / "first.bin", workdir / "second.bin", workdir / "out.bin"
    first.write_bytes(b"first version " * 300_000)  # ~4 MiB: many chunks
    second.write_bytes(b"second")
    proc.start()
    try:
        proc.cli("blob", "put", "ops", "data/file.bin", str(first))
        proc.cli("backup", str(workdir / "with-blobs.db"))
        proc.cli("blob", "put", "ops", "data/file.bin", str(second))
        proc.cli("blob", "put", "ops", "data/later.bin", str(second))
        assert proc.stop() == 0
        proc.cli("restore", str(workdir / "with-blobs.db"))
        proc.start()
        proc.cli("blob", "get", "ops", "data/file.bin", "-o", str(out))
        assert out.read_bytes() == first.read_bytes()
        listed = proc.cli("blob", "list", "ops").stdout
        assert "data/later.bin" not in listed
        assert "1 blob(s)" in listed
    finally:
        proc.stop()
