"""The C SDK itself, through the sdk_probe fixture tenant built from tests/tenants/fixtures."""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import Host, Tenant, build, text_of

PROBE = Path(__file__).parent / "fixtures" / "sdk_probe.c"

VALID_JSON = [
    "0",
    "-0",
    "1.5e-3",
    "1E+2",
    '"\\u0000 nul"',
    '"\\/\\b\\f\\n\\r\\t"',
    '"\\ud83d\\ude00"',
    ' [ 1 , { "a" : [ ] } , null , true , false ] ',
    '{"": {"": ""}}',
    '"' + "é" * 1000 + '"',
    "[" * 64 + "]" * 64,
    '{"a": 1, "a": 2}',
]

INVALID_JSON = {
    "": "unexpected end of input",
    "[1,]": "expected a JSON value",
    "[1 2]": "expected ',' or ']'",
    '{"a" 1}': "expected ':'",
    "{a: 1}": "expected a member name",
    "01": "unexpected text after the JSON value",
    "1.": "digits must follow '.'",
    "1e": "digits must follow the exponent",
    "-": "invalid number",
    "+1": "expected a JSON value",
    "tru": "unexpected character",
    "NaN": "expected a JSON value",
    '"abc': "unterminated string",
    '"\t"': "control character",
    '"\\q"': "invalid escape",
    '"\\u12g4"': "needs 4 hex digits",
    '"\\ud800"': "lone high surrogate",
    '"\\ud800\\u0041"': "lone high surrogate",
    '"\\udc00"': "lone low surrogate",
    "[" * 65 + "]" * 65: "nesting too deep",
    "// comment\n1": "expected a JSON value",
}


def test_valid_json_round_trips(probe: Tenant) -> None:
    for text in VALID_JSON:
        result = probe.tool("parse", {"json": text})
        assert result["isError"] is False, (text, result)
        assert json.loads(text_of(result)) == json.loads(text)


def test_numbers_are_copied_verbatim_on_dump(probe: Tenant) -> None:
    dumped = text_of(probe.tool("parse", {"json": "[1.50, 1E+2, -0, 12345678901234567890123]"}))
    assert dumped == "[1.50,1E+2,-0,12345678901234567890123]"


@pytest.mark.parametrize(("text", "message"), INVALID_JSON.items())
def test_invalid_json_is_rejected_with_a_reason(probe: Tenant, text: str, message: str) -> None:
    result = probe.tool("parse", {"json": text})
    assert result["isError"] is True, text
    assert message in text_of(result)
    assert " at byte " in text_of(result)


def test_invalid_utf8_inside_strings_is_rejected(probe: Tenant) -> None:
    for bad in [
        b"\xff",
        b"\xc3",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
    ]:
        raw = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + bad + b'"}}'
        reply = json.loads(probe.call_raw(raw))
        assert reply["error"]["code"] == -32700, bad
        assert "UTF-8" in reply["error"]["message"]


def test_duplicate_members_last_one_wins(probe: Tenant) -> None:
    result = probe.tool("get", {"json": '{"k": 1, "k": "two"}', "key": "k"})
    assert result["structuredContent"] == {"value": "two", "raw": '"two"', "present": True}
    missing = probe.tool("get", {"json": '{"k": 1}', "key": "x"})
    assert missing["structuredContent"] == {"value": None, "raw": None, "present": False}


def test_raw_spans_are_exact(probe: Tenant) -> None:
    doc = '{"k": "a\\u00e9\\n" , "n": 1.0e1, "o": { "x" : [1, 2] }}'
    for key, raw in [("k", '"a\\u00e9\\n"'), ("n", "1.0e1"), ("o", '{ "x" : [1, 2] }')]:
        assert probe.tool("get", {"json": doc, "key": key})["structuredContent"]["raw"] == raw


def test_int_accessor(probe: Tenant) -> None:
    values = (
        "[0, -1, 9223372036854775807, -9223372036854775808, 9223372036854775808,"
        " 3.0, 3.5, 1e2, 1e30, -0]"
    )
    items = probe.tool("numbers", {"json": values})["structuredContent"]["items"]
    assert [i["int"] for i in items] == [
        0,
        -1,
        9223372036854775807,
        -9223372036854775808,
        None,
        3,
        None,
        100,
        None,
        0,
    ]


def random_doubles(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    out: list[float] = []
    while len(out) < count:
        v = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(v):
            out.append(v)
        out.append(rng.uniform(-1e6, 1e6))
        out.append(rng.randint(-(10**17), 10**17) / 10 ** rng.randint(0, 30))
    return out


def test_doubles_are_written_shortest_and_round_trip(probe: Tenant) -> None:
    special = [0.1, 0.3, 1 / 3, 0.1 + 0.2, 1e21, 1e-7, 5e-324, 2.5e-320, 1.7976931348623157e308]
    values = special + random_doubles(3000, 1)
    items = probe.tool("numbers", {"json": json.dumps(values)})["structuredContent"]["items"]
    for value, item in zip(values, items, strict=True):
        assert float(item["double"]) == value, (value, item)

        # same significant digits as Python's shortest repr
        def digits(s: str) -> str:
            return s.lower().split("e")[0].replace("-", "").replace(".", "").strip("0")

        assert digits(item["double"]) == digits(repr(value)), (value, item)
    assert [i["double"] for i in items[: len(special)]] == [
        "0.1",
        "0.3",
        "0.3333333333333333",
        "0.30000000000000004",
        "1e+21",
        "1e-7",
        "5e-324",
        "2.5e-320",
        "1.7976931348623157e+308",
    ]
    big = probe.tool("numbers", {"json": "[1e20, 123456.5, -2.5e-6, 100]"})["structuredContent"]
    assert [i["double"] for i in big["items"]] == [
        "100000000000000000000",
        "123456.5",
        "-0.0000025",
        "100",
    ]


def test_number_parsing_is_correctly_rounded(probe: Tenant) -> None:
    rng = random.Random(3)
    literals = [
        "2.2250738585072011e-308",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "1e400",
        "1e-400",
        "5.17388767487914015981588e122",
        "9007199254740993",
        "0.1000000000000000055511151231257827021181583404541015625",
    ]
    for _ in range(1500):
        digits = str(rng.randint(1, 10 ** rng.randint(1, 30)))
        literals.append(f"{digits[0]}.{digits[1:] or '0'}e{rng.randint(-330, 310)}")
    items = probe.tool("numbers", {"json": "[" + ",".join(literals) + "]"})["structuredContent"]
    for literal, item in zip(literals, items["items"], strict=True):
        expected = float(literal)
        got = float(item["double"]) if item["double"] != "null" else math.inf
        assert got == expected, (literal, item)


def test_writer_replaces_invalid_utf8(probe: Tenant) -> None:
    result = probe.tool("bytes", {"hex": "61ff62c3a963e282"})
    assert text_of(result) == "a\ufffdbéc\ufffd\ufffd"


def test_writer_escapes_control_characters(probe: Tenant) -> None:
    result = probe.call_raw(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "bytes", "arguments": {"hex": "00011f7f22085c"}},
            }
        ).encode()
    )
    assert b'"\\u0000\\u0001\\u001f\x7f\\"\\b\\\\"' in result


def test_error_after_partial_result_replaces_it(probe: Tenant) -> None:
    reply = probe.request("tools/call", {"name": "partial_then_error"})
    assert reply == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32042, "message": "replaced by an error"},
    }


def test_result_writer_is_refused_once_a_tool_result_started(probe: Tenant) -> None:
    assert text_of(probe.tool("misuse")) == "fine so far" + "smcp_result refused"


def test_a_tool_that_answers_nothing_is_a_tenant_bug(probe: Tenant) -> None:
    error = probe.error("tools/call", {"name": "silent"})
    assert error["code"] == -32603
    assert "returned no result" in error["message"]


def test_writer_misuse_never_reaches_the_wire(probe: Tenant) -> None:
    error = probe.error("probe/broken")
    assert error["code"] == -32603
    assert "malformed JSON" in error["message"]


def test_custom_methods_via_on_request(probe: Tenant) -> None:
    params = {"a": [1, "x", None], "b": {"c": 1.25}}
    assert probe.result("probe/echo", params) == params
    assert probe.error("probe/unknown")["code"] == -32601


def test_notifications_reach_on_notification(probe: Tenant) -> None:
    assert text_of(probe.tool("last_notification")) == "none"
    raw = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    assert probe.call_raw(raw) == b""
    assert text_of(probe.tool("last_notification")) == "notifications/initialized"


def test_invalid_schema_is_reported_not_sent(tmp_path: Path) -> None:
    out = tmp_path / "bad.wasm"
    build(["-DPROBE_BAD_SCHEMA", PROBE], out)
    error = Tenant(out).error("tools/list")
    assert error["code"] == -32603
    assert "tool 'bad_schema' has an invalid inputSchema" in error["message"]


def test_out_of_memory_is_an_internal_error(make_probe: Callable[..., Tenant]) -> None:
    tenant = make_probe(memory_limit=4 << 20)
    error = tenant.error("tools/call", {"name": "alloc", "arguments": {"mib": 8}})
    assert error["code"] == -32603
    assert "out of memory" in error["message"]
    # the instance stays usable: the next message starts with an empty arena
    assert text_of(tenant.tool("alloc", {"mib": 1})) == "allocated"


def test_out_of_memory_reply_keeps_the_id(make_probe: Callable[..., Tenant]) -> None:
    tenant = make_probe(memory_limit=4 << 20)
    for message_id, echoed in [("x" * 500, "x" * 500), ("y" * 600, None)]:
        message = {
            "jsonrpc": "2.0",
            "id": message_id,
            "method": "tools/call",
            "params": {"name": "alloc", "arguments": {"mib": 8}},
        }
        reply = json.loads(tenant.call_raw(json.dumps(message).encode()))
        assert reply["error"]["code"] == -32603
        assert reply["id"] == echoed  # ids over 512 bytes do not fit the static reply


def test_smcp_alloc_returns_zero_past_the_memory_limit(make_probe: Callable[..., Tenant]) -> None:
    tenant = make_probe(memory_limit=2 << 20)
    assert tenant._alloc(tenant.store, 8 << 20) == 0
    assert tenant._alloc(tenant.store, -1) == 0
    assert tenant._alloc(tenant.store, 0) != 0


def test_arena_resets_between_messages(probe: Tenant) -> None:
    first = int(text_of(probe.tool("arena")))
    probe.tool("parse", {"json": json.dumps(list(range(20000)))})
    assert int(text_of(probe.tool("arena"))) == first


def test_host_buffers_are_nul_terminated_copies(probe: Tenant) -> None:
    probe.host.kv["k"] = "value é"
    probe.host.config["c"] = "conf"
    assert text_of(probe.tool("kv", {"op": "get", "key": "k"})) == "value é"
    assert text_of(probe.tool("kv", {"op": "config", "key": "c"})) == "conf"
    assert text_of(probe.tool("kv", {"op": "get", "key": "absent"})) == "absent"
    assert text_of(probe.tool("kv", {"op": "config", "key": "absent"})) == "absent"
    probe.host.kv["empty"] = ""
    assert text_of(probe.tool("kv", {"op": "get", "key": "empty"})) == ""


def test_kv_wrappers(make_probe: Callable[..., Tenant]) -> None:
    host = Host()
    tenant = make_probe(host=host)
    assert text_of(tenant.tool("kv", {"op": "set", "key": "a/1", "value": "x"})) == "rc=0 ok"
    tenant.tool("kv", {"op": "set", "key": "a/2", "value": "y"})
    tenant.tool("kv", {"op": "set", "key": "b", "value": "z"})
    assert json.loads(text_of(tenant.tool("kv", {"op": "list", "key": "a/"}))) == ["a/1", "a/2"]
    assert json.loads(text_of(tenant.tool("kv", {"op": "list", "key": "none"}))) == []
    assert text_of(tenant.tool("kv", {"op": "delete", "key": "a/1"})) == "rc=0 ok"
    assert text_of(tenant.tool("kv", {"op": "delete", "key": "a/1"})) == "rc=0 ok"
    assert host.kv == {"a/2": "y", "b": "z"}
    host.kv_quota_bytes = 10
    quota = text_of(tenant.tool("kv", {"op": "set", "key": "big", "value": "v" * 20}))
    assert quota.startswith("rc=-1 the tenant's storage quota is exhausted")
    host.kv_fail = True
    assert text_of(tenant.tool("kv", {"op": "set", "key": "b", "value": "q"})).startswith("rc=-2")
    assert text_of(tenant.tool("kv", {"op": "delete", "key": "b"})).startswith("rc=-2")


def test_probe_imports_only_what_it_uses(probe_wasm: bytes) -> None:
    import wasmtime

    module = wasmtime.Module(wasmtime.Engine(), probe_wasm)
    assert {i.name for i in module.imports} == {
        "config_get",
        "kv_get",
        "kv_set",
        "kv_delete",
        "kv_list",
    }


def test_empty_message_without_alloc_starts_a_fresh_message(probe: Tenant) -> None:
    """The box passes (0, 0) for an empty message without calling smcp_alloc (ABI 2.5)."""
    baseline = int(text_of(probe.tool("arena")))
    for _ in range(500):
        packed = probe._handle(probe.store, 0, 0) % (1 << 64)
        ptr, length = packed >> 32, packed & 0xFFFFFFFF
        reply = json.loads(bytes(probe.memory.read(probe.store, ptr, ptr + length)))
        assert reply["error"]["code"] == -32700
    assert int(text_of(probe.tool("arena"))) == baseline
