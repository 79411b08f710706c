"""The utils example tenant, tool by tool, through a plain wasmtime host."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random

import pytest
import wasmtime

from .harness import TENANTS, Host, Tenant, text_of

UTILS = TENANTS / "utils" / "utils.wasm"

# FIPS 180-4 / NIST example vectors and the usual edge lengths around the 55/56/64-byte padding
# boundaries; expected digests come from hashlib, an independent implementation.
SHA256_VECTORS = {
    "": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq": (
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    ),
}


def test_tools_are_listed(utils: Tenant) -> None:
    names = {t["name"] for t in utils.result("tools/list")["tools"]}
    assert names == {
        "echo",
        "hello",
        "hash",
        "base64_encode",
        "base64_decode",
        "now",
        "convert_units",
        "json_query",
        "count_primes",
        "log_demo",
    }


def test_capabilities_have_no_prompts(utils: Tenant) -> None:
    caps = utils.result("initialize")["capabilities"]
    assert set(caps) == {"tools", "resources"}
    assert utils.error("prompts/list")["code"] == -32601
    assert utils.error("completion/complete", {})["code"] == -32601


@pytest.mark.parametrize(
    "text", ["", "plain", 'quotes " \\ \n\t\r\b\f', "é ß 中文 😀🎉", "\x00\x01\x1f"]
)
def test_echo_round_trips_any_text(utils: Tenant, text: str) -> None:
    assert text_of(utils.tool("echo", {"text": text})) == text


def test_echo_requires_text(utils: Tenant) -> None:
    result = utils.tool("echo", {})
    assert result["isError"] is True
    assert "text" in text_of(result)
    result = utils.tool("echo", {"text": 5})
    assert result["isError"] is True
    assert "must be a string" in text_of(result)


def test_hello_uses_the_configured_greeting() -> None:
    tenant = Tenant(UTILS, Host(config={"greeting": "Servus"}))
    assert text_of(tenant.tool("hello", {"name": "Ada"})) == "Servus, Ada!"
    assert text_of(tenant.tool("hello")) == "Servus, world!"


def test_hello_without_config_falls_back() -> None:
    tenant = Tenant(UTILS, Host(config={}))
    assert text_of(tenant.tool("hello", {"name": "Bo"})) == "Hello, Bo!"


@pytest.mark.parametrize(("text", "digest"), SHA256_VECTORS.items())
def test_sha256_known_vectors(utils: Tenant, text: str, digest: str) -> None:
    result = utils.tool("hash", {"text": text})
    assert result["structuredContent"] == {"algorithm": "sha256", "hex": digest}
    assert json.loads(text_of(result)) == result["structuredContent"]


def test_sha256_million_a(utils: Tenant) -> None:
    result = utils.tool("hash", {"text": "a" * 1_000_000})
    assert result["structuredContent"]["hex"] == (
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    )


@pytest.mark.parametrize("algorithm", ["sha256", "sha1", "md5"])
def test_hashes_match_hashlib_at_every_padding_boundary(utils: Tenant, algorithm: str) -> None:
    rng = random.Random(algorithm)
    lengths = [*range(0, 130), 1000, 4095, 4096, 65537]
    for n in lengths:
        text = "".join(rng.choice("abcé😀\n") for _ in range(n))
        result = utils.tool("hash", {"text": text, "algorithm": algorithm})
        expected = hashlib.new(algorithm, text.encode()).hexdigest()
        assert result["structuredContent"]["hex"] == expected, (algorithm, n)


def test_hash_rejects_unknown_algorithm(utils: Tenant) -> None:
    result = utils.tool("hash", {"text": "x", "algorithm": "crc32"})
    assert result["isError"] is True
    assert "sha256, sha1, md5" in text_of(result)


@pytest.mark.parametrize("text", ["", "f", "fo", "foo", "foob", "fooba", "foobar", "é😀?>~"])
def test_base64_matches_the_stdlib(utils: Tenant, text: str) -> None:
    data = text.encode()
    assert text_of(utils.tool("base64_encode", {"text": text})) == base64.b64encode(data).decode()
    url = text_of(utils.tool("base64_encode", {"text": text, "url_safe": True}))
    assert url == base64.urlsafe_b64encode(data).decode()
    assert text_of(utils.tool("base64_decode", {"data": url})) == text
    assert text_of(utils.tool("base64_decode", {"data": url.rstrip("=")})) == text


def test_base64_decode_accepts_whitespace(utils: Tenant) -> None:
    assert (
        text_of(utils.tool("base64_decode", {"data": "aGVs\nbG8g\r\nd29y bGQ="})) == "hello world"
    )


def test_base64_decode_shows_binary_as_hex(utils: Tenant) -> None:
    data = base64.b64encode(b"\xff\x00\xfe").decode()
    result = utils.tool("base64_decode", {"data": data})
    assert result["isError"] is False
    assert text_of(result).endswith("hex: ff00fe")


@pytest.mark.parametrize("bad", ["a", "abcde", "ab!d", "ab=c", "a===", "YQ==YQ=="])
def test_base64_decode_rejects_invalid_input(utils: Tenant, bad: str) -> None:
    result = utils.tool("base64_decode", {"data": bad})
    assert result["isError"] is True
    assert text_of(result).startswith("invalid base64")


def iso_utc(ms: int) -> str:
    # Integer arithmetic: datetime.fromtimestamp(ms / 1000) can be off by a millisecond.
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    "ms",
    [
        0,
        1,
        999,
        86_399_999,
        951_782_400_000,
        4_107_542_400_000,
        1_764_086_645_123,
        253_402_300_799_999,
    ],
)
def test_now_formats_the_host_clock(ms: int) -> None:
    tenant = Tenant(UTILS, Host(now_ms=ms))
    result = tenant.tool("now")
    assert result["structuredContent"] == {"iso": iso_utc(ms), "unix_ms": ms}


def test_now_over_many_days() -> None:
    host = Host()
    tenant = Tenant(UTILS, host)
    rng = random.Random(7)
    for _ in range(300):
        host.now_ms = rng.randrange(0, 253_402_300_800_000)
        assert tenant.tool("now")["structuredContent"]["iso"] == iso_utc(host.now_ms)


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (1, "mi", "km", 1.609344),
        (10, "km", "m", 10_000),
        (12, "in", "ft", 1),
        (1, "nmi", "m", 1852),
        (1, "lb", "kg", 0.45359237),
        (16, "oz", "lb", 1),
        (212, "F", "C", 100),
        (-40, "celsius", "fahrenheit", -40),
        (0, "K", "C", -273.15),
        (37, "°C", "degF", 98.6),
        (1, "GiB", "MB", 1073.741824),
        (8, "bit", "B", 1),
        (1, "TB", "GiB", 931.3225746154785),
        (2.5, "KM", "Mi", 1.5534279805933202),
    ],
)
def test_convert_units(utils: Tenant, value: float, src: str, dst: str, expected: float) -> None:
    result = utils.tool("convert_units", {"value": value, "from": src, "to": dst})
    assert result["isError"] is False, result
    structured = result["structuredContent"]
    assert structured["result"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert structured["value"] == value
    assert result["content"][0]["text"].startswith(f"{value:g} ")


def test_convert_units_text_is_readable(utils: Tenant) -> None:
    result = utils.tool("convert_units", {"value": 1, "from": "mi", "to": "km"})
    assert result["content"][0]["text"] == "1 mi = 1.609344 km"


def test_convert_units_rejects_unknown_units(utils: Tenant) -> None:
    result = utils.tool("convert_units", {"value": 1, "from": "furlong", "to": "m"})
    assert result["isError"] is True
    message = text_of(result)
    assert "unknown unit 'furlong'" in message
    assert "length: m, km" in message


def test_convert_units_rejects_mismatched_categories(utils: Tenant) -> None:
    result = utils.tool("convert_units", {"value": 1, "from": "kg", "to": "m"})
    assert result["isError"] is True
    assert "kg (mass) to m (length)" in text_of(result)


def test_convert_units_rejects_below_absolute_zero(utils: Tenant) -> None:
    result = utils.tool("convert_units", {"value": -300, "from": "C", "to": "K"})
    assert result["isError"] is True
    assert "absolute zero" in text_of(result)


def test_convert_units_argument_errors(utils: Tenant) -> None:
    result = utils.tool("convert_units", {"value": "1", "from": "m", "to": "km"})
    assert result["isError"] is True
    assert "'value' must be a number" in text_of(result)
    result = utils.tool("convert_units", {"value": 1, "from": "m"})
    assert result["isError"] is True
    assert "missing required argument 'to'" in text_of(result)


DOC = {
    "a": {"b": [10, {"c": 'x"y'}, {"c": [1.5, None, True]}]},
    "key.with.dots": {"n": -1},
    "emoji😀": "yes",
    "dup": 1,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", DOC),
        ("$", DOC),
        ("a.b[0]", 10),
        ("$.a.b[1].c", 'x"y'),
        ("a.b[2].c", [1.5, None, True]),
        ("a.b[-1].c[2]", True),
        ('["key.with.dots"].n', -1),
        ("['emoji😀']", "yes"),
        ("a.b[2].c[1]", None),
    ],
)
def test_json_query_selects(utils: Tenant, path: str, expected: object) -> None:
    result = utils.tool("json_query", {"document": json.dumps(DOC), "path": path})
    assert result["isError"] is False, result
    assert json.loads(text_of(result)) == expected


def test_json_query_keeps_numbers_exactly(utils: Tenant) -> None:
    doc = '{"big": 123456789012345678901234567890, "f": 1.10}'
    assert text_of(utils.tool("json_query", {"document": doc, "path": "big"})) == (
        "123456789012345678901234567890"
    )
    assert text_of(utils.tool("json_query", {"document": doc, "path": "f"})) == "1.10"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("a.x", "no member 'x' at 'a.x'"),
        ("a.b[3]", "index 3 is out of range (the array has 3 elements)"),
        ("a.b[0].c", "cannot take a member of a number"),
        ("a[0]", "cannot index an object"),
        ("a..b", "empty member name"),
        ("a.b[x]", "expected [integer]"),
        ('a["b', "unterminated"),
    ],
)
def test_json_query_explains_bad_paths(utils: Tenant, path: str, fragment: str) -> None:
    result = utils.tool("json_query", {"document": json.dumps(DOC), "path": path})
    assert result["isError"] is True
    assert fragment in text_of(result)


def test_json_query_rejects_invalid_documents(utils: Tenant) -> None:
    result = utils.tool("json_query", {"document": '{"a": [1, 2,]}'})
    assert result["isError"] is True
    assert text_of(result).startswith("document is not valid JSON: ")


@pytest.mark.parametrize(
    ("n", "count"), [(0, 0), (1, 0), (2, 1), (10, 4), (100, 25), (7919, 1000), (1_000_000, 78498)]
)
def test_count_primes(utils: Tenant, n: int, count: int) -> None:
    assert utils.tool("count_primes", {"n": n})["structuredContent"] == {"n": n, "count": count}


def test_count_primes_reports_progress_with_the_callers_token() -> None:
    for token in ["tok-1", 17]:
        host = Host()
        tenant = Tenant(UTILS, host)
        result = tenant.tool("count_primes", {"n": 10_000_000}, _meta={"progressToken": token})
        assert result["structuredContent"]["count"] == 664_579
        progress = [n["params"] for n in host.notifications]
        assert [p["progress"] for p in progress] == list(range(1, 11))
        assert all(p["progressToken"] == token and p["total"] == 10 for p in progress)
        assert type(progress[0]["progressToken"]) is type(token)
        assert progress[-1]["message"] == "sieved up to 10000000"
        assert all(n["method"] == "notifications/progress" for n in host.notifications)


def test_count_primes_without_token_sends_no_progress() -> None:
    host = Host()
    Tenant(UTILS, host).tool("count_primes", {"n": 1000})
    assert host.notifications == []


def test_count_primes_caps_n(utils: Tenant) -> None:
    for n in [10_000_001, -1]:
        result = utils.tool("count_primes", {"n": n})
        assert result["isError"] is True
        assert "between 0 and 10000000" in text_of(result)


def test_count_primes_is_stopped_by_the_fuel_limit() -> None:
    """The long tool is what fuel limits are for: a small budget traps it mid-sieve."""
    tenant = Tenant(UTILS, Host(), fuel=50_000_000)
    with pytest.raises(wasmtime.Trap) as info:
        tenant.tool("count_primes", {"n": 10_000_000})
    assert info.value.trap_code == wasmtime.TrapCode.OUT_OF_FUEL


def test_count_primes_fits_the_default_fuel() -> None:
    tenant = Tenant(UTILS, Host(), fuel=2_000_000_000)
    tenant.tool("count_primes", {"n": 10_000_000})
    assert tenant.store.get_fuel() > 1_000_000_000


def test_log_demo_sends_every_level() -> None:
    host = Host()
    result = Tenant(UTILS, host).tool("log_demo", {"message": 'say "hi"\n'})
    assert result["isError"] is False
    levels = [n["params"]["level"] for n in host.notifications]
    assert levels == ["debug", "info", "notice", "warning", "error", "info"]
    assert all(n["method"] == "notifications/message" for n in host.notifications)
    assert all(n["params"]["logger"] == "utils.log_demo" for n in host.notifications)
    assert host.notifications[3]["params"]["data"] == 'warning: say "hi"\n'
    assert host.notifications[5]["params"]["data"] == {"event": "log_demo", "messages": 5}
    assert host.logs == [("info", "log_demo sent 6 log notifications")]


def test_units_resource(utils: Tenant) -> None:
    resources = utils.result("resources/list")["resources"]
    assert resources == [
        {
            "uri": "utils://units",
            "name": "units",
            "title": "Units for convert_units",
            "description": "Every unit name convert_units accepts, by category.",
            "mimeType": "text/plain",
        }
    ]
    contents = utils.result("resources/read", {"uri": "utils://units"})["contents"]
    assert contents[0]["mimeType"] == "text/plain"
    assert "temperature: C, F, K" in contents[0]["text"]
    missing = utils.error("resources/read", {"uri": "utils://nope"})
    assert missing["code"] == -32602
    assert missing["data"] == {"uri": "utils://nope"}
    assert utils.result("resources/templates/list") == {"resourceTemplates": []}
