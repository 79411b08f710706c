"""Helpers for the sandbox tests: WAT fixtures built from source, and a recording HostCalls."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import wasmtime

from smcp_box.errors import KvQuotaExceeded, StoreError
from smcp_box.seams import JsonObject
from smcp_box.tenancy.hostcalls import random_bytes

FIXTURES = Path(__file__).parent / "fixtures"
_INCLUDE = ";; @include bump_alloc"


@functools.cache
def wasm(name: str) -> bytes:
    """Compile ``fixtures/<name>.wat`` (with the shared allocator spliced in) to wasm."""
    text = (FIXTURES / f"{name}.wat").read_text()
    if _INCLUDE in text:
        text = text.replace(_INCLUDE, (FIXTURES / "bump_alloc.inc.wat").read_text())
    return bytes(wasmtime.wat2wasm(text))


class RecordingHost:
    """A HostCalls that keeps kv and config in dicts and records what the module did.

    kv_set under "quota" raises KvQuotaExceeded and under "broken" raises StoreError, so tests
    can see the status codes the module gets.
    """

    def __init__(self, config: dict[str, str] | None = None, now_ms: int = 1234567890123) -> None:
        self.config = dict(config or {})
        self.kv: dict[str, str] = {}
        self.logs: list[tuple[str, str]] = []
        self.notifications: list[JsonObject] = []
        self.now_ms = now_ms
        self.threads: set[str] = set()

    def _seen(self) -> None:
        self.threads.add(threading.current_thread().name)

    def log(self, level: str, message: str) -> None:
        self._seen()
        self.logs.append((level, message))

    def config_get(self, key: str) -> str | None:
        self._seen()
        return self.config.get(key)

    def kv_get(self, key: str) -> str | None:
        self._seen()
        return self.kv.get(key)

    def kv_set(self, key: str, value: str) -> None:
        self._seen()
        if key == "quota":
            raise KvQuotaExceeded("kv quota of the test tenant is full")
        if key == "broken":
            raise StoreError("the test store is broken")
        self.kv[key] = value

    def kv_delete(self, key: str) -> None:
        self._seen()
        self.kv.pop(key, None)

    def kv_list(self, prefix: str) -> list[str]:
        self._seen()
        return sorted(k for k in self.kv if k.startswith(prefix))

    def kv_cas(self, key: str, expected: str | None, value: str) -> bool:
        self._seen()
        if self.kv.get(key) != expected:
            return False
        self.kv_set(key, value)
        return True

    def kv_incr(self, key: str, delta: int) -> int:
        self._seen()
        total = int(self.kv.get(key, "0")) + delta
        self.kv_set(key, str(total))
        return total

    def random_bytes(self, length: int) -> bytes:
        self._seen()
        return random_bytes(length)  # the box's own, with its length check

    def notify(self, message: JsonObject) -> None:
        self._seen()
        self.notifications.append(message)

    def time_now_ms(self) -> int:
        self._seen()
        return self.now_ms


class HeldHost(RecordingHost):
    """A RecordingHost whose ``log`` blocks until :attr:`release` is set.

    A ``host_imports`` call with the message ``"1"`` logs first, so it holds its concurrency
    slot and its worker for exactly as long as the test wants: ``len(host.logs)`` is the number
    of calls that got that far, and setting ``release`` lets them all finish (their reply is
    ``null``, the unset config value "greeting").
    """

    HOLD = "1"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def log(self, level: str, message: str) -> None:
        super().log(level, message)
        if not self.release.wait(60):
            raise RuntimeError("HeldHost: the test never released the call")
