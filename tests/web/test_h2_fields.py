"""web/h2_fields.py against h2's own checks: the same verdicts and the same lists sent."""

from __future__ import annotations

from typing import Any

import pytest
from h2.exceptions import ProtocolError
from h2.utilities import (
    HeaderValidationFlags,
    normalize_outbound_headers,
    validate_headers,
    validate_outbound_headers,
)
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hypothesis import given, settings
from hypothesis import strategies as st

from smcp_box.web.h2_fields import VALID_LISTS_KEPT, ReceivedLists, reply_fields

_RESPONSE = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=True, is_push_promise=False
)

_names = st.sampled_from(
    [
        b":status",
        b":path",
        b":method",
        b":scheme",
        b":authority",
        b":weird",
        b"te",
        b"TE",
        b"connection",
        b"Keep-Alive",
        b"Content-Type",
        b"authorization",
        b"Proxy-Authorization",
        b"cookie",
        b"host",
        b"x-a",
        b" x-b ",
        b"x c",
        b"X\x00",
        b" ",
    ]
)
_values = st.sampled_from(
    [b"200", b"trailers", b" Trailers ", b"gzip", b"short", b"c" * 25, b" padded ", b"", b"/"]
)
_field = st.tuples(_names, _values, st.sampled_from(["plain", "indexed", "never"]))


def _make(fields: list[tuple[bytes, bytes, str]]) -> list[Any]:
    kinds = {"plain": tuple, "indexed": HeaderTuple, "never": NeverIndexedHeaderTuple}
    made: list[Any] = []
    for name, value, kind in fields:
        made.append((name, value) if kind == "plain" else kinds[kind](name, value))
    return made


def _sent(fields: list[Any]) -> list[tuple[bytes, bytes, bool]]:
    return [
        (bytes(f[0]), bytes(f[1]), not (isinstance(f, HeaderTuple) and not f.indexable))
        for f in fields
    ]


def _h2_reply(fields: list[Any]) -> Any:
    try:
        normalised = normalize_outbound_headers(fields, _RESPONSE, False)
        return _sent(list(validate_outbound_headers(normalised, _RESPONSE)))
    except (ProtocolError, IndexError):  # h2 fails on a name that strips to nothing
        return "refused"


def _ours(fields: list[Any]) -> Any:
    try:
        return _sent(reply_fields(fields))
    except ProtocolError:
        return "refused"


@settings(max_examples=2000, deadline=None)
@given(st.lists(_field, max_size=8))
def test_reply_fields_match_h2_on_any_list(fields: list[tuple[bytes, bytes, str]]) -> None:
    made = _make(fields)
    assert _ours(made) == _h2_reply(made)


@settings(max_examples=200, deadline=None)
@given(st.lists(_field, max_size=6))
def test_reply_fields_match_h2_behind_a_status(fields: list[tuple[bytes, bytes, str]]) -> None:
    """Most random lists fail for want of ``:status``; these start with one, as replies do."""
    made = [(b":status", b"200"), *_make(fields)]
    assert _ours(made) == _h2_reply(made)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([(b":status", b"200"), (b"Content-Type", b" application/json ")], "kept"),
        ([(b":status", b"204"), (b"connection", b"close")], "dropped"),
        ([(b":status", b"200"), (b"te", b"gzip")], "refused"),
        ([(b"x-a", b"1"), (b":status", b"200")], "refused"),
        ([(b":status", b"200"), (b":path", b"/")], "refused"),
        ([(b"x-a", b"1")], "refused"),
    ],
)
def test_reply_fields_known_cases(fields: list[Any], expected: str) -> None:
    ours = _ours(fields)
    assert ours == _h2_reply(fields)
    if expected == "refused":
        assert ours == "refused"
    elif expected == "dropped":
        assert ours == [(b":status", b"204", True)]
    else:
        assert ours == [(b":status", b"200", True), (b"content-type", b"application/json", True)]


def test_credentials_and_short_cookies_are_never_indexed() -> None:
    sent = reply_fields(
        [(b":status", b"200"), (b"Authorization", b"x"), (b"cookie", b"a=1"), (b"x-a", b"1")]
    )
    assert [isinstance(f, NeverIndexedHeaderTuple) for f in sent] == [False, True, True, False]


_request_names = st.sampled_from(
    [b":method", b":path", b":scheme", b":authority", b":status", b"host", b"te", b"x-a", b"X-b"]
)
_request_values = st.sampled_from([b"GET", b"/", b"", b"http", b"h", b"trailers", b"a\nb"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_request_names, _request_values), max_size=7), st.booleans())
def test_received_lists_give_h2s_verdict_first_time_and_after(
    fields: list[tuple[bytes, bytes]], trailers: bool
) -> None:
    flags = HeaderValidationFlags(
        is_client=False, is_trailer=trailers, is_response_header=False, is_push_promise=False
    )
    try:
        list(validate_headers(fields, flags))
        h2_says = True
    except ProtocolError:
        h2_says = False
    lists = ReceivedLists()
    assert lists.valid(fields, trailers=trailers) is h2_says
    assert lists.valid(fields, trailers=trailers) is h2_says  # remembered or not, the same


def test_received_lists_forget_beyond_their_bound() -> None:
    lists = ReceivedLists()
    base = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"host", b"h")]
    for i in range(VALID_LISTS_KEPT * 3):
        assert lists.valid([*base, (b"x-n", str(i).encode())], trailers=False)
    assert len(lists._valid) <= VALID_LISTS_KEPT
    assert not lists.valid([*base, (b"X-Upper", b"1")], trailers=False)
    assert not lists.valid([*base[1:]], trailers=False)
