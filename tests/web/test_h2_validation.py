"""Received HTTP/2 header lists are validated once per distinct list (web/h2_guard.py).

The guard turns h2's own per-request validation off and runs h2's validator itself, keeping the
lists it accepted. Whatever a connection sent before, a list h2 refuses ends the connection with
GOAWAY(PROTOCOL_ERROR), as h2 ends it, and never reaches the application.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import h2.errors
import pytest

from smcp_box.web import h2_guard
from tests.support.serving import serve_on_loopback
from tests.web.rawwire import H2Conn, assert_no_tracebacks, h2_headers


def _good(port: int) -> list[tuple[bytes, bytes]]:
    return h2_headers(port, "GET", b"/ok", ("x-client", "probe"))


def _replace(fields: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> list[Any]:
    return [(n, value if n == name else v) for n, v in fields]


# Each: a request header list h2 refuses (RFC 9113 §8.2-8.3), made from the good one.
BAD_LISTS: dict[str, Any] = {
    "uppercase name": lambda f: [*f, (b"X-Upper", b"1")],
    "connection-specific header": lambda f: [*f, (b"connection", b"keep-alive")],
    "te other than trailers": lambda f: [*f, (b"te", b"gzip")],
    "no method": lambda f: [(n, v) for n, v in f if n != b":method"],
    "two paths": lambda f: [*f[:4], (b":path", b"/again"), *f[4:]],
    "empty path": lambda f: _replace(f, b":path", b""),
    "pseudo-header after a field": lambda f: [*f, (b":status", b"200")],
    "unknown pseudo-header": lambda f: [*f[:4], (b":tenant", b"x"), *f[4:]],
    "space in a name": lambda f: [*f, (b"x bad", b"1")],
    "newline in a value": lambda f: [*f, (b"x-bad", b"a\nb")],
    "value padded with spaces": lambda f: [*f, (b"x-bad", b" padded")],
}


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, list[str]]]:
    h2_guard.install()
    paths: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async with serve_on_loopback(app) as base_url:
        port = urlsplit(base_url).port
        assert port is not None
        yield port, paths


@pytest.mark.parametrize("case", sorted(BAD_LISTS))
@pytest.mark.parametrize("after_good", [False, True], ids=["first", "after-good-requests"])
async def test_a_refused_header_list_ends_the_connection_as_h2_does(
    served: tuple[int, list[str]], case: str, after_good: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    port, paths = served
    conn = await H2Conn.open(port)
    try:
        if after_good:
            for _ in range(3):  # the good list is now kept as valid
                stream = await conn.finished(await conn.start(_good(port)))
                assert stream.status == 200
        await conn.start(BAD_LISTS[case](_good(port)))
        assert await conn.until_closed() == h2.errors.ErrorCodes.PROTOCOL_ERROR
    finally:
        await conn.close()
    assert paths == ["/ok"] * (3 if after_good else 0)
    assert_no_tracebacks(caplog.records)


async def test_trailers_with_a_pseudo_header_end_the_connection(
    served: tuple[int, list[str]],
) -> None:
    port, _ = served
    conn = await H2Conn.open(port)
    try:
        stream_id = await conn.start(h2_headers(port, "POST", b"/ok"), b"body", end=False)
        conn.conn.send_headers(stream_id, [(b":path", b"/trailer")], end_stream=True)
        await conn.flush()
        assert await conn.until_closed() == h2.errors.ErrorCodes.PROTOCOL_ERROR
    finally:
        await conn.close()


async def test_repeated_and_varied_good_lists_are_all_served(
    served: tuple[int, list[str]],
) -> None:
    port, paths = served
    conn = await H2Conn.open(port)
    try:
        for i in range(40):  # more distinct lists than a connection keeps
            fields = [*h2_headers(port, "GET", b"/ok"), (b"x-n", str(i % 20).encode())]
            stream = await conn.finished(await conn.start(fields))
            assert stream.status == 200
        assert conn.terminated is None
    finally:
        await conn.close()
    assert len(paths) == 40
