"""Fixtures for the operations tests: the ops tenant's module (built once) and a shared
compiled-module cache, so that each box starts without compiling."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.support import build_ops_module, short_dir


@pytest.fixture(scope="session")
def ops_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ops_module(tmp_path_factory.mktemp("ops-build"))


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short folder for a box subprocess: its admin socket path must fit in 107 bytes."""
    path = short_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
