"""A minimal smcp-v1 host for testing tenant modules with plain wasmtime.

It implements the "smcp" imports the way docs/abi.md specifies them: an in-memory dict as the
key-value store, a config dict, an injectable clock, and lists that collect notifications and
log lines. It is deliberately independent of smcp_box.sandbox so that the modules and the box
are each checked against the written ABI rather than against each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

REPO = Path(__file__).resolve().parents[2]
TENANTS = REPO / "tenants"
SDK = REPO / "sdk" / "c"

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()
ABSENT = -1


def build(sources: list[Path | str], out: Path) -> str:
    """Compiles sources (and extra compiler flags) with the SDK into out via sdk/c/cc.sh.

    Returns the compiler's stderr (warnings); raises RuntimeError if the build fails.
    """
    proc = subprocess.run(
        ["sh", str(SDK / "cc.sh"), str(out), *map(str, sources)],
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"build failed:\n{proc.stderr}")
    return proc.stderr


_ENGINES: dict[bool, wasmtime.Engine] = {}
_MODULES: dict[tuple[bytes, bool], wasmtime.Module] = {}


def _compiled(wasm: bytes, fuel: bool) -> tuple[wasmtime.Engine, wasmtime.Module]:
    """One engine per fuel setting and one compilation per module: tests make many stores."""
    engine = _ENGINES.get(fuel)
    if engine is None:
        config = wasmtime.Config()
        config.consume_fuel = fuel
        engine = _ENGINES[fuel] = wasmtime.Engine(config)
    key = (hashlib.sha256(wasm).digest(), fuel)
    module = _MODULES.get(key)
    if module is None:
        module = _MODULES[key] = wasmtime.Module(engine, wasm)
    return engine, module


@dataclass
class Host:
    """The state behind the imports; tests inspect and change it between calls."""

    config: dict[str, str] = field(default_factory=dict)
    kv: dict[str, str] = field(default_factory=dict)
    now_ms: int = 1_764_000_000_000
    kv_quota_bytes: int | None = None
    kv_fail: bool = False
    notifications: list[dict[str, Any]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    host_calls: int = 0
    #: Each sleep_ms a module asked for, in ms (the harness returns at once and advances now_ms).
    sleeps: list[int] = field(default_factory=list)
    #: Called with the key after each kv_get: stands in for another call writing meanwhile.
    after_kv_get: Callable[[str], None] | None = None


class Tenant:
    """One instance of a tenant module in its own Store."""

    def __init__(
        self,
        module: Path | bytes,
        host: Host | None = None,
        *,
        fuel: int | None = None,
        memory_limit: int | None = None,
    ) -> None:
        self.host = host or Host()
        wasm = module.read_bytes() if isinstance(module, Path) else module
        self.engine, self.module = _compiled(wasm, fuel is not None)
        self.store = wasmtime.Store(self.engine)
        if fuel is not None:
            self.store.set_fuel(fuel)
        if memory_limit is not None:
            self.store.set_limits(memory_size=memory_limit, memories=1, instances=1, tables=1)
        linker = wasmtime.Linker(self.engine)
        imports: dict[
            str, tuple[list[wasmtime.ValType], list[wasmtime.ValType], Callable[..., Any]]
        ]
        imports = {
            "log": ([I32] * 4, [], self._log),
            "config_get": ([I32] * 2, [I64], self._config_get),
            "kv_get": ([I32] * 2, [I64], self._kv_get),
            "kv_set": ([I32] * 4, [I32], self._kv_set),
            "kv_delete": ([I32] * 2, [I32], self._kv_delete),
            "kv_list": ([I32] * 2, [I64], self._kv_list),
            "notify": ([I32] * 2, [], self._notify),
            "time_now_ms": ([], [I64], self._time_now_ms),
            "kv_cas": ([I32] * 6, [I32], self._kv_cas),
            "kv_incr": ([I32, I32, I64, I32], [I32], self._kv_incr),
            "random_bytes": ([I32] * 2, [I32], self._random_bytes),
            "sleep_ms": ([I64], [], self._sleep_ms),
        }
        for name, (params, results, func) in imports.items():
            linker.define_func(
                "smcp", name, wasmtime.FuncType(params, results), func, access_caller=True
            )
        self.instance = linker.instantiate(self.store, self.module)
        exports = self.instance.exports(self.store)
        self.memory: wasmtime.Memory = exports["memory"]
        self._alloc: wasmtime.Func = exports["smcp_alloc"]
        self._handle: wasmtime.Func = exports["smcp_handle"]

    # --- guest memory helpers ------------------------------------------------------------------

    @staticmethod
    def _read(caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        return bytes(memory.read(caller, ptr, ptr + length))

    def _text(self, caller: wasmtime.Caller, ptr: int, length: int) -> str:
        return self._read(caller, ptr, length).decode("utf-8")

    @staticmethod
    def _give(caller: wasmtime.Caller, data: bytes) -> int:
        """Copies data into a guest buffer from smcp_alloc; returns the packed (ptr, len)."""
        alloc = caller.get("smcp_alloc")
        memory = caller.get("memory")
        assert isinstance(alloc, wasmtime.Func)
        assert isinstance(memory, wasmtime.Memory)
        ptr = alloc(caller, len(data))
        if ptr == 0:
            raise wasmtime.WasmtimeError("guest smcp_alloc failed (out of memory)")
        memory.write(caller, data, ptr)
        packed = (ptr << 32) | len(data)
        return packed - (1 << 64) if packed >= 1 << 63 else packed

    # --- the imports ---------------------------------------------------------------------------

    def _log(self, caller: wasmtime.Caller, lp: int, ll: int, mp: int, ml: int) -> None:
        self.host.host_calls += 1
        self.host.logs.append((self._text(caller, lp, ll), self._text(caller, mp, ml)))

    def _config_get(self, caller: wasmtime.Caller, kp: int, kl: int) -> int:
        self.host.host_calls += 1
        value = self.host.config.get(self._text(caller, kp, kl))
        return ABSENT if value is None else self._give(caller, value.encode())

    def _kv_get(self, caller: wasmtime.Caller, kp: int, kl: int) -> int:
        self.host.host_calls += 1
        key = self._text(caller, kp, kl)
        value = self.host.kv.get(key)
        if self.host.after_kv_get is not None:
            self.host.after_kv_get(key)
        return ABSENT if value is None else self._give(caller, value.encode())

    def _kv_set(self, caller: wasmtime.Caller, kp: int, kl: int, vp: int, vl: int) -> int:
        self.host.host_calls += 1
        # values are UTF-8 strings, as in the WIT world
        return self._store(self._text(caller, kp, kl), self._text(caller, vp, vl))

    def _store(self, key: str, value: str) -> int:
        """kv_set's status: 0 stored, -1 over the quota, -2 failing store."""
        if self.host.kv_fail:
            return -2
        if self.host.kv_quota_bytes is not None:
            used = sum(len(k) + len(v.encode()) for k, v in self.host.kv.items() if k != key)
            if used + len(key) + len(value.encode()) > self.host.kv_quota_bytes:
                return -1
        self.host.kv[key] = value
        return 0

    def _kv_delete(self, caller: wasmtime.Caller, kp: int, kl: int) -> int:
        self.host.host_calls += 1
        if self.host.kv_fail:
            return -2
        self.host.kv.pop(self._text(caller, kp, kl), None)
        return 0

    def _kv_list(self, caller: wasmtime.Caller, pp: int, pl: int) -> int:
        self.host.host_calls += 1
        prefix = self._text(caller, pp, pl)
        keys = sorted(k for k in self.host.kv if k.startswith(prefix))
        return self._give(caller, json.dumps(keys).encode())

    def _kv_cas(
        self, caller: wasmtime.Caller, kp: int, kl: int, ep: int, el: int, vp: int, vl: int
    ) -> int:
        self.host.host_calls += 1
        key = self._text(caller, kp, kl)
        expected = None if el == -1 else self._text(caller, ep, el)
        if self.host.kv.get(key) != expected:
            return 0
        rc = self._store(key, self._text(caller, vp, vl))
        return 1 if rc == 0 else rc

    def _kv_incr(self, caller: wasmtime.Caller, kp: int, kl: int, delta: int, out: int) -> int:
        self.host.host_calls += 1
        if self.host.kv_fail:
            return -2
        key = self._text(caller, kp, kl)
        current = self.host.kv.get(key, "0")
        if not re.fullmatch(r"-?[0-9]+", current):
            return -3
        total = int(current) + delta
        if not -(1 << 63) <= total < 1 << 63:
            return -3
        self.host.kv[key] = str(total)
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        memory.write(caller, total.to_bytes(8, "little", signed=True), out)
        return 0

    def _random_bytes(self, caller: wasmtime.Caller, bp: int, bl: int) -> int:
        self.host.host_calls += 1
        if bl > 65536:
            raise wasmtime.WasmtimeError("random_bytes: more than 65536 bytes")
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        memory.write(caller, os.urandom(bl), bp)
        return 0

    def _notify(self, caller: wasmtime.Caller, mp: int, ml: int) -> None:
        self.host.host_calls += 1
        # json.loads raising here traps the guest, which fails the test: notifications must be
        # complete, valid JSON-RPC messages.
        message = json.loads(self._read(caller, mp, ml).decode("utf-8"))
        assert message.get("jsonrpc") == "2.0", message
        assert "id" not in message, message
        self.host.notifications.append(message)

    def _sleep_ms(self, caller: wasmtime.Caller, ms: int) -> None:
        self.host.host_calls += 1
        self.host.sleeps.append(ms)
        self.host.now_ms += max(ms, 0)

    def _time_now_ms(self, caller: wasmtime.Caller) -> int:
        self.host.host_calls += 1
        return self.host.now_ms

    # --- calling the module --------------------------------------------------------------------

    def call_raw(self, message: bytes) -> bytes:
        """One smcp-v1 exchange: smcp_alloc, write, smcp_handle, read the reply."""
        ptr = self._alloc(self.store, len(message))
        assert ptr != 0, "smcp_alloc failed"
        self.memory.write(self.store, message, ptr)
        packed = self._handle(self.store, ptr, len(message)) % (1 << 64)
        reply_ptr, reply_len = packed >> 32, packed & 0xFFFFFFFF
        return bytes(self.memory.read(self.store, reply_ptr, reply_ptr + reply_len))

    def send(self, message: dict[str, Any]) -> dict[str, Any] | None:
        reply = self.call_raw(json.dumps(message).encode())
        if not reply:
            return None
        decoded: dict[str, Any] = json.loads(reply.decode("utf-8"))
        assert decoded["jsonrpc"] == "2.0"
        if "id" in message:
            assert decoded["id"] == message["id"]
            assert type(decoded["id"]) is type(message["id"])
        return decoded

    def request(
        self, method: str, params: dict[str, Any] | None = None, id: int | str = 1
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        reply = self.send(message)
        assert reply is not None, f"{method} got no reply"
        return reply

    def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.request(method, params)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    def error(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.request(method, params)
        assert "result" not in reply, reply
        error: dict[str, Any] = reply["error"]
        return error

    def tool(
        self, name: str, arguments: dict[str, Any] | None = None, **params: Any
    ) -> dict[str, Any]:
        return self.result("tools/call", {"name": name, "arguments": arguments or {}, **params})

    def memory_pages(self) -> int:
        return int(self.memory.size(self.store))


def text_of(result: dict[str, Any]) -> str:
    """The concatenated text content of a tools/call result."""
    return "".join(c["text"] for c in result["content"] if c["type"] == "text")
