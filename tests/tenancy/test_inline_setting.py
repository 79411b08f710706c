"""[sandbox].inline_fuel: short calls answer on the loop within that budget; 0 sends every call
to a worker thread; a call that reaches kv is rerun in a worker, whole, and its tool backs off."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.sandbox import Sandbox
from smcp_box.seams import CallContext, JsonObject
from smcp_box.store import Store
from smcp_box.tenancy.hostcalls import StoreHostCalls
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


async def test_a_kv_tool_reruns_in_a_worker_and_writes_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """notes imports kv: its calls get inline attempts too. note_create stops at its first kv
    import, before any effect, and runs again in a worker: one note, one id. Its backoff is
    the tool's own: the tenant's ping still answers inline right after."""
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tenants" / "notes", tenants / "notes")
    store = await Store.open(tmp_path / "box.db", secrets.token_bytes(32))
    try:
        registry = TenantRegistry(
            sandbox=sandbox, kv=store, defaults=SandboxSettings(), clock=time.time
        )
        registry.load_folder(tenants)
        tenant = registry.get("notes")
        assert tenant is not None

        async def notify(message: JsonObject) -> None:
            pass

        before = sandbox.stats("notes")
        create = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "note_create", "arguments": {"title": "t", "body": "b"}},
        }
        reply = await tenant.call(create, CallContext("notes", "2025-11-25", notify))
        assert reply is not None
        assert reply["result"].get("isError") is not True, reply
        stats = sandbox.stats("notes")
        assert stats.inline_fallbacks - before.inline_fallbacks == 1
        assert stats.calls - before.calls == 1  # the worker's run; the attempt is no call
        assert stats.inline_calls == before.inline_calls
        # One note and the id counter (2: the first increment finds it absent and skips id 0):
        # the create run twice would have left the counter at 3 and a second note.
        assert await store.kv_list("notes") == ["meta:next_id", "note:0000000001"]
        assert await store.kv_get("notes", "meta:next_id") == "2"
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert await tenant.call(ping, CallContext("notes", "2025-11-25", notify))
        assert sandbox.stats("notes").inline_calls == before.inline_calls + 1
    finally:
        await store.close()


async def test_an_abandoned_attempt_logs_nothing_and_a_finished_one_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An inline attempt's log lines wait until it is known to have finished: the rerun of an
    abandoned attempt writes its own, so they would otherwise appear twice."""
    logger = logging.getLogger("smcp_box.tests.inline")

    async def notify(message: JsonObject) -> None:
        pass

    host = StoreHostCalls(
        loop=asyncio.get_running_loop(),
        kv=None,  # type: ignore[arg-type]  # nothing here touches kv
        tenant="t1",
        config={},
        ctx=CallContext("t1", "2025-11-25", notify),
        clock=time.time,
        logger=logger,
    )
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {}}
    with caplog.at_level(logging.INFO, logger=logger.name):
        host.hold_effects()
        host.log("info", "attempt")
        host.notify(note)
        assert host.release_held(finished=False) == []
        assert "attempt" not in caplog.text
        host.hold_effects()
        host.log("warning", "rerun")
        host.notify(note)
        assert host.release_held(finished=True) == [note]
        assert caplog.text.count("tenant t1: rerun") == 1
        host.log("info", "after")  # no longer held: written at once
        assert "tenant t1: after" in caplog.text
