from __future__ import annotations

import json
from typing import Any

import pytest

from smcp_box.errors import (
    BadModuleReply,
    FuelExhausted,
    InvalidRequest,
    ParseError,
)
from smcp_box.protocol.jsonrpc import (
    Notification,
    Request,
    Response,
    check_module_reply,
    decode_json,
    decode_json_text,
    encode_json,
    error_response,
    parse_message,
    parse_module_notification,
    request_id_of,
    result_response,
)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff", b"nan-ish", b"[" * 5000 + b"]" * 5000, b"1" * 5000],
    ids=["empty", "truncated", "not-utf8", "garbage", "too-deep", "int-too-long"],
)
def test_decode_json_parse_errors(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        decode_json(body)
    assert caught.value.jsonrpc_code == -32700
    assert caught.value.http_status == 400
    assert caught.value.message.startswith("Parse error")


def test_decode_json_ok() -> None:
    assert decode_json(b'{"a": [1, "\xc3\xa9"]}') == {"a": [1, "é"]}


def test_parse_request_notification_response() -> None:
    request = parse_message({"jsonrpc": "2.0", "id": "x", "method": "tools/list", "params": {}})
    assert request == Request(id="x", method="tools/list", params={}, raw=request.raw)
    note = parse_message({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert isinstance(note, Notification)
    assert note.params is None
    response = parse_message({"jsonrpc": "2.0", "id": 3, "result": {}})
    assert isinstance(response, Response)
    assert response.id == 3
    error = parse_message({"jsonrpc": "2.0", "id": None, "error": {"code": 1, "message": "m"}})
    assert isinstance(error, Response)
    assert error.id is None


@pytest.mark.parametrize(
    "decoded",
    [
        [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
        [],
        "ping",
        42,
        None,
        {"id": 1, "method": "ping"},
        {"jsonrpc": 2.0, "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.0, "method": "ping"},
        {"jsonrpc": "2.0", "id": [1], "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": ""},
        {"jsonrpc": "2.0", "id": 1, "method": None},
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1, 2]},
        {"jsonrpc": "2.0", "method": "n", "params": "x"},
        {"jsonrpc": "2.0", "id": 1},
    ],
)
def test_invalid_messages(decoded: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_message(decoded)
    assert caught.value.jsonrpc_code == -32600
    assert caught.value.http_status == 400


def test_batches_are_named_in_the_error() -> None:
    with pytest.raises(InvalidRequest, match="batches are not supported"):
        parse_message([{"jsonrpc": "2.0", "method": "a"}])


def test_request_id_of_is_best_effort() -> None:
    assert request_id_of({"id": 5, "method": "x"}) == 5
    assert request_id_of({"id": "a", "method": "x"}) == "a"
    assert request_id_of({"id": True, "method": "x"}) is None
    assert request_id_of({"id": 5, "result": {}}) is None
    assert request_id_of([1]) is None


def test_reply_builders() -> None:
    assert result_response(1, {"a": 1}) == {"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}
    err = error_response(None, FuelExhausted("Fuel exhausted", data={"fuel": 10}))
    assert err == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32051, "message": "Fuel exhausted", "data": {"fuel": 10}},
    }
    # id null must be on the wire, not dropped.
    assert '"id": null' in json.dumps(err)


def test_module_notifications() -> None:
    parsed = parse_module_notification('{"method": "notifications/progress"}')
    assert parsed == {"jsonrpc": "2.0", "method": "notifications/progress"}
    ok = '{"jsonrpc": "2.0", "method": "x", "params": {"a": 1}}'
    assert parse_module_notification(ok)["params"] == {"a": 1}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("x", "not valid JSON"),
        ("[]", "not a JSON object"),
        ('{"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage"}', "notification"),
        ('{"jsonrpc": "2.0", "method": ""}', "notification"),
        ('{"jsonrpc": "2.0", "method": 3}', "notification"),
        ('{"jsonrpc": "2.0", "method": "x", "params": []}', "params"),
    ],
)
def test_bad_module_notifications(text: str, complaint: str) -> None:
    with pytest.raises(BadModuleReply, match=complaint):
        parse_module_notification(text)


def test_check_module_reply() -> None:
    ok = check_module_reply({"jsonrpc": "2.0", "id": 1, "result": {"x": 1}, "extra": True}, 1)
    assert ok == {"jsonrpc": "2.0", "id": 1, "result": {"x": 1}}
    error = {"code": -32602, "message": "bad", "data": {"k": 1}}
    assert check_module_reply({"jsonrpc": "2.0", "id": "a", "error": error}, "a")["error"] == error


@pytest.mark.parametrize(
    "reply",
    [
        None,
        "text",
        {"jsonrpc": "2.0", "id": 2, "result": {}},
        {"jsonrpc": "2.0", "id": "1", "result": {}},
        {"jsonrpc": "2.0", "id": True, "result": {}},
        {"jsonrpc": "2.0", "id": 1, "result": []},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": 1}},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}},
    ],
)
def test_bad_module_replies(reply: Any) -> None:
    with pytest.raises(BadModuleReply) as caught:
        check_module_reply(reply, 1)
    assert caught.value.jsonrpc_code == -32054


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        "[Infinity]",
        '{"a": -Infinity}',
        '{"a": 1e999}',
        "[-1E400]",
        '["\\ud800"]',
        '{"\\uDFFF": 1}',
        '[["x\\udbff"]]',
    ],
)
def test_non_json_numbers_and_lone_surrogates_are_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        decode_json(text.encode())


def test_numbers_at_the_edges_of_the_double_range_decode() -> None:
    # Underflow rounds to zero and the largest double stays itself: only overflow is refused.
    assert decode_json(b"[1e-999, 1.7976931348623157e308, -0.0]") == [
        0.0,
        1.7976931348623157e308,
        0.0,
    ]


def test_surrogate_pairs_and_escaped_backslashes_decode() -> None:
    assert decode_json(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 1180591620717411303424}',  # 2**70: beyond 64 bits
        '{"id": -9223372036854775809}',  # one below i64
        '{"a": 12345678901234567890123}',
    ],
)
def test_integers_beyond_64_bits_stay_exact(text: str) -> None:
    # The fast decoder would read them as floats; the box keeps every integer exact.
    assert decode_json(text.encode()) == json.loads(text)
    assert decode_json_text(text) == json.loads(text)
    (value,) = json.loads(text).values()
    assert type(next(iter(decode_json(text.encode()).values()))) is int
    assert next(iter(decode_json(text.encode()).values())) == value


@pytest.mark.parametrize(
    "body",
    [b"\xef\xbb\xbf{}", b"[" * 2000 + b"]" * 2000, b'{"a":"\xed\xa0\x80"}', b"{'a': 1}"],
    ids=["bom", "deep", "encoded-surrogate", "single-quotes"],
)
def test_both_decoders_refuse_alike(body: bytes) -> None:
    with pytest.raises(ParseError):
        decode_json(body)


def test_decoding_agrees_with_the_standard_library() -> None:
    text = '{"a": [1, -0.5, 1e-7, 3.141592653589793, true, null, "\\u00e9\\ud83d\\ude00"], "b": {}}'
    assert decode_json(text.encode()) == json.loads(text)
    assert decode_json_text(text) == json.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        {"jsonrpc": "2.0", "id": 1, "result": {"text": "é \U0001f600", "n": 0.1}},
        {"id": 2**70},  # beyond what orjson writes
        {"text": "lone \ud800 surrogate"},  # not UTF-8 encodable as it is
        {1: "non-string key"},
        [[[[["deep"]]]]] * 3,
    ],
    ids=["plain", "big-int", "lone-surrogate", "int-key", "nested"],
)
def test_encode_json_is_always_valid_utf8_json(value: Any) -> None:
    encoded = encode_json(value)
    text = encoded.decode("utf-8")  # never raises: always valid UTF-8
    assert json.loads(text) == json.loads(json.dumps(value))
    assert b" " not in encoded.replace(b"lone \\ud800 surrogate", b"").replace(
        b"non-string key", b""
    ).replace(b"\xc3\xa9 ", b"")


def test_encode_json_of_a_structure_deeper_than_orjson_writes() -> None:
    deep: Any = "x"
    for _ in range(400):
        deep = [deep]
    assert json.loads(encode_json(deep)) == deep
