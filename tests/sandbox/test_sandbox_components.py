"""Components of the smcp:box world in the sandbox: the same limits, host calls and pools as core
modules, and vetting that refuses anything outside the world by name.

The fixtures are hand-written WAT components (compiled in milliseconds); the Python components
that componentize-py builds are driven end to end in tests/e2e/test_components.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import wasmtime

from smcp_box.errors import CallTimeout, FuelExhausted, ModuleRejected
from smcp_box.sandbox import Limits, Sandbox
from smcp_box.sandbox.component import guest_cause
from smcp_box.sandbox.world import ALLOWED_WASI, HOST_FUNCTIONS
from tests.support.waiting import wait_until

from .support import FIXTURES, RecordingHost, wasm

REPLY = '{"jsonrpc":"2.0","id":1,"result":{}}'
MESSAGE = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'


def component(name: str = "component_echo") -> bytes:
    return bytes(wasmtime.wat2wasm((FIXTURES / f"{name}.wat").read_text()))


def component_importing(name: str, members: str = '(export "f" (func))') -> bytes:
    """A component that imports instance ``name`` (never calls it) and exports a handle."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(component
              (import "{name}" (instance {members}))
              (core module $m
                (memory (export "memory") 1)
                (func (export "h") (param i32 i32) (result i32) unreachable)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable))
              (core instance $i (instantiate $m))
              (func (export "handle") (param "message" string) (result string)
                (canon lift (core func $i "h") (memory (core memory $i "memory"))
                  (realloc (core func $i "realloc")))))"""
        )
    )


def test_a_component_answers_through_the_host_interface(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    module = sandbox.load("comp", component(), Limits(), kind="component")
    assert module.kind == "component"
    assert module.imports == frozenset({"log"})
    outcome = sandbox.call_sync(module, MESSAGE, host)
    assert outcome.reply == REPLY
    assert outcome.parsed == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert outcome.host_calls == 1
    assert outcome.fuel_used > 0
    assert host.logs == [("info", MESSAGE)]
    stats = sandbox.stats("comp")
    assert (stats.calls, stats.errors, stats.host_calls) == (1, 0, 1)
    # The instance made at load (the link check) served the call and went back to the pool.
    assert stats.instances_created == 1
    assert stats.warm_instances == 1


def test_a_runaway_component_stops_at_its_fuel_and_at_its_deadline(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    fuel = sandbox.load("fuel", component(), Limits(fuel=1_000_000), kind="component")
    with pytest.raises(FuelExhausted, match=r"\[limits\].fuel"):
        sandbox.call_sync(fuel, '"spin"', host)
    slow = sandbox.load("slow", component(), Limits(fuel=10**12, timeout_ms=100), kind="component")
    with pytest.raises(CallTimeout, match=r"\[limits\].timeout_ms"):
        sandbox.call_sync(slow, '"spin"', host)
    # The failed instances were discarded; the tenant still serves.
    assert sandbox.call_sync(slow, MESSAGE, host).reply == REPLY
    assert sandbox.stats("slow").errors_by_kind == {"timeout": 1}


async def test_a_running_component_call_is_stopped_when_the_sandbox_closes(
    cache_dir: Path, host: RecordingHost
) -> None:
    box = Sandbox(cache_dir)
    module = box.load("spin", component(), Limits(fuel=10**12, timeout_ms=60_000), kind="component")
    running = asyncio.create_task(box.call(module, '"spin"', host))
    await wait_until(lambda: host.logs != [], what="the call to be spinning in wasm")
    await asyncio.wait_for(asyncio.to_thread(box.close), 30)
    with pytest.raises(CallTimeout, match="shutting down"):
        await running


@pytest.mark.parametrize(
    ("imported", "members", "named"),
    [
        ("wasi:http/outgoing-handler@0.2.0", '(export "handle" (func))', "wasi:http"),
        ("evil:net/raw@1.0.0", '(export "send" (func))', "evil:net/raw@1.0.0"),
        ("wasi:io/streams@0.3.0", '(export "f" (func))', "wasi:io/streams@0.3.0"),
        ("smcp:box/host@1.0.0", '(export "exec" (func))', "'exec'"),
    ],
    ids=["wasi-http", "foreign-package", "wasi-0.3", "unknown-host-function"],
)
def test_vetting_refuses_an_import_outside_the_world_by_name(
    sandbox: Sandbox, imported: str, members: str, named: str
) -> None:
    with pytest.raises(ModuleRejected, match="smcp:box world") as caught:
        sandbox.load("bad", component_importing(imported, members), Limits(), kind="component")
    assert named in caught.value.message
    assert "bad" not in sandbox.tenants()


def test_the_allowed_wasi_interfaces_load(sandbox: Sandbox) -> None:
    # Imported but inert: the instance's WASI context grants no files, network or environment.
    module = sandbox.load(
        "wasi",
        component_importing(
            "wasi:cli/environment@0.2.9", '(export "get-arguments" (func (result (list string))))'
        ),
        Limits(),
        kind="component",
    )
    assert module.imports == frozenset()
    # A name of the world with the wrong type fails to link, at load, naming the function.
    with pytest.raises(ModuleRejected, match="get-arguments"):
        sandbox.load(
            "wrong",
            component_importing("wasi:cli/environment@0.2.9", '(export "get-arguments" (func))'),
            Limits(),
            kind="component",
        )
    assert "wasi:cli/environment" in ALLOWED_WASI
    assert "wasi:http/outgoing-handler" not in ALLOWED_WASI


def test_a_component_with_two_memories_is_refused_at_load(sandbox: Sandbox) -> None:
    # Two memories would each get [limits].memory_mib: the limit must be the instance's total.
    two = bytes(
        wasmtime.wat2wasm(
            """(component
              (core module $a (memory (export "memory") 1)
                (func (export "h") (param i32 i32) (result i32) unreachable)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable))
              (core module $b (memory (export "memory") 1))
              (core instance $i (instantiate $a))
              (core instance $j (instantiate $b))
              (func (export "handle") (param "message" string) (result string)
                (canon lift (core func $i "h") (memory (core memory $i "memory"))
                  (realloc (core func $i "realloc")))))"""
        )
    )
    with pytest.raises(ModuleRejected, match="cannot be instantiated under its limits"):
        sandbox.load("two", two, Limits(), kind="component")


def test_a_component_without_handle_is_refused(sandbox: Sandbox) -> None:
    empty = bytes(wasmtime.wat2wasm("(component)"))
    with pytest.raises(ModuleRejected, match="missing export 'handle'"):
        sandbox.load("empty", empty, Limits(), kind="component")


def test_the_kind_must_match_the_binary(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRejected, match='set kind = "component"'):
        sandbox.load("comp", component(), Limits())
    with pytest.raises(ModuleRejected, match="it is a core module"):
        sandbox.load("core", wasm("echo"), Limits(), kind="component")


def test_compiled_components_come_from_the_cache_the_second_time(cache_dir: Path) -> None:
    with Sandbox(cache_dir) as first:
        assert not first.load("c", component(), Limits(), kind="component").cache_hit
    with Sandbox(cache_dir) as second:
        assert second.load("c", component(), Limits(), kind="component").cache_hit
    assert list(cache_dir.glob("*.ccomp"))


def test_the_wit_file_shipped_for_tenants_is_the_world_the_sandbox_links() -> None:
    from smcp_box_sdk import WIT_DIR

    text = (WIT_DIR / "smcp-box.wit").read_text()
    declared = [
        line.split(":")[0].strip()
        for line in text.splitlines()
        if ": func(" in line and "export" not in line
    ]
    assert tuple(declared) == HOST_FUNCTIONS
    assert "export handle: func(message: string) -> string;" in text


def test_the_cause_of_a_guest_failure_is_its_exception_line() -> None:
    python = (
        'Traceback (most recent call last):\n  File "/0/app.py", line 3, in handle\n'
        "ValueError: boom\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1:2:\n"
        "Python function threw an unexpected exception\nnote: run with RUST_BACKTRACE=1\n"
    )
    assert guest_cause(python) == "ValueError: boom"
    assert guest_cause("thread 'x' panicked at a.rs:1:1:\nindex out of range\nnote: …") == (
        "index out of range"
    )
    javascript = (
        "crash from the tenant\nStack:\n  handle@app.js:5:35\n  export_handle@init.js:559:15\n"
        "\nRedirecting call to abort() to mozalloc_abort\n"
    )
    assert guest_cause(javascript) == "crash from the tenant"
    assert guest_cause("") == ""
