"""Fixtures for the fleet tests: one throwaway PostgreSQL per test session, the example
tenants the boxes serve, a compiled-module cache every box shares, and a fleet of three boxes
behind HAProxy per test module (tests/support/fleet.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.boxproc import copy_tenants
from tests.support.fleet import Fleet, fresh_database, running_fleet
from tests.support.postgres import throwaway_postgres


@pytest.fixture(scope="session")
def fleet_postgres() -> Iterator[str]:
    """The DSN of the session's throwaway PostgreSQL server's maintenance database."""
    with throwaway_postgres() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def fleet_tenants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tenants(tmp_path_factory.mktemp("fleet-tenants"), ["utils", "notes"])


@pytest.fixture(scope="session")
def fleet_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet-cache")


@pytest.fixture(scope="module")
def fleet(fleet_postgres: str, fleet_tenants: Path, fleet_cache: Path) -> Iterator[Fleet]:
    """Three boxes on one fresh database behind HAProxy, for one test module."""
    with running_fleet(
        fleet_tenants, dsn=fresh_database(fleet_postgres), cache_dir=fleet_cache
    ) as running:
        yield running


@pytest.fixture(scope="module")
def utils_key(fleet: Fleet) -> str:
    """An API key for utils, made on the last box."""
    return fleet.create_key("utils", on=list(fleet.boxes)[-1])
