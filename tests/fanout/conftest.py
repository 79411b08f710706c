"""Two boxes in this process on one throwaway PostgreSQL database, each with its own state
directory, ``[cluster] box_id`` and admin socket: a fleet small enough for one test.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from smcp_box.admin.client import AdminClient
from smcp_box.admin.server import start_admin
from smcp_box.box import Box
from smcp_box.config import load_settings
from smcp_box.store import keyfile
from tests.admin.support import RunningBox, copy_example_tenants, short_runtime_dir
from tests.support.postgres import (
    create_database,
    throwaway_postgres_or_skip,
)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    yield from throwaway_postgres_or_skip()


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
async def fleet_dsn(postgres_server: str) -> str:
    """A fresh database for this test on the module's server."""
    return await create_database(postgres_server, "fanout")


@contextlib.asynccontextmanager
async def fleet_box(
    workdir: Path, cache_dir: Path, dsn: str, box_id: str, data_key_from: Path | None
) -> AsyncIterator[RunningBox]:
    """A box on ``dsn`` named ``box_id``; ``data_key_from``: another box's state directory,
    whose data key this one shares (a fleet has one key)."""
    runtime_dir = short_runtime_dir()
    settings = load_settings(
        None,
        environ={},
        overrides={
            "state_dir": str(workdir / "state"),
            "cache_dir": str(cache_dir),
            "runtime_dir": str(runtime_dir),
            "tenants_dir": str(copy_example_tenants(workdir / "tenants")),
            "store.backend": "postgres",
            "store.dsn": dsn,
            "cluster.box_id": box_id,
        },
    )
    if data_key_from is not None:
        state = settings.state_path()
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(data_key_from / keyfile.KEY_FILE_NAME, state / keyfile.KEY_FILE_NAME)
    box = await Box.start(settings)
    stop = asyncio.Event()
    try:
        server = start_admin(box, stop.wait)
    except BaseException:
        await box.stop()
        raise
    client = AdminClient(runtime_dir / "admin.sock")
    try:
        yield RunningBox(box, settings, runtime_dir / "admin.sock", client, stop, server)
    finally:
        await client.aclose()
        stop.set()
        await asyncio.wait_for(server, 10)
        await box.stop()
        shutil.rmtree(runtime_dir, ignore_errors=True)


@pytest.fixture
async def two_boxes(
    tmp_path: Path, module_cache: Path, fleet_dsn: str
) -> AsyncIterator[tuple[RunningBox, RunningBox]]:
    async with (
        fleet_box(tmp_path / "a", module_cache, fleet_dsn, "box_a", None) as box_a,
        fleet_box(
            tmp_path / "b", module_cache, fleet_dsn, "box_b", box_a.settings.state_path()
        ) as box_b,
    ):
        yield box_a, box_b
