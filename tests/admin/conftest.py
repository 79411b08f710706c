from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.admin.support import RunningBox, running_box


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-module cache for the whole run: compiling is the slow part of a start."""
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
async def rb(tmp_path: Path, module_cache: Path) -> AsyncIterator[RunningBox]:
    async with running_box(tmp_path, module_cache) as running:
        yield running
