"""Header lists into and out of the box's HTTP/2 connections, checked as h2 checks them at a
fraction of the cost.

h2 checks every header list it receives or sends with a chain of generators, one per rule, and
a Python loop over every byte of every received name: about 13 µs for a request's nine fields
and 7 µs for a reply's seven, on every request (issue 11's h2c profiles). The verdicts stay
h2's:

* :class:`ReceivedLists` runs h2's own validator on a received list, once per distinct list
  on a connection (a client's requests mostly repeat one list): a list h2 accepts is
  remembered, a refused one is refused every time.
* :func:`reply_fields` normalises and checks a reply's header list in one pass, by the rules
  h2 applies to a response (lower-case names, surrounding whitespace stripped,
  connection-specific fields dropped, credentials never indexed, ``TE`` only ``trailers``,
  pseudo-fields first, known, once each, ``:status`` present and no request-only one).
  tests/web/test_h2_fields.py checks it against h2's own pipeline on arbitrary lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from h2.exceptions import ProtocolError
from h2.utilities import HeaderValidationFlags, validate_headers
from hpack import HeaderTuple, NeverIndexedHeaderTuple

#: Distinct request header lists a connection remembers as valid.
VALID_LISTS_KEPT: Final = 16

_REQUEST_FLAGS: Final = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
)
_TRAILER_FLAGS: Final = HeaderValidationFlags(
    is_client=False, is_trailer=True, is_response_header=False, is_push_promise=False
)

# RFC 9113 §8.2.2 and §8.3, as h2 (4.x) spells them.
_CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
_PSEUDO: Final = frozenset(
    {b":method", b":scheme", b":authority", b":path", b":status", b":protocol"}
)
_REQUEST_ONLY: Final = frozenset({b":scheme", b":path", b":authority", b":method", b":protocol"})
_CREDENTIALS: Final = frozenset({b"authorization", b"proxy-authorization"})
#: h2 never indexes a ``cookie`` shorter than this (guessable by compression side channels).
_SHORT_COOKIE: Final = 20


class ReceivedLists:
    """One connection's received header lists, validated by h2 once per distinct list."""

    def __init__(self) -> None:
        self._valid: set[tuple[Any, ...]] = set()

    def valid(self, fields: Sequence[Any], *, trailers: bool) -> bool:
        if trailers:
            return _h2_accepts(fields, _TRAILER_FLAGS)  # rare: not worth remembering
        key = tuple(fields)
        if key in self._valid:
            return True
        if not _h2_accepts(fields, _REQUEST_FLAGS):
            return False
        if len(self._valid) >= VALID_LISTS_KEPT:
            self._valid.clear()
        self._valid.add(key)
        return True


def _h2_accepts(fields: Iterable[Any], flags: HeaderValidationFlags) -> bool:
    try:
        for _ in validate_headers(fields, flags):
            pass
    except ProtocolError:
        return False
    return True


def reply_fields(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A reply's header list as h2 would send it, or :class:`ProtocolError` where h2 refuses."""
    out: list[tuple[bytes, bytes]] = []
    pseudo: set[bytes] = set()
    regular = False
    for field in fields:
        name = field[0].lower().strip()
        value = field[1].strip()
        if name in _CONNECTION_SPECIFIC:
            continue  # h2 drops these from what it sends
        if not name:
            raise ProtocolError("A header field with an empty name")
        if name == b"te" and value.lower() != b"trailers":
            raise ProtocolError(f"Invalid value for TE header: {value!r}")
        if name[0] == 0x3A:  # ':'
            if name in pseudo or regular or name not in _PSEUDO:
                raise ProtocolError(f"Pseudo-header field out of place: {name!r}")
            pseudo.add(name)
        else:
            regular = True
        if (
            name in _CREDENTIALS
            or (name == b"cookie" and len(value) < _SHORT_COOKIE)
            or (isinstance(field, HeaderTuple) and not field.indexable)
        ):
            out.append(NeverIndexedHeaderTuple(name, value))
        else:
            out.append((name, value))
    if b":status" not in pseudo or pseudo & _REQUEST_ONLY:
        raise ProtocolError("A response needs :status and no request pseudo-header fields")
    return out
