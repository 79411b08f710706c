"""Loading modules: the ABI checks (import allowlist, exports) and the compiled-module cache."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from smcp_box.errors import ConfigError, ModuleRejected
from smcp_box.sandbox import EngineSettings, Limits, Sandbox

from .support import RecordingHost, wasm

MESSAGE = '{"jsonrpc":"2.0","id":1,"method":"ping"}'


def test_wasi_module_is_rejected(sandbox: Sandbox) -> None:
    """A module can only import from "smcp": no files, environment, clock or sockets of the host."""
    with pytest.raises(ModuleRejected) as caught:
        sandbox.load("wasi", wasm("forbidden_wasi"), Limits())
    assert "import wasi_snapshot_preview1.fd_write is not allowed" in caught.value.message
    assert "allowed imports: smcp.log" in caught.value.message
    assert "wasi" not in sandbox.tenants()


def test_other_imports_are_rejected_by_name_and_type(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRejected) as caught:
        sandbox.load("envy", wasm("forbidden_env"), Limits())
    assert caught.value.data is not None
    assert caught.value.data["problems"] == [
        "import env.foo is not allowed",
        "import smcp.kv_get has type (i32) -> i32, expected (i32, i32) -> i64",
    ]


def test_missing_exports_are_named(sandbox: Sandbox) -> None:
    with pytest.raises(
        ModuleRejected, match="missing export 'smcp_alloc'; missing export 'smcp_handle'"
    ):
        sandbox.load("bare", wasm("missing_exports"), Limits())


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b'(module (memory (export "memory") 1))', "not a wasm binary"),
        (b"\0asm\x0d\x00\x01\x00", "not a core wasm module"),
        (b"\0asm\x01\x00\x00\x00\xff\xff", "does not compile"),
    ],
    ids=["wat-text", "component", "garbage"],
)
def test_non_modules_are_rejected(sandbox: Sandbox, payload: bytes, match: str) -> None:
    with pytest.raises(ModuleRejected, match=match):
        sandbox.load("junk", payload, Limits())


async def test_initial_memory_over_the_limit(sandbox: Sandbox) -> None:
    module = sandbox.load("greedy", wasm("huge_initial_memory"), Limits())
    with pytest.raises(ModuleRejected, match="cannot be instantiated under its limits"):
        await sandbox.call(module, MESSAGE, RecordingHost())
    raised = sandbox.load("greedy", wasm("huge_initial_memory"), Limits(memory_mib=512))
    assert (await sandbox.call(raised, MESSAGE, RecordingHost())).reply == MESSAGE


# --- the compiled-module cache ---------------------------------------------------------------


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.cwasm"))


async def test_second_load_comes_from_disk(cache_dir: Path) -> None:
    with Sandbox(cache_dir) as first:
        module = first.load("echo", wasm("echo"), Limits())
        assert not module.cache_hit
        assert first.cache_counters.compiles == 1
    [entry] = _entries(cache_dir)
    assert entry.name.startswith(module.sha256 + f"-wt{version('wasmtime')}-")
    assert entry.with_name(entry.name + ".sha256").exists()

    with Sandbox(cache_dir) as second:
        again = second.load("echo", wasm("echo"), Limits())
        assert again.cache_hit
        assert (second.cache_counters.hits, second.cache_counters.compiles) == (1, 0)
        assert (await second.call(again, MESSAGE, RecordingHost())).reply == MESSAGE


def test_one_compile_for_tenants_sharing_a_module(sandbox: Sandbox) -> None:
    a = sandbox.load("a", wasm("echo"), Limits())
    b = sandbox.load("b", wasm("echo"), Limits())
    assert not a.cache_hit
    assert b.cache_hit
    assert sandbox.cache_counters.compiles == 1


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate", "garbage", "lose-digest"])
async def test_corrupt_cache_entry_is_recompiled(cache_dir: Path, damage: str) -> None:
    with Sandbox(cache_dir) as first:
        first.load("echo", wasm("echo"), Limits())
    [entry] = _entries(cache_dir)
    data = bytearray(entry.read_bytes())
    if damage == "flip-a-byte":
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    elif damage == "truncate":
        entry.write_bytes(bytes(data[: len(data) // 3]))
    elif damage == "garbage":
        entry.write_bytes(b"not machine code")
    else:
        entry.with_name(entry.name + ".sha256").unlink()

    with Sandbox(cache_dir) as second:
        module = second.load("echo", wasm("echo"), Limits())
        assert not module.cache_hit
        assert second.cache_counters.compiles == 1
        assert second.cache_counters.discarded == (0 if damage == "lose-digest" else 1)
        assert (await second.call(module, MESSAGE, RecordingHost())).reply == MESSAGE
    # The entry was rewritten whole and now loads.
    with Sandbox(cache_dir) as third:
        assert third.load("echo", wasm("echo"), Limits()).cache_hit


def test_engine_config_is_part_of_the_key(cache_dir: Path) -> None:
    with Sandbox(cache_dir) as default:
        default.load("echo", wasm("echo"), Limits())
        default_fingerprint = default.fingerprint
    other = EngineSettings(memory_reservation=16 << 20)
    with Sandbox(cache_dir, engine_settings=other) as tuned:
        assert tuned.fingerprint != default_fingerprint
        assert not tuned.load("echo", wasm("echo"), Limits()).cache_hit
    assert len(_entries(cache_dir)) == 2
    # Fingerprints are deterministic: a new sandbox with the same settings finds its entry.
    with Sandbox(cache_dir, engine_settings=EngineSettings(memory_reservation=16 << 20)) as again:
        assert again.fingerprint == tuned.fingerprint
        assert again.load("echo", wasm("echo"), Limits()).cache_hit


def test_unwritable_cache_is_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with Sandbox(blocker / "cache") as box:
        module = box.load("echo", wasm("echo"), Limits())
        assert not module.cache_hit
        assert box.cache_counters.write_failures == 1
        assert box.call_sync(module, MESSAGE, RecordingHost()).reply == MESSAGE


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"fuel": 0}, "fuel = 0 is out of range: allowed 1000..1000000000000 (fuel units)"),
        ({"memory_mib": 5000}, "memory_mib = 5000 is out of range: allowed 1..4096 (MiB)"),
        ({"timeout_ms": 0.5}, "timeout_ms = 0.5 is not an integer (ms)"),
        ({"max_concurrent_calls": True}, "max_concurrent_calls = True is not an integer (calls)"),
        ({"queue_timeout_ms": -1}, "queue_timeout_ms = -1 is out of range: allowed 1..60000 (ms)"),
    ],
)
def test_invalid_limits_name_the_setting(bad: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Limits(**bad)  # type: ignore[arg-type]
    assert info.value.message == message


def test_invalid_engine_settings() -> None:
    with pytest.raises(ConfigError, match="cranelift_opt_level"):
        EngineSettings(cranelift_opt_level="fast")
    with pytest.raises(ConfigError, match="max_wasm_stack"):
        EngineSettings(max_wasm_stack=64 * 1024 * 1024)
