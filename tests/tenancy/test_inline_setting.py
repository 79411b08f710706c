"""[sandbox].inline_fuel: short calls of kv-free modules answer on the loop within that budget;
0 sends every call to a worker thread; kv-using modules always go to a worker."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.sandbox import Sandbox
from smcp_box.seams import CallContext, JsonObject
from smcp_box.tenancy.registry import TenantRegistry

REPO = Path(__file__).resolve().parents[2]
HASH_CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "hash", "arguments": {"text": "abc"}},
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


async def call_hash(sandbox: Sandbox, tmp_path: Path, inline_fuel: int) -> int:
    tenants = tmp_path / f"tenants-{inline_fuel}"
    shutil.copytree(REPO / "tenants" / "utils", tenants / "utils")
    registry = TenantRegistry(
        sandbox=sandbox,
        kv=None,  # type: ignore[arg-type]  # utils imports no kv function
        defaults=SandboxSettings(inline_fuel=inline_fuel),
        clock=time.time,
    )
    registry.load_folder(tenants)
    tenant = registry.get("utils")
    assert tenant is not None
    sent: list[JsonObject] = []

    async def notify(message: JsonObject) -> None:
        sent.append(message)

    before = sandbox.stats("utils").inline_calls
    reply = await tenant.call(HASH_CALL, CallContext("utils", "2025-11-25", notify))
    assert reply is not None
    assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in str(reply)
    return sandbox.stats("utils").inline_calls - before


async def test_short_calls_answer_inline(sandbox: Sandbox, tmp_path: Path) -> None:
    assert await call_hash(sandbox, tmp_path, SandboxSettings().inline_fuel) == 1


async def test_zero_sends_every_call_to_a_worker(sandbox: Sandbox, tmp_path: Path) -> None:
    assert await call_hash(sandbox, tmp_path, 0) == 0


def test_inline_fuel_is_not_a_tenant_limit() -> None:
    from smcp_box.errors import ConfigError
    from smcp_box.tenancy.manifest import resolve_limits

    with pytest.raises(ConfigError, match="unknown limit 'inline_fuel'"):
        resolve_limits(SandboxSettings(), {"inline_fuel": 5})
