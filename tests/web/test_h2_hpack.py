"""HPACK with repeated work done once (web/h2_hpack.py), checked against hpack's own coder.

Every block the box's encoder writes must decode, with hpack's stock decoder, to the fields it
was given, leaving that decoder's dynamic table empty; every block the box's decoder reads must
give exactly what hpack's stock decoder gives for the same sequence of blocks, whatever blocks
repeat, grow the table, evict from it or resize it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smcp_box.web import h2_guard
from smcp_box.web.h2_hpack import (
    BLOCK_MEMO_MAX_BYTES,
    RepeatBlockDecoder,
    StaticTableEncoder,
    install_on,
)
from tests.support.serving import serve_on_loopback
from tests.web.rawwire import H2Client, h2_headers

PATIENCE_S = 10.0

#: Names from the static table (exact entries and name-only), and names it lacks.
_NAMES = [b":status", b"content-type", b"content-length", b"date", b"server", b"x-request-id"]
_VALUES = [b"200", b"404", b"application/json", b"", b"gzip, deflate", b"\x00\xff", b"a" * 300]
_names = st.one_of(
    st.sampled_from(_NAMES), st.binary(min_size=1, max_size=12).map(lambda b: b.hex().encode())
)
_values = st.one_of(st.sampled_from(_VALUES), st.binary(max_size=40))
_fields = st.lists(st.tuples(_names, _values, st.booleans()), max_size=10)


def _tuples(fields: list[tuple[bytes, bytes, bool]]) -> list[hpack.HeaderTuple]:
    return [
        hpack.NeverIndexedHeaderTuple(n, v) if never else hpack.HeaderTuple(n, v)
        for n, v, never in fields
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(_fields, min_size=1, max_size=6))
def test_encoded_blocks_decode_to_the_fields_given_and_index_nothing(
    blocks: list[list[tuple[bytes, bytes, bool]]],
) -> None:
    encoder, decoder = StaticTableEncoder(), hpack.Decoder()
    for fields in blocks:
        decoded = decoder.decode(encoder.encode(_tuples(fields)), raw=True)
        assert [(bytes(n), bytes(v)) for n, v in decoded] == [(n, v) for n, v, _ in fields]
        for field, (_, _, never) in zip(decoded, fields, strict=True):
            # An exact static-table entry is indexed whatever its marking (as hpack does).
            if never and not _static_exact(field[0], field[1]):
                assert isinstance(field, hpack.NeverIndexedHeaderTuple)
        assert len(decoder.header_table.dynamic_entries) == 0
        assert len(encoder.header_table.dynamic_entries) == 0


def _static_exact(name: bytes, value: bytes) -> bool:
    entry = hpack.table.HeaderTable.STATIC_TABLE_MAPPING.get(name)
    return entry is not None and value in entry[1]


def test_a_smaller_table_size_from_the_peer_is_signalled_in_the_next_block() -> None:
    """The decoder was told (SETTINGS acknowledged) that the table may hold 0 bytes: a block
    without the size update is refused by hpack's decoder, ours carries it."""
    encoder = StaticTableEncoder()
    encoder.header_table_size = 0  # what h2 does on the peer's SETTINGS_HEADER_TABLE_SIZE
    decoder = hpack.Decoder()
    decoder.max_allowed_table_size = 0
    fields = [(b":status", b"200"), (b"x-request-id", b"0123")]
    block = encoder.encode(fields)
    assert block[0] & 0xE0 == 0x20  # a dynamic table size update first
    assert decoder.decode(block, raw=True) == fields
    assert encoder.encode(fields)[0] & 0xE0 != 0x20  # owed once only
    stale = hpack.Decoder()
    stale.max_allowed_table_size = 0
    with pytest.raises(hpack.InvalidTableSizeError):
        stale.decode(StaticTableEncoder().encode(fields), raw=True)


def test_fields_given_as_text_are_encoded_as_utf8() -> None:
    block = StaticTableEncoder().encode([("x-name", "caf\u00e9")])
    assert hpack.Decoder().decode(block, raw=True) == [(b"x-name", "caf\u00e9".encode())]


# --- decoding ----------------------------------------------------------------------------------

_request_fields = st.lists(
    st.tuples(
        st.sampled_from([b":method", b":path", b"content-length", b"x-a", b"x-b", b"cookie"]),
        st.sampled_from([b"POST", b"/mcp", b"12", b"13", b"v" * 200, b"w" * 900]),
    ),
    max_size=5,
)
# Each step: encode new fields, replay an earlier block as it was, or resize the sender's table.
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("encode"), _request_fields),
        st.tuples(st.just("replay"), st.integers(min_value=0, max_value=50)),
        st.tuples(st.just("resize"), st.sampled_from([0, 64, 256, 4096])),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_decoding_matches_hpack_for_any_sequence_of_blocks(steps: list[tuple[str, Any]]) -> None:
    encoder = hpack.Encoder()
    stock = hpack.Decoder()
    ours = RepeatBlockDecoder(stock.max_header_list_size, stock.max_allowed_table_size)
    sent: list[bytes] = []
    for kind, arg in steps:
        if kind == "resize":
            encoder.header_table_size = arg
            continue
        if kind == "encode":
            block = encoder.encode(arg)
        elif sent:
            block = sent[arg % len(sent)]
        else:
            continue
        sent.append(block)
        expected: Any
        try:
            expected = [tuple(h) for h in stock.decode(block, raw=True)]
        except hpack.HPACKError as err:
            expected = type(err)
        got: Any
        try:
            got = [tuple(h) for h in ours.decode(block, raw=True)]
        except hpack.HPACKError as err:
            got = type(err)
        assert got == expected
        assert list(ours.header_table.dynamic_entries) == list(stock.header_table.dynamic_entries)


def test_a_repeated_block_is_decoded_once_while_the_table_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = hpack.Encoder()
    fields = [(b":method", b"POST"), (b"x-tenant", b"alpha")]
    first = encoder.encode(fields)  # adds x-tenant to the table
    again = encoder.encode(fields)  # indexed only: leaves the table as it is
    decoder = RepeatBlockDecoder(65536, 4096)
    decoded = [decoder.decode(first, raw=True)]
    calls: list[bytes] = []
    real = hpack.Decoder.decode

    def counting(self: hpack.Decoder, data: bytes, raw: bool = False) -> Any:
        calls.append(bytes(data))
        return real(self, data, raw)

    monkeypatch.setattr(hpack.Decoder, "decode", counting)
    decoded += [decoder.decode(again, raw=True) for _ in range(3)]
    assert all(list(d) == fields for d in decoded)
    assert calls == [again]
    # A change to the table (a new entry) makes the kept result stale: decoded afresh.
    decoder.decode(hpack.Encoder().encode([(b"x-other", b"1")]), raw=True)
    decoder.decode(again, raw=True)
    assert calls.count(again) == 2
    # Blocks too large to keep are decoded every time (a never-indexed field leaves the
    # table as it is, so only the size stops it being kept).
    big = encoder.encode([hpack.NeverIndexedHeaderTuple(b"x-big", b"z" * BLOCK_MEMO_MAX_BYTES)])
    assert len(big) > BLOCK_MEMO_MAX_BYTES // 2
    bigger = big + big
    assert len(bigger) > BLOCK_MEMO_MAX_BYTES
    decoder.decode(bigger, raw=True)
    decoder.decode(bigger, raw=True)
    assert calls.count(bigger) == 2
    decoder.decode(big, raw=True)
    decoder.decode(big, raw=True)
    assert calls.count(big) == 1


def test_install_on_keeps_the_connections_limits() -> None:
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    connection.decoder.max_header_list_size = 1234
    install_on(connection)
    assert isinstance(connection.encoder, StaticTableEncoder)
    assert isinstance(connection.decoder, RepeatBlockDecoder)
    assert connection.decoder.max_header_list_size == 1234
    assert connection.decoder.max_allowed_table_size == 4096


async def test_the_box_replies_over_h2c_with_nothing_indexed() -> None:
    """End to end through Hypercorn with the guard installed: each reply carries its own
    request id and the client's decoder ends with an empty dynamic table."""
    h2_guard.install()
    served = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal served
        if scope["type"] != "http":
            return
        served += 1
        headers = [(b"content-type", b"application/json"), (b"x-request-id", b"%d" % served)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    async with serve_on_loopback(app) as base_url:
        h2c = await H2Client.open(base_url)
        port, reader, writer, client = h2c.port, h2c.reader, h2c.writer, h2c.conn
        replies: dict[int, dict[bytes, bytes]] = {}
        ended: set[int] = set()
        for stream_id in (1, 3, 5):
            client.send_headers(stream_id, h2_headers(port, "GET", b"/"), end_stream=True)
        writer.write(client.data_to_send())
        async with asyncio.timeout(PATIENCE_S):
            while len(ended) < 3:
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                for event in client.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        replies[event.stream_id] = {bytes(n): bytes(v) for n, v in event.headers}
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.add(event.stream_id)
                writer.write(client.data_to_send())
        writer.close()
    assert sorted(r[b"x-request-id"] for r in replies.values()) == [b"1", b"2", b"3"]
    assert all(r[b":status"] == b"200" for r in replies.values())
    assert len(client.decoder.header_table.dynamic_entries) == 0
