from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.sandbox import Sandbox

from .support import RecordingHost


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cwasm-cache"


@pytest.fixture
def sandbox(cache_dir: Path) -> Iterator[Sandbox]:
    box = Sandbox(cache_dir)
    yield box
    box.close()


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost(config={"greeting": '"hello, tenant"'})
