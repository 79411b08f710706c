"""stdio tenants in the sandbox: the Go example and the Go fault fixture, built from source.

Each call is one exchange with a fresh guest; these tests check the reply comes at once (also
from a server that reads stdin in its own goroutine), that every way a guest can fail is a clear
error within its limit, and what vetting refuses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from smcp_box.errors import (
    BadModuleReply,
    CallTimeout,
    MemoryLimitExceeded,
    ModuleRejected,
    ModuleTrapped,
)
from smcp_box.sandbox import Limits, Sandbox, TenantModule, inline_eligible
from tests.support.gowasm import STDIO_FAULTS_SOURCE, TASKS_SOURCE, go_module
from tests.support.waiting import wait_until

from .support import RecordingHost, wasm


@pytest.fixture(scope="module")
def stdio_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    # One sandbox (and compiled-module cache) for the module: compiling a Go module takes
    # seconds, a call a millisecond.
    box = Sandbox(tmp_path_factory.mktemp("stdio-cache"))
    yield box
    box.close()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("go-build")


@pytest.fixture(scope="module")
def tasks(stdio_sandbox: Sandbox, scratch: Path) -> TenantModule:
    return stdio_sandbox.load("tasks", go_module(TASKS_SOURCE, scratch), Limits(), kind="stdio")


def faults(sandbox: Sandbox, scratch: Path, **limits: int) -> TenantModule:
    settings = {"memory_mib": 32, "timeout_ms": 500, "fuel": 10**12, **limits}
    return sandbox.load(
        "stdio-faults", go_module(STDIO_FAULTS_SOURCE, scratch), Limits(**settings), kind="stdio"
    )


def request(method: str, params: dict[str, object] | None = None, rid: object = 7) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})


def tool(name: str, arguments: dict[str, object] | None = None, **meta: object) -> str:
    params: dict[str, object] = {"name": name, "arguments": arguments or {}}
    if meta:
        params["_meta"] = meta
    return request("tools/call", params)


def test_initialize_passes_the_clients_request_through(
    stdio_sandbox: Sandbox, tasks: TenantModule
) -> None:
    init = request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}, rid="a")
    outcome = stdio_sandbox.call_sync(tasks, init, RecordingHost())
    assert outcome.parsed["id"] == "a"
    assert outcome.parsed["result"]["serverInfo"]["name"] == "tasks"
    assert outcome.parsed["result"]["protocolVersion"] == "2025-06-18"
    assert outcome.fuel_used > 0
    assert outcome.memory_bytes > 0
    assert not inline_eligible(tasks)


def test_tools_kv_and_progress(stdio_sandbox: Sandbox, tasks: TenantModule) -> None:
    host = RecordingHost()
    listed = stdio_sandbox.call_sync(tasks, request("tools/list"), host).parsed
    assert {t["name"] for t in listed["result"]["tools"]} == {
        "task_add",
        "task_list",
        "task_done",
        "countdown",
    }
    added = stdio_sandbox.call_sync(tasks, tool("task_add", {"title": "water plants"}), host)
    assert added.parsed["result"]["structuredContent"] == {
        "id": 1,
        "title": "water plants",
        "done": False,
    }
    assert added.host_calls >= 3  # next_id read and written, the task written
    # Each call is a fresh guest: what the next one sees came through kv.
    assert json.loads(host.kv["task/00000001"])["title"] == "water plants"
    listed_text = stdio_sandbox.call_sync(tasks, tool("task_list"), host).parsed
    assert listed_text["result"]["content"][0]["text"] == "[ ] 1 water plants"

    counted = stdio_sandbox.call_sync(tasks, tool("countdown", {"n": 3}, progressToken="p"), host)
    assert counted.parsed["result"]["content"][0]["text"] == "counted down from 3"
    assert [n["params"]["progress"] for n in host.notifications] == [1, 2, 3]
    assert all(n["method"] == "notifications/progress" for n in host.notifications)


def test_a_notification_runs_nothing(stdio_sandbox: Sandbox, tasks: TenantModule) -> None:
    message = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    outcome = stdio_sandbox.call_sync(tasks, message, RecordingHost())
    assert outcome.reply == ""
    assert outcome.fuel_used == 0


def test_a_goroutine_reader_answers_at_once_even_after_a_timer(
    stdio_sandbox: Sandbox, scratch: Path
) -> None:
    module = faults(stdio_sandbox, scratch)
    for name, answer in (("ok", "still serving"), ("nap", "rested")):
        outcome = stdio_sandbox.call_sync(module, tool(name), RecordingHost())
        assert outcome.parsed["result"]["content"][0]["text"] == answer


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("hang", BadModuleReply, "waits for more input without answering"),
        ("sleep", CallTimeout, "wall-clock limit of 500 ms"),
        ("loop", CallTimeout, "wall-clock limit of 500 ms"),
        ("bomb", MemoryLimitExceeded, "[limits].memory_mib"),
        ("panic", ModuleTrapped, "boom: the tool failed"),
        ("garbage", BadModuleReply, "'this is not JSON-RPC'"),
    ],
)
def test_faults_are_clear_errors_within_their_limits(
    stdio_sandbox: Sandbox, scratch: Path, name: str, error: type[Exception], words: str
) -> None:
    module = faults(stdio_sandbox, scratch)
    # The error's kind is the mechanism: "hang" fails as idle (BadModuleReply) at once, where a
    # guest blocked in a read would have run into its deadline (CallTimeout).
    with pytest.raises(error) as info:
        stdio_sandbox.call_sync(module, tool(name), RecordingHost())
    assert words in str(info.value)
    assert "stdio-faults" in str(info.value)
    again = stdio_sandbox.call_sync(module, tool("ok"), RecordingHost())
    assert again.parsed["result"]["content"][0]["text"] == "still serving"


def test_fuel_limits_a_stdio_guest(stdio_sandbox: Sandbox, scratch: Path) -> None:
    module = faults(stdio_sandbox, scratch, fuel=200_000_000, timeout_ms=60_000)
    with pytest.raises(Exception, match="fuel budget") as info:
        stdio_sandbox.call_sync(module, tool("loop"), RecordingHost())
    assert info.value.kind == "fuel"  # type: ignore[attr-defined]


SOCKET_MODULE = """
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""

ENV_MODULE = """
(module
  (import "env" "system" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""


def test_vetting_refuses_sockets_foreign_imports_and_core_modules(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRejected, match=r"sock_accept is a WASI socket function.*no network"):
        sandbox.load("s", bytes(wasmtime.wat2wasm(SOCKET_MODULE)), Limits(), kind="stdio")
    with pytest.raises(ModuleRejected, match=r"import env\.system is not allowed"):
        sandbox.load("s", bytes(wasmtime.wat2wasm(ENV_MODULE)), Limits(), kind="stdio")
    with pytest.raises(ModuleRejected, match=r"missing export '_start'"):
        sandbox.load("s", wasm("echo"), Limits(), kind="stdio")
    with pytest.raises(ModuleRejected, match=r"runs no 'wasi-http' modules"):
        sandbox.load("s", wasm("echo"), Limits(), kind="wasi-http")


# Single-threaded guests in WAT that never ask for stdin's flags, as C or Rust programs: their
# reads block, and a read with nothing left is where such a guest is idle.
_WASI_HEAD = """
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: 60000 bytes of input at 1024; iovec at 16: the reply at 512
  (data (i32.const 0) "\\00\\04\\00\\00\\60\\ea\\00\\00")
  (data (i32.const 16) "\\00\\02\\00\\00\\25\\00\\00\\00")
  (data (i32.const 512) "{\\"jsonrpc\\":\\"2.0\\",\\"id\\":7,\\"result\\":{}}\\n")
"""

BLOCKING_ECHO = (
    _WASI_HEAD
    + """
  (func (export "_start")
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 32)))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32)))
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 32)))))
"""
)

BLOCKING_SILENT = (
    _WASI_HEAD
    + """
  (func (export "_start")
    (loop $more
      (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 32)))
      (br $more))))
"""
)

EXITS = (
    _WASI_HEAD
    + """
  (func (export "_start") (call $exit (i32.const 3))))
"""
)

WASI_IN_START = (
    _WASI_HEAD
    + """
  (func $init (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))))
  (start $init)
  (func (export "_start")))
"""
)


def wat_stdio(sandbox: Sandbox, text: str) -> TenantModule:
    return sandbox.load(
        "wat", bytes(wasmtime.wat2wasm(text)), Limits(timeout_ms=60_000), kind="stdio"
    )


def test_a_blocking_guest_answers_and_is_stopped_at_its_reply(sandbox: Sandbox) -> None:
    module = wat_stdio(sandbox, BLOCKING_ECHO)
    outcome = sandbox.call_sync(module, tool("x"), RecordingHost())
    assert outcome.parsed == {"jsonrpc": "2.0", "id": 7, "result": {}}


def test_a_blocking_guest_that_reads_on_is_idle_at_once(sandbox: Sandbox) -> None:
    module = wat_stdio(sandbox, BLOCKING_SILENT)
    # Idle, not CallTimeout at the 60 s deadline: no read ever blocks.
    with pytest.raises(BadModuleReply, match="waits for more input without answering"):
        sandbox.call_sync(module, tool("x"), RecordingHost())


def test_an_exit_without_a_reply_and_wasi_in_a_start_function(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleTrapped, match="exited with status 3 without answering"):
        sandbox.call_sync(wat_stdio(sandbox, EXITS), tool("x"), RecordingHost())
    with pytest.raises(ModuleTrapped, match="WASI cannot be used by a start function"):
        sandbox.call_sync(wat_stdio(sandbox, WASI_IN_START), tool("x"), RecordingHost())


async def test_a_sleeping_guest_holds_no_run_slot(stdio_sandbox: Sandbox, scratch: Path) -> None:
    module = faults(stdio_sandbox, scratch, timeout_ms=60_000)
    scheduler = stdio_sandbox.scheduler
    granted = scheduler.grants
    sleeping = asyncio.create_task(stdio_sandbox.call(module, tool("sleep"), RecordingHost()))
    await wait_until(
        lambda: scheduler.grants > granted and scheduler.running == 0 and not sleeping.done(),
        what="the guest to sleep without its slot",
    )
    # The tenant may hold all slots but one; its sleeping call holds none, so this one runs.
    again = await stdio_sandbox.call(module, tool("ok"), RecordingHost())
    assert again.parsed["result"]["content"][0]["text"] == "still serving"
    assert not sleeping.done()
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
