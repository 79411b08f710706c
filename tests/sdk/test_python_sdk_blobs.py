"""The Python SDK's blobs (smcp_box_sdk.blobs) against the box's own blob handles and a real
store, through a backend shaped like componentize-py's bindings (WIT errors raised as ``Err``
carrying the case). The component path itself is covered for kv in tests/e2e."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from smcp_box.sandbox.host import blob_status
from smcp_box.store import Store
from smcp_box.store.blobs import BlobQuotas
from smcp_box.tenancy.blob_handles import BlobHandles
from smcp_box_sdk import BlobError, blobs, use_backend
from tests.sdk.test_python_sdk import Err

_T = TypeVar("_T")
#: The WIT blob-error case of each status, spelled as componentize-py's enum names them.
CASES = {
    -1: "QUOTA_EXCEEDED",
    -2: "STORAGE_FAILURE",
    -3: "NOT_FOUND",
    -4: "INVALID_NAME",
    -5: "BAD_HANDLE",
}


class WitBlobs:
    """The blob-* functions with the WIT world's Python names and types."""

    def __init__(self, handles: BlobHandles) -> None:
        self.handles = handles

    def _do(self, call: Callable[[], _T]) -> _T | None:
        status, value = blob_status(call)
        if status:
            raise Err(CASES[status])
        return value

    def blob_open(self, name: str, write: bool, content_type: str) -> int:
        return int(self._do(lambda: self.handles.open(name, int(write), content_type)) or 0)

    def blob_read(self, handle: int, size: int) -> bytes:
        return self._do(lambda: self.handles.read(handle, size)) or b""

    def blob_write(self, handle: int, data: bytes) -> None:
        self._do(lambda: self.handles.write(handle, data))

    def blob_close(self, handle: int) -> None:
        self._do(lambda: self.handles.close(handle))

    def blob_stat(self, name: str) -> str | None:
        info = self._do(lambda: self.handles.stat(name))
        return None if info is None else json.dumps(info)

    def blob_list(self, prefix: str) -> str:
        return json.dumps(self._do(lambda: self.handles.listing(prefix)))

    def blob_delete(self, name: str) -> bool:
        return bool(self._do(lambda: self.handles.delete(name)))


class LoopThread:
    """An event loop in a thread, where the store lives, as the box's loop does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def wait(self, awaitable: Awaitable[Any]) -> Any:
        async def run() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def handles(tmp_path: Path) -> Iterator[BlobHandles]:
    runner = LoopThread()
    store: Store = runner.wait(Store.open(tmp_path / "box.db", bytes(range(32))))
    quotas = BlobQuotas(max_bytes=4 * 1024 * 1024, max_count=3)
    made = BlobHandles(store.blobs, "py", quotas, runner.wait)
    use_backend(WitBlobs(made))  # type: ignore[arg-type]
    try:
        yield made
    finally:
        use_backend(None)
        runner.wait(made.release())
        runner.wait(store.close())
        runner.stop()


def test_write_read_stat_list_delete(handles: BlobHandles) -> None:
    data = hashlib.sha512(b"seed").digest() * 50_000  # 3.2 MiB: several pieces
    blobs.write("charts/q1.bin", data, "image/png")
    assert blobs.read_bytes("charts/q1.bin") == data
    with blobs.open_read("charts/q1.bin") as reader:
        assert [len(piece) for piece in reader][:2] == [1024 * 1024, 1024 * 1024]
    stat = blobs.stat("charts/q1.bin")
    assert stat is not None
    assert (stat["size"], stat["contentType"]) == (len(data), "image/png")
    assert stat["sha256"] == hashlib.sha256(data).hexdigest()
    blobs.write("notes/a.txt", "text")
    assert [b["name"] for b in blobs.list("notes/")] == ["notes/a.txt"]
    assert blobs.delete("notes/a.txt") is True
    assert blobs.delete("notes/a.txt") is False
    assert blobs.stat("notes/a.txt") is None


def test_errors_are_blob_errors_naming_the_case(handles: BlobHandles) -> None:
    with pytest.raises(BlobError) as missing:
        blobs.read_bytes("nothing")
    assert missing.value.reason == "not-found"
    with pytest.raises(BlobError) as bad:
        blobs.write("../x", b"x")
    assert bad.value.reason == "invalid-name"
    with pytest.raises(BlobError) as quota:
        blobs.write("big", b"x" * (4 * 1024 * 1024 + 1))
    assert quota.value.reason == "quota-exceeded"


def test_a_with_block_that_fails_does_not_commit(handles: BlobHandles) -> None:
    blobs.write("doc", "old")

    def failing_tool() -> None:
        with blobs.open_write("doc", "text/plain") as writer:
            writer.write("new")
            raise RuntimeError("the tool failed half-way")

    with pytest.raises(RuntimeError):
        failing_tool()
    assert blobs.read_bytes("doc") == b"old"
