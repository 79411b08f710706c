"""The Sandbox: load tenants' modules, call them off the event loop, report on their pools."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import TracebackType

import wasmtime
import wasmtime.component

from smcp_box.config import SandboxSettings
from smcp_box.errors import ModuleRejected, PayloadTooLarge

from .abi import check_binary, check_module
from .cache import CacheCounters, ModuleCache
from .component import ComponentInstance
from .component import make_linker as make_component_linker
from .engine import EngineSettings, EpochTicker, build_engine, engine_fingerprint
from .fair import FairScheduler, can_restore_priority, default_slots
from .host import CHECK_TICKS, CancelToken, HostCalls, make_linker, preemptions
from .instance import Instance
from .limits import CallOutcome, Limits, PoolStats
from .pool import Spawn, TenantModule, TenantPool
from .stdio import StdioInstance, check_stdio_module, make_stdio_linker
from .world import check_component

logger = logging.getLogger("smcp_box.sandbox")


class _Compiled:
    """A compiled module and its pre-linked form, shared by every tenant running the same wasm."""

    __slots__ = ("__weakref__", "module", "pre")

    def __init__(self, module: wasmtime.Module, pre: wasmtime.InstancePre) -> None:
        self.module = module
        self.pre = pre


def _spawn_stdio(
    engine: wasmtime.Engine, pre: wasmtime.InstancePre, tenant: str, limits: Limits, ticks: int
) -> StdioInstance:
    # A stdio "instance" holds no guest between calls: the tenant, limits and deadline come
    # with each call, which starts its own guest.
    return StdioInstance(engine, pre)


class _CompiledComponent:
    """A compiled component and the host functions it imports, shared like ``_Compiled``."""

    __slots__ = ("__weakref__", "code", "imports")

    def __init__(self, code: wasmtime.component.Component, imports: frozenset[str]) -> None:
        self.code = code
        self.imports = imports


def _default_workers() -> int:
    # Workers spend their time in wasm (GIL released) or waiting on host I/O; a few per core
    # keeps one tenant's slow calls from holding up everyone else's.
    return min(64, 8 + 4 * (os.cpu_count() or 1))


#: A call running longer than this is a long call: its thread's priority is lowered until it
#: ends, so short calls and the event loop win a contended core (see :mod:`.fair`). Far above
#: what a tool call usually takes (~0.1-10 ms), far below the default 5 s limit.
LONG_CALL_S = 0.05
#: Inline attempts a tenant skips, for one kind of call (a tool), after an attempt of that kind
#: ran out of its budget or reached a host import it may not make on the loop.
INLINE_BACKOFF_CALLS = 50
#: An inline attempt that took more of the event loop thread's CPU than this is heavy, whatever
#: made it so: the default budget (``inline_fuel``, 100,000) of pure computation costs well
#: under a millisecond, but the kernel's work for a memory grown and touched is not bounded by
#: fuel. Measured: a module growing and touching its memory spent ~12 ms of the loop in one
#: 100,000-fuel attempt, a stall every tenant's requests waited out.
INLINE_HEAVY_CPU_S = 0.005
#: Inline attempts a tenant skips after a heavy one: a module that does this again after its
#: backoff stalls the loop for at most one attempt in this many calls.
INLINE_HEAVY_BACKOFF_CALLS = 10_000


def inline_eligible(module: TenantModule) -> bool:
    """Whether the module's calls get inline attempts: core modules, whatever they import (an
    attempt stops at its first import that waits or has effects, ``host.SPECULATION_STOPS``).
    A component's runtime, or the guest runtime a stdio exchange starts, costs far more than an
    inline budget before it answers anything."""
    return module.kind == "core"


class Sandbox:
    """Runs tenants' smcp-v1 modules under memory, fuel and wall-clock limits.

    Thread-safe. ``unload`` and ``stats`` are cheap; ``load`` is synchronous and compiles on a
    cache miss (up to a second or so for a big module: call it off the event loop when that
    matters); ``close`` interrupts running calls and waits for their threads. Calls run in a
    worker thread pool.
    """

    @classmethod
    def from_settings(cls, cache_dir: Path, settings: SandboxSettings) -> Sandbox:
        """The sandbox the box, or one of its commands, runs modules in under ``[sandbox]``.

        Every caller builds its sandbox here, so that all of them derive the engine from the
        settings the same way and share one compiled-module cache entry per module (a second
        derivation that drifted would compile everything again under another fingerprint)."""
        return cls(
            cache_dir,
            tick_s=settings.tick_ms / 1000,
            cpu_slots=settings.cpu_slots,
            engine_settings=EngineSettings.for_sandbox(settings),
        )

    def __init__(
        self,
        cache_dir: Path,
        *,
        tick_s: float = 0.01,
        max_workers: int | None = None,
        engine_settings: EngineSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_slots: int = 0,
    ) -> None:
        self.engine_settings = engine_settings or EngineSettings()
        self.fingerprint = engine_fingerprint(self.engine_settings)
        self.engine = build_engine(self.engine_settings)
        self._linker = make_linker(self.engine)
        self._stdio_linker = make_stdio_linker(self.engine)
        self._cache = ModuleCache(Path(cache_dir), self.engine, self.fingerprint)
        self._compiled: weakref.WeakValueDictionary[str, _Compiled | _CompiledComponent] = (
            weakref.WeakValueDictionary()
        )
        #: Made at the first component loaded (WASI and the world's host interface).
        self._components_linker: wasmtime.component.Linker | None = None
        self._pools: dict[str, TenantPool] = {}
        #: Raised by ``close``: stops the running calls of every pool this sandbox ever made.
        self._shutdown = CancelToken()
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers or _default_workers(), thread_name_prefix="smcp-wasm"
        )
        self._ticker = EpochTicker(self.engine, tick_s, clock=clock)
        self.tick_s = tick_s
        #: Wasm calls running at once, box-wide, shared fairly between tenants (0: one per
        #: core; one tenant holds at most all but one of them).
        self.scheduler = FairScheduler(
            cpu_slots or default_slots(),
            preempt=self._preempt,
            demote_after_s=LONG_CALL_S if can_restore_priority() else None,
        )

    # --- modules ---------------------------------------------------------------------------

    def load(self, tenant: str, wasm: bytes, limits: Limits, *, kind: str = "core") -> TenantModule:
        """Compile (or fetch from the cache) and check a tenant's module; make it current.

        ``kind`` is tenant.toml's: "core" for an smcp-v1 core module, "component" for a
        component of the ``smcp:box`` world, "stdio" for a WASI command run one exchange per
        call (see :mod:`.stdio`). Loading the module and limits the tenant already
        runs returns the current handle and keeps its warm pool. Anything else replaces the
        pool: calls already running on the old one finish, and the old handle is refused from
        then on. Raises ModuleRejected when the module is not a valid module of its kind.
        """
        self._check_open()
        if kind not in ("core", "component", "stdio"):
            raise ModuleRejected(f"tenant {tenant!r}: the sandbox runs no {kind!r} modules")
        sha = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            current = self._pools.get(tenant)
            if (
                current is not None
                and current.module.sha256 == sha
                and current.limits == limits
                and current.module.kind == kind
            ):
                return current.module
        check_binary(tenant, wasm, component=kind == "component")
        spawn: Spawn
        keepalive: object
        if kind == "component":
            component, cache_hit = self._compile_component(tenant, wasm, sha)
            spawn = partial(
                ComponentInstance, self.engine, self._component_linker(), component.code
            )
            imports, keepalive = component.imports, component
        else:
            compiled, cache_hit = self._compile(tenant, wasm, sha, kind)
            if kind == "stdio":
                spawn = partial(_spawn_stdio, self.engine, compiled.pre)
            else:
                spawn = partial(Instance, self.engine, compiled.pre)
            imports = frozenset(
                imp.name or "" for imp in compiled.module.imports if imp.module == "smcp"
            )
            keepalive = compiled
        module = TenantModule(
            tenant=tenant,
            sha256=sha,
            limits=limits,
            cache_hit=cache_hit,
            imports=imports,
            kind=kind,
        )
        # The pool keeps the compiled module alive; the weak map only shares it between tenants.
        pool = TenantPool(
            module,
            spawn,
            self.tick_s,
            keepalive=keepalive,
            shutdown=self._shutdown,
            scheduler=self.scheduler,
        )
        if kind == "component":
            # Components are linked when instantiated (no InstancePre for them in wasmtime-py):
            # one instance now turns a link or limit problem into a load error, not a call's.
            pool.prime()
        # Warmed before it serves: the old pool (if any) answers until the swap below.
        pool.warm_up(limits.warm_instances)
        with self._lock:
            self._check_open()
            old = self._pools.get(tenant)
            self._pools[tenant] = pool
        if old is not None:
            old.close()
        logger.info(
            "tenant %s: loaded %s %s (%s)",
            tenant,
            {"core": "module", "component": "component"}.get(kind, f"{kind} module"),
            sha[:12],
            "from cache" if cache_hit else "compiled",
        )
        return module

    def _preempt(self) -> None:
        """End the running calls' slices now: they reach their epoch check at their next loop
        back-edge or function entry and hand their slots to the calls waiting."""
        preemptions[0] += 1
        self.engine.increment_epoch()

    def _component_linker(self) -> wasmtime.component.Linker:
        with self._lock:
            if self._components_linker is None:
                self._components_linker = make_component_linker(self.engine)
            return self._components_linker

    def _compile_component(
        self, tenant: str, wasm: bytes, sha: str
    ) -> tuple[_CompiledComponent, bool]:
        with self._lock:
            shared = self._compiled.get(f"component:{sha}")
        if isinstance(shared, _CompiledComponent):
            return shared, True
        try:
            component, cache_hit = self._cache.get_or_compile_component(wasm, sha)
        except wasmtime.WasmtimeError as exc:
            raise ModuleRejected(
                f"tenant {tenant!r}: the component does not compile: {exc}",
                data={"tenant": tenant},
            ) from None
        compiled = _CompiledComponent(component, check_component(tenant, component, self.engine))
        with self._lock:
            self._compiled[f"component:{sha}"] = compiled
        return compiled, cache_hit

    def _compile(self, tenant: str, wasm: bytes, sha: str, kind: str) -> tuple[_Compiled, bool]:
        """A core or stdio module: the same code, checked and linked for its kind."""
        key = f"{kind}:{sha}"  # the same bytes as another kind are linked against another Linker
        with self._lock:
            compiled = self._compiled.get(key)
        if isinstance(compiled, _Compiled):
            return compiled, True
        try:
            module, cache_hit = self._cache.get_or_compile(wasm, sha)
        except wasmtime.WasmtimeError as exc:
            raise ModuleRejected(
                f"tenant {tenant!r}: the module does not compile: {exc}", data={"tenant": tenant}
            ) from None
        if kind == "stdio":
            check_stdio_module(tenant, module)
        else:
            check_module(tenant, module)
        linker = self._stdio_linker if kind == "stdio" else self._linker
        try:
            pre = linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:  # pragma: no cover - check_module covers imports
            raise ModuleRejected(f"tenant {tenant!r}: the module cannot be linked: {exc}") from None
        compiled = _Compiled(module, pre)
        with self._lock:
            self._compiled[key] = compiled
        return compiled, cache_hit

    def unload(self, tenant: str) -> bool:
        """Forget the tenant's module and pool; running calls finish. False if it was not loaded."""
        with self._lock:
            pool = self._pools.pop(tenant, None)
        if pool is None:
            return False
        pool.close()
        return True

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(self._pools)

    def _pool_for(self, module: TenantModule) -> TenantPool:
        self._check_open()
        with self._lock:
            pool = self._pools.get(module.tenant)
        if pool is None or pool.module is not module:
            raise ModuleRejected(
                f"tenant {module.tenant!r}: module {module.sha256[:12]} is no longer loaded (the "
                "tenant was reloaded or removed)",
                data={"tenant": module.tenant},
            )
        return pool

    # --- calls -------------------------------------------------------------------------------

    def _encode(self, pool: TenantPool, message: str) -> bytes:
        data = message.encode("utf-8")
        if len(data) > pool.limits.max_message_bytes:
            raise PayloadTooLarge(
                f"tenant {pool.tenant!r}: the message is {len(data)} bytes, over "
                f"[limits].max_message_bytes ({pool.limits.max_message_bytes})",
                data={"tenant": pool.tenant, "limit": pool.limits.max_message_bytes},
            )
        return data

    async def call(
        self, module: TenantModule, message: str, host: HostCalls, *, timeout_ms: int | None = None
    ) -> CallOutcome:
        """Pass one JSON-RPC message to the module and return its reply and costs.

        Runs in a worker thread. Waits up to ``queue_timeout_s`` for a slot among the tenant's
        ``max_concurrent_calls``, then raises TenantBusy. If the awaiting task is cancelled (the
        client cancelled the request or closed its stream), the wasm is stopped too, within an
        epoch tick, and its instance discarded; its slot is freed when it has stopped.
        ``timeout_ms`` replaces the module's wall-clock limit for this one call (a task's).
        """
        pool = self._pool_for(module)
        data = self._encode(pool, message)
        if not await pool.gate.acquire(pool.limits.queue_timeout_s):
            raise pool.busy()
        cancel = CancelToken()
        try:
            job: Future[CallOutcome] = self._executor.submit(
                pool.run, data, host, cancel, timeout_ms
            )
        except RuntimeError:
            pool.gate.release()
            raise ModuleRejected("the sandbox is shut down") from None
        job.add_done_callback(lambda _job: pool.gate.release())
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # Nobody will read the result: stop burning the tenant's slot and a worker on it.
            # (A job that had not started yet is simply dropped by wrap_future.)
            cancel.cancel()
            raise
        finally:
            # A failed call's exception holds this frame (its traceback) and the job holds the
            # exception: a cycle that kept the exception, the worker's frames and the discarded
            # instance alive until the cyclic collector ran (about 60 objects per failed call;
            # a tenant failing in a loop made collections, and their pauses, frequent).
            del job

    def call_inline(
        self,
        module: TenantModule,
        message: str,
        host: HostCalls,
        *,
        fuel_budget: int,
        kind: str = "",
    ) -> CallOutcome | None:
        """Try the call right here, on the event loop, within ``fuel_budget``; None if not done.

        Most tool calls finish in a few thousand fuel units, far below what a thread hop costs
        (a worker round trip is 5-10x the wasm itself), so a short call answered inline saves
        most of its cost. A call that needs more than the budget, or reaches a host import that
        waits or has lasting effects (kv, blobs, sleep: ``host.SPECULATION_STOPS``, stopped
        before the import does anything), is abandoned (None) and the caller reruns it with
        ``call``; calls of the same ``kind`` (the caller's name for them: the tool) then skip
        their inline attempts for a while, so a tool of long or kv-using calls pays the wasted
        attempt rarely while the tenant's other tools still answer inline. An attempt that costs
        the loop more than ``INLINE_HEAVY_CPU_S`` of CPU, whatever its outcome, makes the whole
        tenant skip inline attempts far longer: fuel bounds computation, not the page faults of
        a memory that is grown and touched. The host must hold back notifications and logs until
        the attempt is known to have finished: the caller's job.
        """
        pool = self._pool_for(module)
        if pool.inline_backoff.skip(kind):
            return None
        data = self._encode(pool, message)
        if not pool.gate.try_acquire():
            return None
        # The thread's CPU, not wall time: a preempted attempt is not a heavy one.
        started = time.thread_time()
        try:
            outcome = pool.run_inline(data, host, fuel_budget)
        finally:
            pool.gate.release()
            spent = time.thread_time() - started
            if spent > INLINE_HEAVY_CPU_S:
                pool.inline_backoff.tenant_wide(INLINE_HEAVY_BACKOFF_CALLS)
                logger.warning(
                    "tenant %s: an inline call attempt took %.1f ms of the event loop's CPU "
                    "(memory growth or first touches); its next %d calls run in workers",
                    pool.tenant,
                    spent * 1000,
                    INLINE_HEAVY_BACKOFF_CALLS,
                )
        if outcome is None:
            pool.inline_backoff.for_kind(kind, INLINE_BACKOFF_CALLS)
        return outcome

    def call_sync(self, module: TenantModule, message: str, host: HostCalls) -> CallOutcome:
        """``call`` in the calling thread, for tools and benchmarks; never use on the loop."""
        pool = self._pool_for(module)
        data = self._encode(pool, message)
        if not pool.gate.acquire_blocking(pool.limits.queue_timeout_s):
            raise pool.busy()
        try:
            return pool.run(data, host)
        finally:
            pool.gate.release()

    def top_up_sync(self, module: TenantModule) -> int:
        """Make instances in the calling thread until the module's ``warm_instances`` are warm
        again (vetting's calls may have cost one); never use on the loop."""
        return self._pool_for(module).warm_up(module.limits.warm_instances)

    async def warm_up(self, module: TenantModule, count: int | None = None) -> int:
        """Instantiate until ``count`` (default and at most ``max_instances``) are warm.

        Returns the number of warm instances. Raises what instantiation raises: ModuleRejected
        when the module's memory or tables exceed its limits, and the call errors when its
        start function traps or runs out of fuel or time.
        """
        pool = self._pool_for(module)
        wanted = module.limits.max_instances if count is None else count
        job = self._executor.submit(pool.warm_up, wanted)
        return await asyncio.wrap_future(job)

    # --- health and stats ------------------------------------------------------------------

    def stats(self, tenant: str) -> PoolStats:
        """Raises KeyError for a tenant that is not loaded."""
        with self._lock:
            pool = self._pools[tenant]
        return pool.stats()

    @property
    def cache_counters(self) -> CacheCounters:
        return self._cache.counters

    def ticker_alive(self) -> bool:
        return self._ticker.alive()

    @property
    def last_tick(self) -> float:
        """When the epoch ticker last ticked, on the sandbox's clock (time.monotonic)."""
        return self._ticker.last_tick

    # --- lifecycle -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ModuleRejected("the sandbox is shut down")

    def close(self) -> None:
        """Stop everything. Running calls are interrupted (they fail with CallTimeout)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        # Every pool, current or replaced earlier, shares this flag: each running call sees it
        # at its next epoch check (forced now by the burst) or host import, and stops.
        self._shutdown.cancel()
        self._ticker.burst(CHECK_TICKS)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._ticker.stop()
        for pool in pools:
            pool.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
