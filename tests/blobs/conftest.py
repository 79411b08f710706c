"""Fixtures for the blob tests: the blob tenant built from source, and a box serving it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smcp_box.box import Box
from tests.ops.support import REPO, add_ops_tenant, box_settings, serving, started

SOURCE = Path(__file__).parent / "fixtures" / "blob_tenant.c"
LIMITS = "fuel = 100000000000\ntimeout_ms = 60000\nmax_host_calls = 100000\n"


@pytest.fixture(scope="session")
def blob_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("ziglang")
    module = tmp_path_factory.mktemp("blob-build") / "blobs.wasm"
    subprocess.run(
        ["sh", str(REPO / "sdk" / "c" / "cc.sh"), str(module), str(SOURCE)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return module


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-cache")


@dataclass
class BlobBox:
    box: Box
    base: str
    keys: dict[str, str]

    def url(self, tenant: str) -> str:
        return f"{self.base}/t/{tenant}/mcp"


#: The tenants served: alpha lists its blobs as resources, beta does not and has small quotas,
#: gamma has a short wall-clock limit, delta lists its blobs and reads at most 2 KiB of one.
TENANTS = {
    "alpha": LIMITS + "[blobs]\nresources = true\n",
    "beta": LIMITS + "[quotas]\nblob_max_bytes = 1000\nblob_max_count = 3\n",
    "gamma": "fuel = 100000000000\ntimeout_ms = 300\nmax_host_calls = 100000\n",
    "delta": LIMITS + "[quotas]\nblob_resource_max_bytes = 2048\n[blobs]\nresources = true\n",
}


@pytest.fixture
async def blob_box(tmp_path: Path, blob_module: Path, module_cache: Path) -> AsyncIterator[BlobBox]:
    tenants = tmp_path / "tenants"
    for name, limits in TENANTS.items():
        add_ops_tenant(tenants, blob_module, name=name, limits=limits)
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box, serving(box) as base:
        keys = {name: (await box.store.create_api_key(name, "tests"))[1] for name in TENANTS}
        yield BlobBox(box, base, keys)
