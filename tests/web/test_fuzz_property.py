"""Property tests over the HTTP and JSON-RPC layer: whatever bytes, header values and message
shapes a client sends to ``/t/<tenant>/mcp``, the box answers below 500, logs no traceback or
error, and every refusal it writes carries a JSON-RPC error (``jsonrpc`` "2.0", an integer
``code``, a string ``message``, and ``id`` null or the request's own).

The box is the real ``create_app`` under the real Hypercorn on loopback (tests/web/conftest.py's
``run_box``), run on its own event loop in a thread so that hypothesis drives plain socket
requests. Each example is one HTTP/1.1 request on a fresh connection. An empty-bodied 400/431
is the HTTP parser's refusal of a request line or header it cannot parse (llhttp, before any
box code), so it is checked for its status only. Bounded: derandomized, a few hundred examples
per property, well under a minute in all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smcp_box.web.mcp import TransportSettings
from tests.web.conftest import ALPHA_TOKEN, BETA_TOKEN, run_box
from tests.web.rawwire import assert_no_tracebacks

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
META = (
    f'"_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN}",'
    '"io.modelcontextprotocol/clientCapabilities":{}}'
)

PROPERTY = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    # ``box`` is per test on purpose: the log lines of all of a test's examples are checked
    # once, after it; the server itself is shared by the module.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@dataclass
class ThreadedBox:
    port: int
    session: str
    # Not in the repr: hypothesis prints the fixture with a failing example, and the records
    # of hundreds of examples made that repr big enough to raise a warning instead.
    records: list[logging.LogRecord] = field(repr=False)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.INFO)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def threaded_box() -> Iterator[ThreadedBox]:
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        settings_ = TransportSettings(max_body_bytes=64 * 1024, body_timeout_s=2.0)
        async for box in run_box(settings_):
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = asyncio.Event()
            state["url"] = box.url()
            ready.set()
            await state["stop"].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="property-box", daemon=True)
    thread.start()
    assert ready.wait(30), "the box did not start"
    assert "url" in state, "the box failed to start"
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        session = _initialize(state["url"])
        port = int(state["url"].split(":")[2].split("/")[0])
        yield ThreadedBox(port=port, session=session, records=records)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)


def _initialize(url: str) -> str:
    headers = {
        "Authorization": f"Bearer {ALPHA_TOKEN}",
        "Accept": ACCEPT,
        "Content-Type": "application/json",
    }
    params = {
        "protocolVersion": LEGACY,
        "capabilities": {},
        "clientInfo": {"name": "p", "version": "0"},
    }
    reply = httpx.post(
        url,
        headers=headers,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params},
    )
    assert reply.status_code == 200, reply.text
    session = reply.headers["mcp-session-id"]
    headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY})
    ack = httpx.post(
        url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert ack.status_code == 202
    return str(session)


@pytest.fixture
def box(threaded_box: ThreadedBox) -> Iterator[ThreadedBox]:
    """The shared box; the log lines this test caused are checked after it."""
    threaded_box.records.clear()
    yield threaded_box
    assert_no_tracebacks(threaded_box.records)


# -- one request over a socket ---------------------------------------------------------------


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes


def send(port: int, head: list[bytes], body: bytes, method: bytes = b"POST") -> Reply:
    lines = [method + b" /t/alpha/mcp HTTP/1.1", b"Connection: close", *head]
    lines.append(b"Content-Length: %d" % len(body))
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    top, _, rest = raw.partition(b"\r\n\r\n")
    lines_ = top.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines_[1:])
    }
    if headers.get("transfer-encoding") == "chunked":
        rest = _dechunk(rest)
    return Reply(int(lines_[0].split(" ")[1]), headers.get("content-type", ""), rest)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2 :]


def good_head(era: str, session: str, token: str = ALPHA_TOKEN) -> list[bytes]:
    head = [
        b"Host: 127.0.0.1",
        f"Authorization: Bearer {token}".encode(),
        f"Accept: {ACCEPT}".encode(),
        b"Content-Type: application/json",
    ]
    if era == "modern":
        head += [f"MCP-Protocol-Version: {MODERN}".encode(), b"Mcp-Method: tools/call"]
    else:
        head += [f"MCP-Protocol-Version: {LEGACY}".encode(), f"Mcp-Session-Id: {session}".encode()]
    return head


def strict_json(body: bytes) -> Any:
    """The reply as JSON, refusing what only Python reads (NaN, Infinity): the box must
    never write them."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"the box wrote {name}, which is not JSON: {body[:200]!r}")

    return json.loads(body.decode("utf-8"), parse_constant=refuse)


def assert_answer(reply: Reply, sent_id: object = None) -> None:
    """Below 500; a refusal from the box is a JSON-RPC error whose id is null or the sent id."""
    assert reply.status < 500, reply
    if reply.status < 400:
        return
    if not reply.body and reply.status in (400, 431):
        return  # the HTTP parser's refusal, before the box
    assert reply.content_type.startswith("application/json"), reply
    body = strict_json(reply.body)
    assert body["jsonrpc"] == "2.0"
    assert type(body["error"]["code"]) is int
    assert isinstance(body["error"]["message"], str)
    assert body["id"] is None or body["id"] == sent_id, (body, sent_id)


def assert_sse_or_json(reply: Reply, sent_id: object) -> None:
    """A 200 is JSON or SSE; a JSON one that is an error echoes the id (or says null)."""
    assert_answer(reply, sent_id)
    if reply.status == 200 and reply.content_type.startswith("application/json"):
        body = strict_json(reply.body)
        assert body["jsonrpc"] == "2.0"
        assert body.get("id") in (sent_id, None)


# -- strategies --------------------------------------------------------------------------------

#: JSON text fragments that have broken decoders and encoders: lone surrogate escapes,
#: non-finite and huge numbers, controls, deep nesting.
_ODD_SCALARS = st.sampled_from(
    [
        '"\\ud800"',
        '"\\udfff\\ud800"',
        '"\\ud83d\\ude00"',
        '"\\u0000"',
        "NaN",
        "-Infinity",
        "1e999",
        "9" * 5000,
        "-0",
        "1.5",
        "18446744073709551616",
        "null",
        "true",
        '"' + "a" * 3000 + '"',
        "[" * 3000 + "]" * 3000,
    ]
)
_SCALARS = st.one_of(
    _ODD_SCALARS,
    st.integers().map(str),
    st.text(max_size=20).map(json.dumps),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
)
JSON_TEXT = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(
            st.one_of(st.text(max_size=8).map(json.dumps), st.just('"\\ud800"')),
            inner,
            max_size=4,
        ).map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs.items()) + "}"),
    ),
    max_leaves=12,
)
METHODS = st.one_of(
    st.sampled_from(
        [
            "ping",
            "tools/list",
            "tools/call",
            "server/discover",
            "initialize",
            "resources/read",
            "logging/setLevel",
            "notifications/cancelled",
        ]
    ),
    st.text(max_size=12),
)
IDS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=10),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, object]:
    """A JSON-RPC-shaped body (some fields odd) and the id a reply may echo."""
    fields: list[str] = []
    version = draw(st.sampled_from(['"2.0"', '"2.0"', '"2.0"', '"1.0"', "2", "null"]))
    fields.append(f'"jsonrpc":{version}')
    has_id = draw(st.booleans())
    request_id: object = None
    if has_id:
        request_id = draw(IDS)
        fields.append(f'"id":{json.dumps(request_id)}')
    fields.append(f'"method":{json.dumps(draw(METHODS))}')
    if draw(st.booleans()):
        inner = draw(st.lists(JSON_TEXT, max_size=3))
        params = [META] + [f'"{key}":{value}' for key, value in zip("abc", inner, strict=False)]
        if draw(st.booleans()):
            params.append(f'"name":"echo","arguments":{draw(JSON_TEXT)}')
        fields.append('"params":{' + ",".join(params) + "}")
    order = draw(st.permutations(fields))
    echoable = (
        request_id
        if isinstance(request_id, int | str) and not isinstance(request_id, bool)
        else None
    )
    return ("{" + ",".join(order) + "}").encode(), echoable


HEADER_NAMES = [
    b"Host",
    b"Accept",
    b"Content-Type",
    b"MCP-Protocol-Version",
    b"Mcp-Session-Id",
    b"Origin",
    b"Authorization",
    b"Mcp-Method",
    b"Mcp-Name",
    b"Last-Event-ID",
    b"X-Request-Id",
]
HEADER_VALUES = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=30).map(lambda text: text.encode("utf-8")),
    st.sampled_from([b"..", b"x" * 300, b"\xed\xa0\x80", b"2026-07-28", b"*/*", b"null"]),
)


# -- properties --------------------------------------------------------------------------------


@PROPERTY
@given(body=st.binary(max_size=3000), era=st.sampled_from(["modern", "legacy"]))
# Bytes that happen to be a request with an id (hypothesis found these in the code's own
# constants): the refusal carries that id, as it should.
@example(body=b'{"jsonrpc":"2.0","id":1,"method":"p"}', era="modern")
@example(body=b'{"jsonrpc":"2.0","id":"x","method":"tools/list"}', era="legacy")
def test_any_body_bytes(box: ThreadedBox, body: bytes, era: str) -> None:
    assert_answer(send(box.port, good_head(era, box.session), body), id_in(body))


def id_in(body: bytes) -> object:
    """The id of the JSON-RPC request ``body`` spells, if it spells one (else None)."""
    try:
        message = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return message.get("id") if isinstance(message, dict) else None


@PROPERTY
@given(message=messages(), era=st.sampled_from(["modern", "legacy"]), keyed=st.booleans())
def test_any_message_shape(
    box: ThreadedBox, message: tuple[bytes, object], era: str, keyed: bool
) -> None:
    body, request_id = message
    token = ALPHA_TOKEN if keyed else BETA_TOKEN  # beta's key is refused on alpha
    assert_sse_or_json(send(box.port, good_head(era, box.session, token), body), request_id)


@PROPERTY
@given(
    replaced=st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, min_size=1, max_size=4),
    era=st.sampled_from(["modern", "legacy"]),
    method=st.sampled_from([b"POST", b"POST", b"GET", b"DELETE", b"PUT"]),
)
def test_any_header_values(
    box: ThreadedBox, replaced: dict[bytes, bytes], era: str, method: bytes
) -> None:
    head = [line for line in good_head(era, box.session) if line.split(b":", 1)[0] not in replaced]
    head += [name + b": " + value for name, value in replaced.items()]
    body = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{%s,"name":"echo"}}' % (
        META.encode()
    )
    reply = send(box.port, head, body if method == b"POST" else b"", method)
    if reply.status == 200 and reply.content_type.startswith("text/event-stream"):
        return  # a legacy GET stream or a streamed reply: answered, nothing to refuse
    assert_sse_or_json(reply, 7)
