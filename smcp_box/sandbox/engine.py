"""The one wasmtime Engine of a Sandbox, its config fingerprint, and the epoch ticker thread."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version

import wasmtime

from smcp_box.config import SandboxSettings
from smcp_box.errors import ConfigError
from smcp_box.seams import MIB

logger = logging.getLogger("smcp_box.sandbox")

WASMTIME_VERSION = version("wasmtime")


#: The default reservation per linear memory: the default tenant memory limit (``memory_mib``).
DEFAULT_MEMORY_RESERVATION = SandboxSettings.memory_mib * MIB


@dataclass(frozen=True)
class EngineSettings:
    """Engine-wide code generation and memory layout. Part of the compiled-module cache key.

    The defaults trade a little speed for address space: wasmtime's default reserves 4 GiB of
    virtual memory (plus guards) per linear memory so that it can elide bounds checks. With
    thousands of idle pooled instances that is terabytes of reservations, which breaks under
    ``ulimit -v`` or strict overcommit. A reservation the size of the tenants' memory limit
    (128 MiB by default, :meth:`for_sandbox`) makes an idle instance cost ~130 MiB of
    address space; Cranelift then emits explicit bounds checks (measured ~15-20% slower on a
    memory-bound loop, nothing measurable on the echo call). It is not smaller because a memory
    that outgrows its reservation moves: wasmtime maps a bigger region, copies the memory and
    unmaps the old one, and unmapping populated pages holds the process's mmap lock for
    milliseconds, stalling every other thread that maps memory. With 64 MiB, a tenant growing
    to its 128 MiB limit in a loop moved twice per call, ran at half the speed, and another
    thread's ``mmap`` waited 9-10 ms at p99 (docs/benchmarks.md, "Noisy neighbour").
    """

    #: Virtual memory reserved up front per linear memory; memories grow in place within it.
    memory_reservation: int = DEFAULT_MEMORY_RESERVATION
    #: Unmapped guard after each memory; lets small constant offsets skip their bounds check.
    memory_guard_size: int = 2 * MIB
    #: Extra reservation when a memory outgrows ``memory_reservation`` and has to move.
    memory_reservation_for_growth: int = 32 * MIB
    #: Native stack wasm may use. Worker threads have 8 MiB stacks, well above this, so a deep
    #: recursion ends as a clean stack-overflow trap, never a segfault.
    max_wasm_stack: int = 1 * MIB
    cranelift_opt_level: str = "speed"

    @classmethod
    def for_sandbox(cls, settings: SandboxSettings) -> EngineSettings:
        """The defaults, with a reservation that holds a memory of the box's default limit
        (``[sandbox] memory_mib``) in place; a tenant allowed more moves past it. Every sandbox
        the box or its commands make gets its engine from here, through
        :meth:`Sandbox.from_settings`, so they share one compiled-module cache."""
        return cls(memory_reservation=max(DEFAULT_MEMORY_RESERVATION, settings.memory_mib * MIB))

    def __post_init__(self) -> None:
        if self.cranelift_opt_level not in ("none", "speed", "speed_and_size"):
            raise ConfigError(f"unknown cranelift_opt_level {self.cranelift_opt_level!r}")
        for name in ("memory_reservation", "memory_guard_size", "memory_reservation_for_growth"):
            if getattr(self, name) < 0:
                raise ConfigError(f"engine setting {name} must not be negative")
        if not 64 * 1024 <= self.max_wasm_stack <= 4 * MIB:
            raise ConfigError("engine setting max_wasm_stack must be between 64 KiB and 4 MiB")


def engine_fingerprint(settings: EngineSettings) -> str:
    """A short, deterministic digest of everything that makes compiled code (in)compatible.

    wasmtime itself refuses a serialized module from another version or config, but the cache
    key must differ too, or two configs (say, two releases during an upgrade) would keep
    overwriting each other's cache files.
    """
    described = {
        "wasmtime": WASMTIME_VERSION,
        "machine": platform.machine(),
        "platform": sys.platform,
        "consume_fuel": True,
        "epoch_interruption": True,
        "wasm_threads": False,
        **asdict(settings),
    }
    canonical = json.dumps(described, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def build_engine(settings: EngineSettings) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.cranelift_opt_level = settings.cranelift_opt_level
    config.memory_reservation = settings.memory_reservation
    config.memory_guard_size = settings.memory_guard_size
    config.memory_reservation_for_growth = settings.memory_reservation_for_growth
    config.max_wasm_stack = settings.max_wasm_stack
    # Threads would let a module create shared memories outside the per-store memory limits.
    config.wasm_threads = False
    config.shared_memory = False
    return wasmtime.Engine(config)


class EpochTicker:
    """One daemon thread advancing the engine's epoch every ``tick_s``.

    Each call sets its store's deadline in ticks, so this thread is what turns a wall-clock
    timeout into an INTERRUPT trap. If it dies, no call can time out any more, hence
    :meth:`alive`, which the readiness check asks.
    """

    def __init__(
        self,
        engine: wasmtime.Engine,
        tick_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0005 <= tick_s <= 1.0:
            raise ConfigError("the epoch tick must be between 0.5 ms and 1 s")
        self.tick_s = tick_s
        self._engine = engine
        self._clock = clock
        self._stop = threading.Event()
        self.last_tick = clock()
        self.ticks = 0
        self._thread = threading.Thread(target=self._run, name="smcp-epoch-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.tick_s):
                self._engine.increment_epoch()
                self.ticks += 1
                self.last_tick = self._clock()
        except BaseException:  # pragma: no cover - the engine never raises here
            logger.exception("the epoch ticker died; calls can no longer time out")
            raise

    def alive(self) -> bool:
        """Running, and ticked recently (a stalled ticker is as bad as a dead one)."""
        if not self._thread.is_alive():
            return False
        return self._clock() - self.last_tick < max(1.0, 50 * self.tick_s)

    def burst(self, ticks: int) -> None:
        """Advance the epoch by ``ticks`` at once, expiring the deadline of every running call."""
        for _ in range(ticks):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
