"""Backups of a fleet as docs/scale-out.md describes them: ``pg_dump --format=custom`` while
the boxes run, ``pg_restore --no-owner`` into an empty database, and boxes with the same data
key serve from the restored database; a box with another key refuses it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fleet.support import echo_many, failures, needs_fleet
from tests.support.fleet import fresh_database, running_fleet
from tests.support.postgres import find_initdb

pytestmark = [pytest.mark.slow, *needs_fleet]

DATA_KEY = bytes(range(100, 132))


def pg_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A client tool of the server's own version (beside its initdb)."""
    initdb = find_initdb()
    assert initdb is not None
    tool = initdb.resolve().with_name(name)
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=120)


async def test_a_dump_restored_with_the_data_key_serves_the_same_keys(
    fleet_postgres: str, fleet_tenants: Path, fleet_cache: Path, tmp_path: Path
) -> None:
    source = fresh_database(fleet_postgres)
    dump = tmp_path / "smcp.dump"
    with running_fleet(
        fleet_tenants,
        dsn=source,
        box_ids=("box1", "box2"),
        cache_dir=fleet_cache,
        data_key=DATA_KEY,
    ) as fleet:
        key = fleet.create_key("utils")
        assert failures(await echo_many(fleet.url("utils"), key, 6, concurrency=2)) == []
        # While the boxes run: pg_dump reads one consistent snapshot.
        dumped = pg_tool("pg_dump", "--format=custom", f"--file={dump}", source)
        assert dumped.returncode == 0, dumped.stderr

    target = fresh_database(fleet_postgres)
    restored = pg_tool("pg_restore", "--no-owner", f"--dbname={target}", str(dump))
    assert restored.returncode == 0, restored.stderr
    with running_fleet(
        fleet_tenants, dsn=target, box_ids=("box1",), cache_dir=fleet_cache, data_key=DATA_KEY
    ) as fleet:
        assert failures(await echo_many(fleet.url("utils"), key, 6, concurrency=2)) == []

    # The dump without its key: a box with another key refuses to start on it, naming it.
    other_key = running_fleet(fleet_tenants, dsn=target, box_ids=("box9",), cache_dir=fleet_cache)
    with pytest.raises(RuntimeError, match="exited early") as refused, other_key:
        pass
    assert "data key" in str(refused.value).lower()
