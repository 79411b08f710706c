"""The host side of the tenant ABI, bound to one call of one tenant.

Host imports run in the sandbox's worker thread while the event loop stays free, so each one
that needs the (async) store hands a coroutine to the loop and blocks the *worker* until it is
done. Waiting is deliberate: it keeps a module's notifications in order and ahead of its reply,
and it applies back-pressure to a module that writes faster than the store can.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from smcp_box.errors import BadModuleReply, KvQuotaExceeded, KvWriteRefused, StoreError
from smcp_box.seams import CallContext, JsonObject
from smcp_box.store import KvQuota
from smcp_box.tenancy.blob_handles import BlobHandles, Wait

#: Makes the blob handles of one call, given how to wait on the loop.
BlobAccess = Callable[[Wait], BlobHandles]

_T = TypeVar("_T")
#: How long a host import may wait for the store before the call fails.
HOST_IO_TIMEOUT_S = 10.0
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


class KeyValueStore(Protocol):
    async def kv_get(self, tenant: str, key: str) -> str | None: ...

    async def kv_set(
        self, tenant: str, key: str, value: str, quota: KvQuota | None = None
    ) -> None: ...

    async def kv_cas(
        self,
        tenant: str,
        key: str,
        expected: str | None,
        value: str,
        quota: KvQuota | None = None,
    ) -> bool: ...

    async def kv_incr(
        self, tenant: str, key: str, delta: int, quota: KvQuota | None = None
    ) -> int: ...

    async def kv_delete(self, tenant: str, key: str) -> bool: ...

    async def kv_list(self, tenant: str, prefix: str = "") -> list[str]: ...


@dataclass
class HostCallCounts:
    """Host calls of one call by kind, for the tool's behaviour baseline."""

    kv_reads: int = 0
    kv_writes: int = 0
    notifications: int = 0

    def clear(self) -> None:
        self.kv_reads = self.kv_writes = self.notifications = 0


class _LoopWaiter:
    """Runs a coroutine on the event loop and blocks the calling worker until it is done.

    Apart from :class:`StoreHostCalls` so that the call's blob handles can wait too without
    holding the host calls themselves: a cycle between the two would leave every call's host
    objects to the cyclic garbage collector instead of freeing them when the call ends."""

    __slots__ = ("_loop", "inline")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: The call is an inline attempt on the loop's own thread (effects held back).
        self.inline = False

    def wait(self, awaitable: Awaitable[_T]) -> _T:
        if self.inline:
            # Inline calls run on the loop thread: waiting on the loop would deadlock. The
            # sandbox abandons an inline attempt before any import that waits gets here
            # (sandbox.host.SPECULATION_STOPS); this is the backstop.
            raise StoreError("a host import that waits on the store ran in an inline call")
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self._loop)
        try:
            return future.result(HOST_IO_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise StoreError("the store did not answer a host call in time") from None


class StoreHostCalls:
    """Implements the sandbox's HostCalls protocol for one call."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        kv: KeyValueStore,
        tenant: str,
        config: dict[str, str],
        ctx: CallContext,
        clock: Callable[[], float],
        logger: logging.Logger,
        kv_quota: KvQuota | None = None,
        blobs: BlobAccess | None = None,
    ) -> None:
        self._waiter = _LoopWaiter(loop)
        self._wait = self._waiter.wait
        #: The tenant's own kv quota (tenant.toml [quotas]) over the box's [store] limits.
        self._kv_quota = kv_quota
        #: The tenant's blobs for this call (tenancy/blob_handles.py), when the box has any.
        self.blobs = blobs(self._wait) if blobs is not None else None
        self._kv = kv
        self._tenant = tenant
        self._config = config
        self._ctx = ctx
        self._clock = clock
        self._logger = logger
        #: Notifications held back during an inline call (None: send each one as it comes).
        self._held: list[JsonObject] | None = None
        #: Log lines held back likewise (level, message): an abandoned attempt's are dropped.
        self._held_logs: list[tuple[int, str]] = []
        self.counts = HostCallCounts()

    def hold_effects(self) -> None:
        """For an inline attempt on the event loop: keep notifications (sending one would wait
        on the loop, which the attempt occupies) and log lines, until the caller knows whether
        the attempt finished or is to be rerun in a worker, which would repeat them."""
        self._held = []
        self._held_logs = []
        self._waiter.inline = True

    def release_held(self, *, finished: bool) -> list[JsonObject]:
        """End holding. A finished attempt's log lines are written now and its notifications
        returned for the caller to send; an abandoned attempt's are dropped (its rerun makes
        them again). From now on each one goes out as it comes."""
        held, logs, self._held, self._held_logs = self._held or [], self._held_logs, None, []
        self._waiter.inline = False
        if not finished:
            return []
        for level, message in logs:
            self._write_log(level, message)
        return held

    def log(self, level: str, message: str) -> None:
        number = _LEVELS.get(level.lower(), logging.INFO)
        if self._held is not None:
            self._held_logs.append((number, message[:4096]))
        else:
            self._write_log(number, message[:4096])

    def _write_log(self, level: int, message: str) -> None:
        self._logger.log(level, "tenant %s: %s", self._tenant, message)

    def config_get(self, key: str) -> str | None:
        return self._config.get(key)

    def kv_get(self, key: str) -> str | None:
        self.counts.kv_reads += 1
        return self._wait(self._kv.kv_get(self._tenant, key))

    def kv_set(self, key: str, value: str) -> None:
        self.counts.kv_writes += 1
        self._write(self._kv.kv_set(self._tenant, key, value, self._kv_quota))

    def kv_cas(self, key: str, expected: str | None, value: str) -> bool:
        """Set key to value if its value is ``expected`` (None: if absent); True if written.
        Raises KvQuotaExceeded, or StoreError when the store fails."""
        self.counts.kv_writes += 1
        return self._write(self._kv.kv_cas(self._tenant, key, expected, value, self._kv_quota))

    def kv_incr(self, key: str, delta: int) -> int:
        """Add delta to the decimal integer under key (absent: 0); the new value. Raises
        KvQuotaExceeded, StoreError, or KvNotAnInteger (nothing written)."""
        self.counts.kv_writes += 1
        return self._write(self._kv.kv_incr(self._tenant, key, delta, self._kv_quota))

    def _write(self, write: Awaitable[_T]) -> _T:
        """A kv write; a quota's refusal is noted on the call for the transport to count and
        audit (the module gets the ABI's -1 and goes on), then raised as usual."""
        try:
            return self._wait(write)
        except KvQuotaExceeded as exc:
            quota = exc.data.get("quota") if exc.data else None
            self._ctx.refusals.append(KvWriteRefused(exc.message, quota=str(quota or "kv")))
            raise

    def kv_delete(self, key: str) -> None:
        self.counts.kv_writes += 1
        self._wait(self._kv.kv_delete(self._tenant, key))

    def kv_list(self, prefix: str) -> list[str]:
        self.counts.kv_reads += 1
        return self._wait(self._kv.kv_list(self._tenant, prefix))

    def notify(self, message: JsonObject) -> None:
        self.counts.notifications += 1
        if self._held is not None:
            self._held.append(message)
            return
        self._wait(self._ctx.notify(message))

    def time_now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- blobs: the sandbox's BlobHost ----------------------------------------------------

    def _blobs(self) -> BlobHandles:
        if self.blobs is None:
            raise StoreError("this box keeps no blobs")
        return self.blobs

    def blob_open(self, name: str, mode: int, content_type: str) -> int:
        return self._blobs().open(name, mode, content_type)

    def blob_read(self, handle: int, size: int) -> bytes:
        return self._blobs().read(handle, size)

    def blob_write(self, handle: int, data: bytes) -> None:
        self._blobs().write(handle, data)

    def blob_close(self, handle: int) -> None:
        self._blobs().close(handle)

    def blob_stat(self, name: str) -> JsonObject | None:
        return self._blobs().stat(name)

    def blob_list(self, prefix: str) -> list[JsonObject]:
        return self._blobs().listing(prefix)

    def blob_delete(self, name: str) -> bool:
        return self._blobs().delete(name)

    async def release(self) -> None:
        """At the end of the call: abort blob writes the module never closed."""
        if self.blobs is not None:
            await self.blobs.release()

    def random_bytes(self, length: int) -> bytes:
        return random_bytes(length)


#: The most bytes one random_bytes call hands out (docs/abi.md): enough for any key or nonce,
#: small enough that a loop of calls cannot make the host copy large buffers.
MAX_RANDOM_BYTES: Final = 65536


def random_bytes(length: int) -> bytes:
    """``length`` bytes from the host's CSPRNG, for every kind of tenant and for vetting alike.

    Raises BadModuleReply (the call fails with -32054, like other bad host-call arguments) for
    a length over :data:`MAX_RANDOM_BYTES` or below 0.
    """
    if not 0 <= length <= MAX_RANDOM_BYTES:
        raise BadModuleReply(
            f"random_bytes: asked for {length} bytes; one call gives 0 to {MAX_RANDOM_BYTES}. "
            "Ask in several calls."
        )
    return secrets.token_bytes(length)


async def _as_coroutine(awaitable: Awaitable[_T]) -> _T:
    return await awaitable
