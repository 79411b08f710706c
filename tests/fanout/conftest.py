"""Two boxes in this process on one throwaway PostgreSQL database, each with its own state
directory, ``[cluster] box_id`` and admin socket: a fleet small enough for one test.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from smcp_box.store import keyfile
from tests.admin.support import RunningBox, running_box
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

    def share_data_key(_tenants: Path) -> None:
        if data_key_from is not None:
            state = workdir / "state"
            state.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copy2(data_key_from / keyfile.KEY_FILE_NAME, state / keyfile.KEY_FILE_NAME)

    overrides = {"store.backend": "postgres", "store.dsn": dsn, "cluster.box_id": box_id}
    async with running_box(
        workdir, cache_dir, before_start=share_data_key, overrides=overrides
    ) as running:
        yield running


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
