"""Each input that gave a 5xx or a traceback under ``python -m bench.fuzz_http``, now answered
with the status and JSON-RPC error the spec gives, over the real Hypercorn on loopback, and
with nothing in the log but ordinary lines that encode as UTF-8."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import h2.errors
import pytest

from tests.web.conftest import ALPHA_TOKEN, BoxUnderTest
from tests.web.rawwire import H2Conn, assert_no_tracebacks, h2_headers, http1

ACCEPT = "application/json, text/event-stream"
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


def port_of(box: BoxUnderTest) -> int:
    port = urlsplit(box.base_url).port
    assert port is not None
    return port


def request_bytes(method: str, path: str, host: bytes, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + host, b"Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}".encode() for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_jsonrpc_refusal(body: Any, code: int) -> None:
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


@pytest.fixture(autouse=True)
def quiet_log(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level("INFO")
    yield
    assert_no_tracebacks(caplog.records)


# -- a Host werkzeug cannot bind (BadHost, then a 500 with a traceback) ------------------------


@pytest.mark.parametrize("host", [b"..", b"a..b", b"x" * 300, b"." + b"y" * 64 + b".lan"])
async def test_unbindable_host_is_400_with_a_jsonrpc_error(box: BoxUnderTest, host: bytes) -> None:
    raw = request_bytes(
        "POST",
        "/t/alpha/mcp",
        host,
        PING,
        Authorization=f"Bearer {ALPHA_TOKEN}",
        Accept=ACCEPT,
        Content_Type="application/json",
    )
    reply = await http1(port_of(box), raw)
    assert reply.status == 400
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert_jsonrpc_refusal(body, -32600)
    assert "Host" in body["error"]["message"]


async def test_unbindable_host_elsewhere_is_400_too(box: BoxUnderTest) -> None:
    for path in ("/healthz", "/", "/no/such/page"):
        reply = await http1(port_of(box), request_bytes("GET", path, b".."))
        assert reply.status == 400, path


async def test_odd_but_bindable_hosts_are_not_refused(box: BoxUnderTest) -> None:
    for host in (b"exa_mple", b"[::1]:80", b"caf\xc3\xa9.lan"):
        reply = await http1(port_of(box), request_bytes("GET", "/healthz", host))
        assert reply.status == 200, host


# -- a method no route takes, on the MCP endpoint (an HTML 405 before) -----------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "TRACE"])
async def test_other_methods_on_the_endpoint_get_a_jsonrpc_405(
    box: BoxUnderTest, method: str
) -> None:
    for path in ("/t/alpha/mcp", "/mcp"):
        raw = request_bytes(method, path, b"127.0.0.1", PING, Content_Type="application/json")
        reply = await http1(port_of(box), raw)
        assert reply.status == 405
        assert set(reply.headers["allow"].split(", ")) >= {"GET", "POST", "DELETE"}
        assert_jsonrpc_refusal(reply.json(), -32600)


async def test_a_405_off_the_endpoint_keeps_quarts_answer(box: BoxUnderTest) -> None:
    reply = await http1(port_of(box), request_bytes("PUT", "/healthz", b"127.0.0.1"))
    assert reply.status == 405
    assert "jsonrpc" not in reply.body.decode("utf-8", "replace")


# -- numbers beyond the double range (read as infinity, re-encoded as "Infinity") -------------


@pytest.mark.parametrize("number", [b"1e999", b"-1E400"])
async def test_overflowing_numbers_are_parse_errors(box: BoxUnderTest, number: bytes) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","x":%s}}'
    raw = request_bytes(
        "POST",
        "/t/alpha/mcp",
        b"127.0.0.1",
        body % number,
        Authorization=f"Bearer {ALPHA_TOKEN}",
        Accept=ACCEPT,
        Content_Type="application/json",
    )
    reply = await http1(port_of(box), raw)
    assert reply.status == 400
    assert_jsonrpc_refusal(reply.json(), -32700)


# -- HTTP/2: the two inputs Hypercorn's protocol died on (KeyError, UnicodeDecodeError) --------


async def test_h2_body_after_an_early_answer_is_reset_not_fatal(box: BoxUnderTest) -> None:
    """The box answers 401 before reading the body; the rest of the body then arrives for a
    stream Hypercorn had forgotten (``KeyError: 1`` killed the connection)."""
    port = port_of(box)
    conn = await H2Conn.open(port)
    try:
        headers = h2_headers(
            port, "POST", b"/t/alpha/mcp", ("accept", ACCEPT), ("content-type", "application/json")
        )
        first = await conn.start(headers, PING[:10], end=False)
        await conn.streams[first].answered.wait()
        assert conn.streams[first].status == 401
        await conn.send_data(first, PING[10:] * 50)
        stream = await conn.finished(first)
        assert stream.reset_code in (None, h2.errors.ErrorCodes.NO_ERROR)
        # The connection still serves: a whole request on a new stream is answered.
        second = await conn.start(
            [*headers, (b"authorization", f"Bearer {ALPHA_TOKEN}".encode())], PING
        )
        reply = await conn.finished(second)
        assert reply.status is not None
        assert reply.status < 500
        assert conn.terminated is None
    finally:
        await conn.close()


@pytest.mark.parametrize("field", [b":path", b":method"])
async def test_h2_non_ascii_request_line_is_400_on_its_stream(
    box: BoxUnderTest, field: bytes
) -> None:
    port = port_of(box)
    conn = await H2Conn.open(port)
    try:
        bad = [
            (name, b"/t/caf\xc3\xa9/mcp" if field == b":path" else b"G\xc3\x89T")
            if name == field
            else (name, value)
            for name, value in h2_headers(port, "GET", b"/healthz")
        ]
        stream = await conn.finished(await conn.start(bad))
        assert stream.status == 400
        healthy = await conn.finished(await conn.start(h2_headers(port, "GET", b"/healthz")))
        assert healthy.status == 200
        assert json.loads(healthy.body)["status"] == "ok"
    finally:
        await conn.close()
