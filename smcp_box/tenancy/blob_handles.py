"""Blobs as a module sees them during one call: open/read/write/close by handle, stat, list,
delete, all of its own tenant only.

Handles are small integers valid for one call. A write handle is a store writer: nothing is
visible until ``blob_close`` commits it, and a handle still open when the call ends is aborted
(its chunks deleted), so a call that traps, times out or forgets to close leaves the old blob.
A read handle reads the version that was current at open, sequentially, and checks the
SHA-256 when it reaches the end.

Like the kv imports, each method runs in the sandbox's worker thread and waits on the event
loop for the store (``wait``); a call's fuel and wall-clock limits keep bounding it, since each
import is one host call against ``max_host_calls`` and the deadline.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from smcp_box.errors import BlobHandleError, DecryptionFailed
from smcp_box.seams import JsonObject
from smcp_box.store.blobs import (
    DEFAULT_CONTENT_TYPE,
    BlobInfo,
    BlobQuotas,
    Blobs,
    BlobWriter,
    check_blob_name,
)

_T = TypeVar("_T")
Wait = Callable[[Awaitable[Any]], Any]

#: Handles one call may hold open at once.
MAX_OPEN_HANDLES: Final = 16
#: The most bytes one blob_read or blob_write moves (a module loops for more).
MAX_IO_BYTES: Final = 1024 * 1024
MODE_READ: Final = 0
MODE_WRITE: Final = 1


@dataclass
class _Reader:
    info: BlobInfo
    offset: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


class BlobHandles:
    """The blob imports of one call of ``tenant``."""

    def __init__(self, blobs: Blobs, tenant: str, quotas: BlobQuotas, wait: Wait) -> None:
        self._blobs = blobs
        self._tenant = tenant
        self._quotas = quotas
        self._wait = wait
        self._open: dict[int, _Reader | BlobWriter] = {}

    def _handle(self, handle: int) -> _Reader | BlobWriter:
        found = self._open.get(handle)
        if found is None:
            raise BlobHandleError(f"blob handle {handle} is not open")
        return found

    def open(self, name: str, mode: int, content_type: str) -> int:
        if mode not in (MODE_READ, MODE_WRITE):
            raise BlobHandleError(f"blob_open: mode {mode} is neither 0 (read) nor 1 (write)")
        if len(self._open) >= MAX_OPEN_HANDLES:
            raise BlobHandleError(f"at most {MAX_OPEN_HANDLES} blob handles may be open at once")
        entry: _Reader | BlobWriter
        if mode == MODE_READ:
            entry = _Reader(self._wait(self._blobs.require(self._tenant, name)))
        else:
            entry = self._wait(
                self._blobs.writer(
                    self._tenant, name, content_type or DEFAULT_CONTENT_TYPE, self._quotas
                )
            )
        handle = next(h for h in range(1, MAX_OPEN_HANDLES + 2) if h not in self._open)
        self._open[handle] = entry
        return handle

    def read(self, handle: int, size: int) -> bytes:
        reader = self._handle(handle)
        if not isinstance(reader, _Reader):
            raise BlobHandleError(f"blob handle {handle} was opened for writing, not reading")
        size = max(0, min(size, MAX_IO_BYTES))
        data: bytes = self._wait(
            _collect(self._blobs.read(self._tenant, reader.info, reader.offset, size))
        )
        reader.offset += len(data)
        reader.digest.update(data)
        if (
            data
            and reader.offset == reader.info.size
            and reader.digest.hexdigest() != reader.info.sha256
        ):
            raise DecryptionFailed(
                f"blob {reader.info.name!r} does not match its SHA-256; restore or delete it"
            )
        return data

    def write(self, handle: int, data: bytes) -> None:
        writer = self._handle(handle)
        if not isinstance(writer, BlobWriter):
            raise BlobHandleError(f"blob handle {handle} was opened for reading, not writing")
        try:
            self._wait(writer.write(data))
        except BaseException:
            self._open.pop(handle, None)  # the writer aborted itself
            raise

    def close(self, handle: int) -> None:
        entry = self._handle(handle)
        del self._open[handle]
        if isinstance(entry, BlobWriter):
            self._wait(entry.commit())

    def stat(self, name: str) -> JsonObject | None:
        info = self._wait(self._blobs.stat(self._tenant, name))
        return None if info is None else info.as_json()

    def listing(self, prefix: str) -> list[JsonObject]:
        infos: list[BlobInfo] = self._wait(self._blobs.listing(self._tenant, prefix))
        return [info.as_json() for info in infos]

    def delete(self, name: str) -> bool:
        check_blob_name(name)
        deleted: bool = self._wait(self._blobs.delete(self._tenant, name))
        return deleted

    async def release(self) -> None:
        """At the end of the call, on the event loop: abort writes never closed."""
        entries, self._open = list(self._open.values()), {}
        for entry in entries:
            if isinstance(entry, BlobWriter):
                await entry.abort()


async def _collect(pieces: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in pieces])
