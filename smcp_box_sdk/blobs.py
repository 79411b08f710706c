"""The tenant's blobs (the ``blob-*`` functions of the ``smcp:box`` host interface): files kept
by the box beside kv, read and written a piece at a time, never whole in the module's memory
unless it asks for that (:meth:`Blobs.read_bytes`).

A write is invisible until :meth:`BlobWriter.close` (or leaving its ``with`` block normally)
commits it; a writer never closed is abandoned when the call ends and the old blob stays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .host import host_call

#: The most bytes one read or write moves; larger writes are split, reads ask for this much.
PIECE_BYTES = 1024 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class BlobError(Exception):
    """A blob call failed: ``reason`` is ``"quota-exceeded"``, ``"storage-failure"``,
    ``"not-found"``, ``"invalid-name"`` or ``"bad-handle"``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"blob call failed: {reason}")
        self.reason = reason


def _call(name: str, *args: Any) -> Any:
    return host_call(BlobError, name, *args)


class BlobWriter:
    """Bytes in with :meth:`write`; :meth:`close` commits them as the blob's new version."""

    def __init__(self, handle: int) -> None:
        self._handle = handle
        self._closed = False

    def write(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        for start in range(0, len(raw), PIECE_BYTES):
            _call("blob_write", self._handle, raw[start : start + PIECE_BYTES])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _call("blob_close", self._handle)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        # Only a block that finished commits; after an exception the write is abandoned.
        if exc_type is None:
            self.close()


class BlobReader:
    """The blob's bytes in order: :meth:`read`, or iterate for pieces."""

    def __init__(self, handle: int) -> None:
        self._handle = handle

    def read(self, size: int = PIECE_BYTES) -> bytes:
        """Up to ``size`` (at most 1 MiB) next bytes; empty at the end."""
        return bytes(_call("blob_read", self._handle, min(size, PIECE_BYTES)))

    def __iter__(self) -> Iterator[bytes]:
        while piece := self.read():
            yield piece

    def close(self) -> None:
        _call("blob_close", self._handle)

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Blobs:
    def open_write(self, name: str, content_type: str = DEFAULT_CONTENT_TYPE) -> BlobWriter:
        return BlobWriter(int(_call("blob_open", name, True, content_type)))

    def open_read(self, name: str) -> BlobReader:
        """BlobError("not-found") when there is no such blob."""
        return BlobReader(int(_call("blob_open", name, False, "")))

    def write(self, name: str, data: bytes | str, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        with self.open_write(name, content_type) as writer:
            writer.write(data)

    def read_bytes(self, name: str) -> bytes:
        with self.open_read(name) as reader:
            return b"".join(reader)

    def stat(self, name: str) -> dict[str, Any] | None:
        """``{"name", "size", "contentType", "sha256", "updatedAt"}``, or None if absent."""
        text = _call("blob_stat", name)
        return None if text is None else dict(json.loads(text))

    def list(self, prefix: str = "") -> list[dict[str, Any]]:
        return list(json.loads(_call("blob_list", prefix)))

    def delete(self, name: str) -> bool:
        return bool(_call("blob_delete", name))


blobs = Blobs()
