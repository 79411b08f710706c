"""A row's content is spelled byte for byte as ``json.dumps`` spells it (rows already chained
must keep verifying), by the direct spelling of flat lists and the cached canonical encoder."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcp_box.store.audit import detail_json
from smcp_box.store.chain import ChainRow, spell_flat_list
from smcp_box.store.crypto import canonical_json


def _stdlib(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


_FLAT = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),  # control characters, quotes, backslashes, lone surrogates, astral planes
    st.booleans(),  # not spelled directly: json's own way
)


@given(st.lists(_FLAT, max_size=12))
def test_flat_lists_are_spelled_as_json_spells_them(values: list[Any]) -> None:
    assert spell_flat_list(values) == _stdlib(values)


@given(st.recursive(_FLAT, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_canonical_json_is_json_dumps(value: Any) -> None:
    assert canonical_json(value) == _stdlib(value)


_ANY = st.recursive(
    _FLAT | st.just(math.nan) | st.just(math.inf),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(st.dictionaries(st.text(), _ANY))
def test_a_detail_is_stored_as_json_reads_it(detail: dict[str, Any]) -> None:
    """orjson's spelling of a detail, or json's: the same value read back, keys sorted, one
    spelling per value, and json's own error for what json refuses (NaN, infinities)."""
    try:
        expected = canonical_json(detail)
    except ValueError:
        with pytest.raises(ValueError):
            detail_json(detail)
        return
    stored = detail_json(detail)
    assert json.loads(stored) == json.loads(expected)
    assert list(json.loads(stored)) == sorted(detail)
    assert detail_json(detail) == stored


def test_a_usual_detail_is_spelled_as_canonical_json() -> None:
    detail = {"tool": "echo", "request_id": "00000000000001e2", "receipt": {"wall_ms": 0.125}}
    assert detail_json(detail) == canonical_json(detail)
    assert detail_json({"wall_ms": 1e-05}) == '{"wall_ms":0.00001}'  # orjson's: still JSON


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_as_before(bad: float) -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        spell_flat_list([1, bad])


def test_a_rows_content_and_its_hash_copy() -> None:
    row = ChainRow(
        id=3, ts=1733572800.25, kind="event", event="tool.call", tenant="alpha", actor="key:k1",
        source_ip=None, outcome="ok", detail='{"tool":"echo"}', prev_hash=bytes(32), hash=b"",
        sig=None,
    )  # fmt: skip
    expected = _stdlib([3, 1733572800.25, "event", "tool.call", "alpha", "key:k1", None, "ok"])
    assert row.content() == (expected[:-1] + ',"{\\"tool\\":\\"echo\\"}"]').encode()
    hashed = row.with_hash(b"h" * 32)
    assert hashed.hash == b"h" * 32
    assert hashed == ChainRow(**{**row.__dict__, "hash": b"h" * 32})
