"""Child process for the kill -9 test: overwrites one blob again and again, saying how far it got.

Run as ``python blob_crash_writer.py DB_PATH``. Version ``i`` of blob ``doc`` is
:func:`content` ``(i)``; after each commit it prints ``committed i``, after each chunk of a write
``chunk i k``, so the parent can kill it in the middle of a write.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

from smcp_box.store import Store
from smcp_box.store.blobs import CHUNK_BYTES, BlobQuotas

SIZE = 12 * CHUNK_BYTES + 1234
DATA_KEY = bytes(range(32))


def content(version: int) -> bytes:
    return hashlib.sha256(str(version).encode()).digest() * (SIZE // 32) + b"t" * (SIZE % 32)


async def main(path: Path) -> None:
    store = await Store.open(path, DATA_KEY)
    quotas = BlobQuotas()
    for version in range(1, 1_000):
        writer = await store.blobs.writer("alpha", "doc", "application/octet-stream", quotas)
        data = content(version)
        for start in range(0, SIZE, CHUNK_BYTES):
            await writer.write(data[start : start + CHUNK_BYTES])
            print(f"chunk {version} {start // CHUNK_BYTES}", flush=True)
        await writer.commit()
        print(f"committed {version}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
