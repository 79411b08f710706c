"""HPACK (RFC 7541) for the box's HTTP/2 connections, with the work of repeated header fields
and header blocks done once.

Why: ``hpack`` is pure Python, and over h2c it was the largest single cost of a small
``tools/call`` after the module call (issue 11's profiles: encoding a reply's seven header
fields about 41 µs, decoding the request's block about 40 µs, against about 500 µs for the
whole request). Both halves repeat the same work on every request:

* **Encoding** (:class:`StaticTableEncoder`). hpack's encoder adds every new field to the
  connection's dynamic table and then searches that table linearly for every later field; a
  reply carries a fresh ``X-Request-Id`` (and a new ``Date`` every second), so the table fills
  with values never sent again and each search walks all of them. This encoder never uses the
  dynamic table: a field is either the static table's exact entry (§6.1) or a literal without
  indexing (§6.2.2) naming a static-table name where there is one. An encoded field is then a
  function of the field alone, so it is memoised for all connections. Literals are not
  Huffman-coded (§5.2 leaves it to the encoder): hpack's coder is a Python loop over every
  byte, 4.5 µs for a fresh ``X-Request-Id`` against 0.7 µs sent as it is, and a value sent
  once gains nothing from the memo. The cost is bytes on the wire: the box's usual reply head
  is 117 bytes on every reply, where hpack's own encoder sends 89 the first time and 21 once
  its table holds the fields; about 100 bytes a reply, nothing on a LAN next to the CPU.
  RFC 7541 lets an encoder choose never to index (§2.3.2).
* **Decoding** (:class:`RepeatBlockDecoder`). A client sending the same request headers again
  sends the same block once its fields are in the table (nghttp2, browsers and most API clients
  do). A block that leaves the dynamic table as it was (indexed fields and literals without
  indexing only) means the same header list for as long as the table does not change, so its
  result is kept, keyed by the block's bytes and valid for the table's current version.

Invariants:

* The encoder's dynamic table stays empty; the one thing it still owes the peer is the table
  size update (§4.2) at the start of the first block after the peer changed
  ``SETTINGS_HEADER_TABLE_SIZE``.
* A field marked never-indexed (a :class:`hpack.NeverIndexedHeaderTuple`, as h2 marks
  ``authorization`` and short ``cookie`` values) is encoded as never-indexed (§6.2.3) and is
  not memoised.
* A kept decoding is returned only while the table's version, the header-list limit and the
  allowed table size are those it was made under; any addition, eviction or resize bumps the
  version. Errors are never kept: a block that failed is decoded (and fails) again.

:func:`install_on` gives an h2 connection both, before it has exchanged anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Final

from h2.connection import H2Connection
from hpack import Decoder, Encoder, HeaderTuple
from hpack.hpack import INDEX_NEVER, INDEX_NONE
from hpack.table import HeaderTable

#: Distinct (name, value) fields whose encoding is kept, for all connections together.
FIELD_MEMO_SIZE: Final = 4096
#: Header blocks kept per connection, and the largest kept: a request's block is tens of bytes
#: once its fields are indexed; anything larger is decoded every time.
BLOCK_MEMO_SIZE: Final = 8
BLOCK_MEMO_MAX_BYTES: Final = 1024


class StaticTableEncoder(Encoder):
    """An hpack encoder that never indexes (module doc)."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        if isinstance(headers, dict) or not huffman:
            return super().encode(headers, huffman)  # shapes h2 never passes
        parts = []
        if self.header_table.resized:
            # The peer changed SETTINGS_HEADER_TABLE_SIZE: the update is owed at the start of
            # this block (the table itself stays empty whatever its size).
            parts.append(self._encode_table_size_change())
            self.header_table.resized = False
        for header in headers:
            name, value = _as_bytes(header[0]), _as_bytes(header[1])
            if (isinstance(header, HeaderTuple) and not header.indexable) or (
                len(header) > 2 and header[2]
            ):
                parts.append(_field(name, value, INDEX_NEVER))
            else:
                parts.append(_memo_field(name, value))
        return b"".join(parts)


def _as_bytes(text: bytes | str) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")  # as hpack's own


def _field(name: bytes, value: bytes, index_bit: bytes) -> bytes:
    """One field without touching any dynamic table: the static table's exact entry, or a
    literal naming the static table's name where it has one. Literals are sent as they are,
    not Huffman-coded (module doc)."""
    encoder = _CODER
    static = HeaderTable.STATIC_TABLE_MAPPING.get(name)
    if static is not None:
        name_index, values = static
        exact = values.get(value)
        if exact is not None:
            return encoder._encode_indexed(exact)
        return encoder._encode_indexed_literal(name_index, value, index_bit, huffman=False)
    return encoder._encode_literal(name, value, index_bit, huffman=False)


@lru_cache(maxsize=FIELD_MEMO_SIZE)
def _memo_field(name: bytes, value: bytes) -> bytes:
    return _field(name, value, INDEX_NONE)


#: Only its stateless helpers are used (integer coding): no table is read.
_CODER: Final = Encoder()


class _VersionedTable(HeaderTable):
    """hpack's table, counting every change to its contents or size."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.version += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class RepeatBlockDecoder(Decoder):
    """An hpack decoder that keeps the result of blocks that did not change its table."""

    def __init__(self, max_header_list_size: int, max_allowed_table_size: int) -> None:
        super().__init__(max_header_list_size)
        self.header_table = _VersionedTable()
        self.max_allowed_table_size = max_allowed_table_size
        self._kept: dict[bytes, list[Any]] = {}
        self._kept_key: tuple[int, int, int] = (-1, -1, -1)

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        if not raw or len(data) > BLOCK_MEMO_MAX_BYTES:
            return super().decode(data, raw)
        table: _VersionedTable = self.header_table  # type: ignore[assignment]
        key = (table.version, self.max_header_list_size, self.max_allowed_table_size)
        if key != self._kept_key:
            self._kept.clear()
            self._kept_key = key
        block = bytes(data)
        kept = self._kept.get(block)
        if kept is not None:
            return list(kept)
        headers = list(super().decode(block, raw=True))
        if table.version == key[0]:
            if len(self._kept) >= BLOCK_MEMO_SIZE:
                self._kept.clear()
            self._kept[block] = headers
            return list(headers)
        return headers


def install_on(connection: H2Connection) -> None:
    """Give a new h2 connection (nothing exchanged yet) these encoder and decoder."""
    old = connection.decoder
    connection.encoder = StaticTableEncoder()
    connection.decoder = RepeatBlockDecoder(old.max_header_list_size, old.max_allowed_table_size)
