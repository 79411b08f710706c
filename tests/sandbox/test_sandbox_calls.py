"""Calls that work: the echo module, every host import, and what a call reports."""

from __future__ import annotations

import json

import pytest

from smcp_box.errors import BadModuleReply, ModuleTrapped, PayloadTooLarge, StoreError
from smcp_box.sandbox import Limits, Sandbox

from .support import RecordingHost, wasm

REQUEST = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}})


async def test_echo_round_trip(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    outcome = await sandbox.call(module, REQUEST, host)
    assert outcome.reply == REQUEST
    assert outcome.parsed == json.loads(REQUEST)
    # A trivial call costs a few dozen fuel units (measured: 38 for alloc + handle).
    assert 0 < outcome.fuel_used < 200
    assert outcome.memory_bytes == 65536
    assert outcome.host_calls == 0
    assert 0 < outcome.wall_s < 1


async def test_non_ascii_message_round_trips(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    message = json.dumps({"text": "grüße, 世界 🌍"}, ensure_ascii=False)
    outcome = await sandbox.call(module, message, host)
    assert outcome.reply == message


async def test_empty_reply_means_no_reply(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("quiet", wasm("no_reply"), Limits())
    outcome = await sandbox.call(module, '{"jsonrpc":"2.0","method":"x"}', host)
    assert outcome.reply == ""
    assert outcome.parsed is None


async def test_message_over_limit_is_refused(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits(max_message_bytes=100))
    with pytest.raises(PayloadTooLarge, match=r"max_message_bytes \(100\)"):
        await sandbox.call(module, json.dumps({"pad": "x" * 200}), host)


def _message_of(size: int) -> str:
    """A JSON message of exactly ``size`` bytes, which the echo fixture sends back as is."""
    text = json.dumps({"pad": "x" * (size - len('{"pad": ""}'))})
    assert len(text) == size
    return text


async def test_message_and_reply_limits_at_their_boundaries(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits(max_message_bytes=100))
    assert (await sandbox.call(module, _message_of(100), host)).reply == _message_of(100)
    with pytest.raises(PayloadTooLarge, match=r"max_message_bytes \(100\)"):
        await sandbox.call(module, _message_of(101), host)
    module = sandbox.load("echo", wasm("echo"), Limits(max_reply_bytes=100))
    assert (await sandbox.call(module, _message_of(100), host)).reply == _message_of(100)
    with pytest.raises(BadModuleReply, match=r"over \[limits\].max_reply_bytes \(100\)") as info:
        await sandbox.call(module, _message_of(101), host)
    # A JSON-RPC error that names the quota, in its data too.
    assert info.value.data == {"tenant": "echo", "quota": "max_reply_bytes"}


def test_call_sync_runs_in_the_calling_thread(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    assert sandbox.call_sync(module, REQUEST, host).reply == REQUEST


async def test_reused_instance_does_not_grow(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    message = json.dumps({"pad": "x" * 20_000})
    for _ in range(200):
        outcome = await sandbox.call(module, message, host)
    assert outcome.memory_bytes == 65536
    assert sandbox.stats("echo").instances_created == 1


# --- host imports ---------------------------------------------------------------------------


async def test_log_and_config_get(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("hosty", wasm("host_imports"), Limits())
    outcome = await sandbox.call(module, "1", host)
    assert outcome.parsed == "hello, tenant"
    assert host.logs == [("info", "hello from wasm")]
    assert outcome.host_calls == 2
    # Host imports run in the sandbox's worker thread, never on the event loop.
    assert all(name.startswith("smcp-wasm") for name in host.threads)


async def test_config_get_missing_key(sandbox: Sandbox) -> None:
    module = sandbox.load("hosty", wasm("host_imports"), Limits())
    outcome = await sandbox.call(module, "1", RecordingHost(config={}))
    assert outcome.reply == "null"


async def test_kv_round_trip(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("hosty", wasm("host_imports"), Limits())
    assert (await sandbox.call(module, "2", host)).parsed == "v1"  # kv_set then kv_get
    assert host.kv == {"k1": '"v1"'}
    host.kv["k2"] = "2"
    host.kv["other"] = "3"
    assert (await sandbox.call(module, "3", host)).parsed == ["k1", "k2"]  # kv_list("k")
    assert (await sandbox.call(module, "6", host)).parsed == 0  # kv_delete("k1")
    assert "k1" not in host.kv
    assert (await sandbox.call(module, "9", host)).parsed is True  # kv_get of a missing key


async def test_kv_set_reports_quota_and_store_failures(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    module = sandbox.load("hosty", wasm("host_imports"), Limits())
    assert (await sandbox.call(module, "4", host)).parsed == -1  # KvQuotaExceeded
    assert (await sandbox.call(module, "5", host)).parsed == -2  # StoreError


async def test_notify_and_time(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("hosty", wasm("host_imports"), Limits())
    assert (await sandbox.call(module, "7", host)).parsed is True
    assert [n["method"] for n in host.notifications] == ["notifications/message"]
    assert (await sandbox.call(module, "8", host)).parsed is True  # time_now_ms == host clock


async def test_host_error_fails_the_call_and_discards_the_instance(sandbox: Sandbox) -> None:
    class FailingHost(RecordingHost):
        def kv_get(self, key: str) -> str | None:
            raise StoreError("the database is locked")

    module = sandbox.load("hosty", wasm("host_imports"), Limits())
    with pytest.raises(StoreError, match="database is locked"):
        await sandbox.call(module, "9", FailingHost())
    stats = sandbox.stats("hosty")
    assert (stats.warm_instances, stats.instances_discarded) == (0, 1)
    assert (await sandbox.call(module, "9", RecordingHost())).parsed is True


async def test_host_call_limit(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("hosty", wasm("host_imports"), Limits(max_host_calls=1))
    with pytest.raises(ModuleTrapped, match=r"config_get: more than 1 host calls"):
        await sandbox.call(module, "1", host)


@pytest.mark.parametrize("reply", [r'{"a":"\ud800"}', '{"a":NaN}', "[Infinity]"])
async def test_a_reply_that_is_not_strict_json_is_a_bad_reply(
    sandbox: Sandbox, host: RecordingHost, reply: str
) -> None:
    """A lone surrogate or non-finite number in a module's reply would fail wherever the reply
    is encoded again (the HTTP answer, an audit row): it is refused at the boundary."""
    module = sandbox.load("echo", wasm("echo"), Limits())
    with pytest.raises(BadModuleReply, match="not valid JSON"):
        await sandbox.call(module, reply, host)
