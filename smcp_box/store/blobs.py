"""Per-tenant blobs: files that tools keep and clients read, chunked, sealed and quota'd.

Layout. A blob is a row of ``blobs`` (found by ``lookup("blobs", tenant, name)``; its name,
content type and SHA-256 sealed in ``meta_enc``) pointing at one *version*: a random id whose
content is the rows of ``blob_chunks`` with that version, :data:`CHUNK_BYTES` of plaintext each
(the last one shorter; a 0-byte blob has none). Each chunk is sealed with
``("blob_chunks", tenant, version, index)`` as associated data, so a chunk moved to another blob,
another tenant or another position fails to open.

Atomicity. The chunks of a new version are written first, in small transactions of their own
(one long transaction would hold the store's only writer for as long as a client takes to
upload). They are invisible until the *commit*: one transaction that checks the quotas, points
the blob's row at the new version and deletes the old version's chunks. A crash before it leaves
the old version and some chunks that no row points at; a crash after it, the new version. Those
orphan chunks are deleted by :meth:`Blobs.recover_for`.

Boxes. Several boxes may share one database, each writing chunks: a chunk row names the box
that wrote it (``box_id``), and orphans are recovered per box. A chunk no blob points at may be
a live box's write in flight, indistinguishable from a dead one's in the table, so
:meth:`Blobs.recover_for` deletes only the orphans of one box: the box's own at start (before
it writes anything; offline commands such as ``doctor`` open the store beside a running box
and must not run it), or those of a box known to be gone (its heartbeat stopped), run by the
box that notices. Chunks written before box ids existed carry ``''`` and count as every box's
(only a single SQLite box wrote them). The commit takes a per-tenant lock, so two boxes
committing for one tenant pass the quotas one after the other, never both on the same usage.

Streaming. Writers buffer at most one chunk; readers hold at most one chunk; the SHA-256 of
the plaintext is computed as chunks go by and checked when a read reaches the end, so a blob
never passes through memory whole.

Quotas (``blob_max_bytes``, ``blob_max_total_bytes``, ``blob_max_count``) come from the caller
as :class:`BlobQuotas` (the tenant's, resolved in the tenancy layer). The size limit is checked
as bytes arrive, so an oversized upload stops early; all three are checked again in the commit
transaction, which is the check that counts. As with kv, only growth is refused: a tenant over a
lowered quota can still shrink or delete.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from smcp_box.config import QuotaSettings
from smcp_box.errors import BlobNotFound, BlobQuotaExceeded, DecryptionFailed, InvalidBlobName

from .crypto import Crypto
from .db import Database, Tx

log = logging.getLogger("smcp_box.store")

#: Plaintext bytes per chunk: large enough that a 20 MiB blob is 80 rows, small enough that a
#: reader or writer holds little.
CHUNK_BYTES: Final = 256 * 1024
MAX_NAME_BYTES: Final = 512
MAX_CONTENT_TYPE_CHARS: Final = 255
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
_CHUNKS: Final = "blob_chunks"
_TABLE: Final = "blobs"

# A segment is ASCII letters, digits, '.', '_' and '-', never '.' or '..': names look like
# paths (reports/2026-12.pdf) and stay safe as file names, URI paths and log text.
_SEGMENT: Final = re.compile(r"[A-Za-z0-9._-]+")
_MIME_WORD: Final = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE: Final = re.compile(
    rf"{_MIME_WORD}/{_MIME_WORD}(\s*;\s*{_MIME_WORD}=(?:{_MIME_WORD}|\"[^\"\\\r\n]*\"))*"
)

#: Called after a blob of (tenant, name) changed or was deleted, once the change committed.
BlobListener = Callable[[str, str], None]


@dataclass(frozen=True)
class BlobQuotas:
    """One tenant's blob quotas (tenant.toml ``[quotas]`` over the box's ``[quotas]``)."""

    max_bytes: int = QuotaSettings.blob_max_bytes
    max_total_bytes: int = QuotaSettings.blob_max_total_bytes
    max_count: int = QuotaSettings.blob_max_count


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    content_type: str
    #: Hex SHA-256 of the plaintext.
    sha256: str
    updated_at: float
    #: The id of the committed content (changes with every write; not secret).
    version: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "contentType": self.content_type,
            "sha256": self.sha256,
            "updatedAt": self.updated_at,
        }


class BlobUsage(NamedTuple):
    blobs: int
    bytes: int


def check_blob_name(name: str) -> str:
    """``name`` if it is a safe path (``reports/2026-12.pdf``), else InvalidBlobName."""
    if not isinstance(name, str) or not name:
        raise InvalidBlobName("A blob name must be a non-empty string, like reports/2026-12.pdf.")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidBlobName(
            f"The blob name is {len(name.encode())} bytes; at most {MAX_NAME_BYTES} are allowed."
        )
    for segment in name.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise InvalidBlobName(
                f"The blob name {name!r} is not a safe path: use segments of letters, digits, "
                "'.', '_' and '-' separated by single '/', with no empty, '.' or '..' segment."
            )
    return name


def check_content_type(content_type: str) -> str:
    """``content_type`` if it is a MIME type (``text/plain; charset=utf-8``), else
    InvalidBlobName."""
    if (
        not isinstance(content_type, str)
        or len(content_type) > MAX_CONTENT_TYPE_CHARS
        or not _CONTENT_TYPE.fullmatch(content_type)
    ):
        raise InvalidBlobName(
            f"The content type {content_type!r} is not a MIME type like text/plain or "
            f"application/pdf (at most {MAX_CONTENT_TYPE_CHARS} characters)."
        )
    return content_type


#: The box id of chunks written before chunks had one (see the module doc).
UNOWNED: Final = ""


class Blobs:
    def __init__(
        self, db: Database, crypto: Crypto, clock: Callable[[], float], box_id: str
    ) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock
        #: The box this object writes chunks as (the chunk rows' ``box_id``).
        self.box_id = box_id
        #: Versions being written by this process: never orphans, whatever cleanup finds.
        self._writing: set[str] = set()
        self._listeners: list[BlobListener] = []

    def add_listener(self, listener: BlobListener) -> Callable[[], None]:
        """Call ``listener(tenant, name)`` after each committed change; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self, tenant: str, name: str) -> None:
        # The change is committed: a failing listener must not make it look failed (a writer
        # would then abort it).
        for listener in list(self._listeners):
            try:
                listener(tenant, name)
            except Exception:
                log.exception("a blob listener failed for %s of tenant %s", name, tenant)

    def _name_hash(self, tenant: str, name: str) -> bytes:
        return self._crypto.lookup(_TABLE, tenant, name)

    # --- writing ----------------------------------------------------------------------------

    async def writer(
        self, tenant: str, name: str, content_type: str, quotas: BlobQuotas
    ) -> BlobWriter:
        """A writer for a new version of ``name``; the old one stays until :meth:`commit`.

        Refuses early (BlobQuotaExceeded) when a new name would pass ``blob_max_count``."""
        check_blob_name(name)
        check_content_type(content_type)
        async with self._db.read() as tx:
            old = await self._row(tx, tenant, self._name_hash(tenant, name))
            usage = await _usage(tx, tenant)
        if old is None:
            _check_count(tenant, usage.blobs + 1, quotas)
        version = secrets.token_hex(16)
        self._writing.add(version)
        replaces = 0 if old is None else int(old[1])
        return BlobWriter(self, tenant, name, content_type, quotas, version, replaces)

    async def put(
        self,
        tenant: str,
        name: str,
        source: AsyncIterable[bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        quotas: BlobQuotas,
    ) -> BlobInfo:
        """Write everything ``source`` yields as the new content of ``name``."""
        writer = await self.writer(tenant, name, content_type, quotas)
        try:
            async for data in source:
                await writer.write(data)
            return await writer.commit()
        finally:
            await writer.abort()

    async def _insert_chunk(self, writer: BlobWriter, plaintext: bytes) -> None:
        tenant, version, index = writer.tenant, writer.version, writer.chunks
        sealed = self._crypto.seal(plaintext, _CHUNKS, tenant, version, index)
        async with self._db.write() as tx:
            if writer.size > writer.replaces:
                # Not the final check (the commit's is), but a tenant filling its quota learns
                # so while uploading rather than after.
                usage = await _usage(tx, tenant)
                _check_total(tenant, usage.bytes - writer.replaces + writer.size, writer.quotas)
            await tx.run(
                "INSERT INTO blob_chunks (version, idx, tenant, data, box_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (version, index, tenant, sealed, self.box_id),
            )

    async def _commit(self, writer: BlobWriter) -> BlobInfo:
        tenant, name, quotas = writer.tenant, writer.name, writer.quotas
        name_hash = self._name_hash(tenant, name)
        info = BlobInfo(
            name=name,
            size=writer.size,
            content_type=writer.content_type,
            sha256=writer.sha256,
            updated_at=self._clock(),
            version=writer.version,
        )
        meta = self._crypto.seal_json(
            {"name": name, "contentType": info.content_type, "sha256": info.sha256},
            _TABLE,
            tenant,
            name_hash,
            "meta",
        )
        async with self._db.write() as tx:
            # The quota checks read the usage this transaction changes: one commit per tenant
            # at a time, across boxes, so two cannot both pass on the same figures.
            await tx.lock(_TABLE, tenant)
            old = await self._row(tx, tenant, name_hash)
            usage = await _usage(tx, tenant)
            old_size = 0 if old is None else int(old[1])
            if old is None:
                _check_count(tenant, usage.blobs + 1, quotas)
            if info.size > old_size:
                _check_total(tenant, usage.bytes - old_size + info.size, quotas)
            await tx.run(
                "INSERT INTO blobs (tenant, name_hash, version, meta_enc, size, chunks,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, name_hash) DO"
                " UPDATE SET version = excluded.version, meta_enc = excluded.meta_enc,"
                " size = excluded.size, chunks = excluded.chunks,"
                " updated_at = excluded.updated_at",
                (tenant, name_hash, info.version, meta, info.size, writer.chunks, info.updated_at),
            )
            if old is not None:
                await tx.run("DELETE FROM blob_chunks WHERE version = ?", (old[0],))
        self._writing.discard(writer.version)
        self._changed(tenant, name)
        return info

    async def _discard(self, version: str) -> None:
        # Never the chunks of a committed version: a commit interrupted after SQLite committed
        # (a cancellation while COMMIT ran) must not lose the blob it made.
        await self._db.write_one(
            "DELETE FROM blob_chunks WHERE version = ? AND version NOT IN"
            " (SELECT version FROM blobs)",
            (version,),
        )
        self._writing.discard(version)

    # --- reading ----------------------------------------------------------------------------

    async def stat(self, tenant: str, name: str) -> BlobInfo | None:
        check_blob_name(name)
        name_hash = self._name_hash(tenant, name)
        async with self._db.read() as tx:
            row = await self._row(tx, tenant, name_hash)
        return None if row is None else self._info(tenant, name_hash, row)

    async def require(self, tenant: str, name: str) -> BlobInfo:
        info = await self.stat(tenant, name)
        if info is None:
            raise BlobNotFound(f"Tenant {tenant!r} has no blob named {name!r}.")
        return info

    async def read(
        self, tenant: str, info: BlobInfo, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes ``[offset, offset + length)`` of the version ``info`` describes, a chunk
        at a time. A whole read (offset 0, no length) checks the SHA-256 at the end."""
        end = info.size if length is None else min(info.size, offset + max(0, length))
        whole = offset == 0 and end == info.size
        digest = hashlib.sha256()
        index = offset // CHUNK_BYTES
        while index * CHUNK_BYTES < end:
            plain = await self._chunk(tenant, info, index)
            start = index * CHUNK_BYTES
            piece = plain[max(0, offset - start) : end - start]
            if whole:
                digest.update(plain)
            index += 1
            if piece:
                yield piece
        if whole and digest.hexdigest() != info.sha256:
            raise DecryptionFailed(
                f"Blob {info.name!r} of tenant {tenant!r} does not match its SHA-256: its chunks "
                "were altered, removed or reordered. Restore it from a backup or delete it."
            )

    async def _chunk(self, tenant: str, info: BlobInfo, index: int) -> bytes:
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT data FROM blob_chunks WHERE version = ? AND idx = ?", (info.version, index)
            )
        if row is None:
            current = await self.stat(tenant, info.name)
            if current is None or current.version != info.version:
                raise BlobNotFound(
                    f"Blob {info.name!r} of tenant {tenant!r} was replaced or deleted while "
                    "being read; read it again."
                )
            raise DecryptionFailed(
                f"Chunk {index} of blob {info.name!r} of tenant {tenant!r} is missing. Restore "
                "the blob from a backup or delete it."
            )
        try:
            plain = self._crypto.open(bytes(row[0]), _CHUNKS, tenant, info.version, index)
        except DecryptionFailed:
            raise DecryptionFailed(
                f"Chunk {index} of blob {info.name!r} of tenant {tenant!r} failed authentication:"
                " it belongs to another blob, tenant or position, or the data key is not the "
                "one it was written with. Restore the blob from a backup or delete it."
            ) from None
        expected = min(CHUNK_BYTES, info.size - index * CHUNK_BYTES)
        if len(plain) != expected:
            raise DecryptionFailed(
                f"Chunk {index} of blob {info.name!r} of tenant {tenant!r} has {len(plain)} "
                f"bytes where {expected} were written."
            )
        return plain

    async def listing(self, tenant: str, prefix: str = "") -> list[BlobInfo]:
        """The tenant's blobs whose name starts with ``prefix``, by name. Names are sealed,
        so this opens each and filters here (the count is capped by ``blob_max_count``)."""
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT name_hash, version, size, meta_enc, updated_at FROM blobs WHERE tenant = ?",
                (tenant,),
            )
        infos = (self._info(tenant, bytes(r[0]), r[1:]) for r in rows)
        return sorted((i for i in infos if i.name.startswith(prefix)), key=lambda i: i.name)

    async def usage(self, tenant: str) -> BlobUsage:
        async with self._db.read() as tx:
            return await _usage(tx, tenant)

    async def all_usage(self) -> dict[str, BlobUsage]:
        async with self._db.read() as tx:
            rows = await tx.all("SELECT tenant, blobs, bytes FROM blob_usage ORDER BY tenant")
        return {str(t): BlobUsage(int(c), int(b)) for t, c, b in rows if c}

    async def tenants(self) -> list[str]:
        async with self._db.read() as tx:
            rows = await tx.all("SELECT DISTINCT tenant FROM blobs ORDER BY tenant")
        return [str(r[0]) for r in rows]

    # --- deleting and cleaning up -------------------------------------------------------------

    async def delete(self, tenant: str, name: str) -> bool:
        check_blob_name(name)
        name_hash = self._name_hash(tenant, name)
        async with self._db.write() as tx:
            rows = await tx.all(
                "DELETE FROM blobs WHERE tenant = ? AND name_hash = ? RETURNING version",
                (tenant, name_hash),
            )
            for (version,) in rows:
                await tx.run("DELETE FROM blob_chunks WHERE version = ?", (version,))
        if rows:
            self._changed(tenant, name)
        return bool(rows)

    async def clear(self, tenant: str) -> int:
        """Delete all of the tenant's blobs; returns how many there were."""
        async with self._db.write() as tx:
            rows = await tx.all("DELETE FROM blobs WHERE tenant = ? RETURNING version", (tenant,))
            # The committed versions only: another box's write in flight for the tenant keeps
            # its chunks until it commits or aborts (or its box's recovery takes them).
            for (version,) in rows:
                await tx.run("DELETE FROM blob_chunks WHERE version = ?", (version,))
        return len(rows)

    async def orphan_versions(self, box_id: str | None = None) -> list[str]:
        """Versions written by the box ``box_id`` (this one by default) with chunks that no
        blob points at, leaving out the versions this process is still writing."""
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT DISTINCT version FROM blob_chunks WHERE box_id IN (?, ?)"
                " AND version NOT IN (SELECT version FROM blobs)",
                (self.box_id if box_id is None else box_id, UNOWNED),
            )
        return [str(r[0]) for r in rows if r[0] not in self._writing]

    async def recover_for(self, box_id: str) -> int:
        """Delete the chunks of the versions the box ``box_id`` left uncommitted (a crash
        mid-write leaves them); returns how many chunks went.

        Run it for this box's own id at start, and for a box known to be gone (its heartbeat
        stopped); never for another live box's id, whose writes in flight look the same."""
        removed = 0
        for version in await self.orphan_versions(box_id):
            rows = await self._db.write_one(
                "DELETE FROM blob_chunks WHERE version = ? AND version NOT IN"
                " (SELECT version FROM blobs) RETURNING 1",
                (version,),
            )
            removed += len(rows)
        return removed

    # --- rows -------------------------------------------------------------------------------

    async def _row(self, tx: Tx, tenant: str, name_hash: bytes) -> tuple[Any, ...] | None:
        return await tx.one(
            "SELECT version, size, meta_enc, updated_at FROM blobs"
            " WHERE tenant = ? AND name_hash = ?",
            (tenant, name_hash),
        )

    def _info(self, tenant: str, name_hash: bytes, row: tuple[Any, ...]) -> BlobInfo:
        version, size, meta_enc, updated_at = row
        meta = self._crypto.open_json(bytes(meta_enc), _TABLE, tenant, name_hash, "meta")
        return BlobInfo(
            name=str(meta["name"]),
            size=int(size),
            content_type=str(meta["contentType"]),
            sha256=str(meta["sha256"]),
            updated_at=float(updated_at),
            version=str(version),
        )


@dataclass(eq=False)
class BlobWriter:
    """Bytes in through :meth:`write`, then :meth:`commit` (or :meth:`abort`, which is safe to
    call after a commit and is what leaving without one amounts to)."""

    _blobs: Blobs
    tenant: str
    name: str
    content_type: str
    quotas: BlobQuotas
    version: str
    #: Bytes of the version this one replaces (0 for a new name), for the quota checks.
    replaces: int = 0
    size: int = 0
    chunks: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _digest: Any = field(default_factory=hashlib.sha256)
    _done: bool = False

    @property
    def sha256(self) -> str:
        return str(self._digest.hexdigest())

    async def write(self, data: bytes) -> None:
        if self._done:
            raise BlobNotFound(f"The write of blob {self.name!r} is already finished.")
        if self.size + len(data) > self.quotas.max_bytes:
            await self.abort()
            raise BlobQuotaExceeded(
                f"Blob {self.name!r} of tenant {self.tenant!r} would be larger than the "
                f"blob_max_bytes quota of {self.quotas.max_bytes} bytes; nothing was kept. "
                "Store less, or raise [quotas] blob_max_bytes in tenant.toml.",
                quota="blob_max_bytes",
            )
        self.size += len(data)
        self._digest.update(data)
        view = memoryview(data)
        while view:
            room = CHUNK_BYTES - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == CHUNK_BYTES:
                await self._flush()

    async def _flush(self) -> None:
        try:
            await self._blobs._insert_chunk(self, bytes(self._buffer))
        except BaseException:
            await self.abort()
            raise
        self.chunks += 1
        self._buffer.clear()

    async def commit(self) -> BlobInfo:
        if self._done:
            raise BlobNotFound(f"The write of blob {self.name!r} is already finished.")
        if self._buffer:
            await self._flush()
        try:
            info = await self._blobs._commit(self)
        except BaseException:
            await self.abort()
            raise
        self._done = True
        return info

    async def abort(self) -> None:
        """Forget the chunks written so far (nothing if committed or already aborted)."""
        if self._done:
            return
        self._done = True
        self._buffer.clear()
        await self._blobs._discard(self.version)


async def _usage(tx: Tx, tenant: str) -> BlobUsage:
    row = await tx.one("SELECT blobs, bytes FROM blob_usage WHERE tenant = ?", (tenant,))
    return BlobUsage(0, 0) if row is None else BlobUsage(int(row[0]), int(row[1]))


def _check_count(tenant: str, count: int, quotas: BlobQuotas) -> None:
    if count > quotas.max_count:
        raise BlobQuotaExceeded(
            f"Tenant {tenant!r} would have {count} blobs; the blob_max_count quota is "
            f"{quotas.max_count}. Delete blobs, or raise [quotas] blob_max_count in tenant.toml.",
            quota="blob_max_count",
        )


def _check_total(tenant: str, total: int, quotas: BlobQuotas) -> None:
    if total > quotas.max_total_bytes:
        raise BlobQuotaExceeded(
            f"Tenant {tenant!r} would keep {total} bytes of blobs; the blob_max_total_bytes "
            f"quota is {quotas.max_total_bytes}. Delete blobs, or raise [quotas] "
            "blob_max_total_bytes in tenant.toml.",
            quota="blob_max_total_bytes",
        )
