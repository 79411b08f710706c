"""Bad input over raw HTTP/1.1: each case gets the spec's HTTP status and JSON-RPC error code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.web.conftest import ALPHA_OTHER_TOKEN, ALPHA_TOKEN, BETA_TOKEN, BoxUnderTest
from tests.web.rawhttp import (
    MODERN,
    base_headers,
    initialize,
    modern,
    modern_meta,
    note,
    rpc,
    session_headers,
)


def assert_error(
    response: httpx.Response, status: int, code: int, request_id: Any = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert "id" in body
    assert body["id"] == request_id
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body  # type: ignore[no-any-return]


@pytest.fixture
async def session(box: BoxUnderTest, http: httpx.AsyncClient) -> str:
    return await initialize(http, box)


# -- body and framing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700),
        (b"\xff\xfe not utf-8", -32700),
        (b"[" * 20_000 + b"]" * 20_000, -32700),
        (json.dumps([rpc("ping"), rpc("ping", request_id=2)]).encode(), -32600),
        (json.dumps({"id": 1, "method": "ping"}).encode(), -32600),
        (json.dumps({"jsonrpc": "1.0", "id": 1, "method": "ping"}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": None, "method": "ping"}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": 1, "method": 7}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": 1}).encode(), -32600),
        (b'"just a string"', -32600),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "too-deep",
        "batch",
        "no-jsonrpc",
        "jsonrpc-1.0",
        "null-id",
        "float-id",
        "method-not-string",
        "params-array",
        "no-method-result-or-error",
        "not-an-object",
    ],
)
async def test_malformed_bodies(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, content: bytes, code: int
) -> None:
    for headers in (session_headers(session), base_headers(**{"MCP-Protocol-Version": MODERN})):
        response = await http.post(box.url(), headers=headers, content=content)
        assert_error(response, 400, code)


@pytest.mark.parametrize(
    "content",
    [
        b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping\\udfff"}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x\\uDBFF","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"\\udc00":1}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":NaN}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":-Infinity}}',
        b'{"jsonrpc":"2.0","id":Infinity,"method":"ping"}',
    ],
    ids=["id", "method", "param", "key", "nan", "minus-infinity", "infinite-id"],
)
async def test_lone_surrogates_and_non_finite_numbers_are_parse_errors(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, content: bytes
) -> None:
    """Regression: these raised UnicodeEncodeError or "Out of range float values are not JSON
    compliant" later on, and the client got a 500."""
    for headers in (session_headers(session), base_headers(**{"MCP-Protocol-Version": MODERN})):
        response = await http.post(box.url(), headers=headers, content=content)
        body = assert_error(response, 400, -32700)
        body["error"]["message"].encode("utf-8")  # what the box writes is valid UTF-8


async def test_a_surrogate_pair_and_an_escaped_backslash_are_fine(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    for request_id in (r"\ud83d\ude00", r"\\ud800"):
        content = b'{"jsonrpc":"2.0","id":"' + request_id.encode() + b'","method":"ping"}'
        response = await http.post(box.url(), headers=session_headers(session), content=content)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == json.loads(f'"{request_id}"')


@pytest.mark.parametrize(
    "accept",
    ["", "application/json", "text/event-stream", "text/html", "application/xml, text/plain"],
)
async def test_post_needs_both_media_types_accepted(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, accept: str
) -> None:
    headers = session_headers(session, Accept=accept)
    response = await http.post(box.url(), headers=headers, json=rpc("ping"))
    assert_error(response, 406, -32600)


@pytest.mark.parametrize(
    "accept", ["*/*", "application/*, text/*", "application/json;q=0.9, text/event-stream"]
)
async def test_wildcard_accept_is_enough(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, accept: str
) -> None:
    response = await http.post(
        box.url(), headers=session_headers(session, Accept=accept), json=rpc("ping")
    )
    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_post_needs_json_content_type(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, content_type: str | None
) -> None:
    headers = session_headers(session)
    del headers["Content-Type"]
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await http.post(box.url(), headers=headers, content=json.dumps(rpc("ping")))
    assert_error(response, 415, -32600)


async def test_json_content_type_with_charset_is_fine(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    headers = session_headers(session, **{"Content-Type": "application/json; charset=utf-8"})
    response = await http.post(box.url(), headers=headers, content=json.dumps(rpc("ping")))
    assert response.status_code == 200


async def test_oversize_body_declared(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    big = {**rpc("tools/call", {"name": "echo", "arguments": {"text": "x" * 70_000}})}
    response = await http.post(box.url(), headers=session_headers(session), json=big)
    assert_error(response, 413, -32600)


async def test_oversize_body_chunked(box: BoxUnderTest, session: str) -> None:
    """No Content-Length: the box stops reading at the limit and answers 413 at once.

    Raw socket, because an HTTP client that insists on sending the whole body before reading
    cannot see an early answer (the box closes the connection rather than drain the rest).
    """
    host, port = box.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{k}: {v}\r\n" for k, v in session_headers(session).items())
    start = f"POST /t/alpha/mcp HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
    writer.write(f"{start}{head}\r\n".encode())
    chunk = b"y" * 8192
    try:
        for _ in range(20):
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the box already answered and closed
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413")


# -- Origin, tenant, credentials ---------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://localhost.evil.example", "http://[::1"]
)
async def test_foreign_origin_is_forbidden(
    box: BoxUnderTest, http: httpx.AsyncClient, origin: str
) -> None:
    response = await http.post(box.url(), headers=base_headers(Origin=origin), json=rpc("ping"))
    assert_error(response, 403, -32600)


@pytest.mark.parametrize(
    "origin", ["http://localhost:6274", "http://127.0.0.1", "https://[::1]:8443"]
)
async def test_loopback_origins_are_allowed(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, origin: str
) -> None:
    response = await http.post(
        box.url(), headers=session_headers(session, Origin=origin), json=rpc("ping")
    )
    assert response.status_code == 200


async def test_unknown_and_disabled_tenants(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    assert_error(
        await http.post(box.url("nobody"), headers=base_headers(), json=rpc("ping")), 404, -32600
    )
    assert_error(
        await http.post(box.url("gamma"), headers=base_headers(), json=rpc("ping")), 503, -32055
    )


@pytest.mark.parametrize(
    ("token", "error_param"),
    [(None, None), ("not-a-real-token", "invalid_token"), (BETA_TOKEN, "invalid_token")],
)
async def test_credentials(
    box: BoxUnderTest, http: httpx.AsyncClient, token: str | None, error_param: str | None
) -> None:
    response = await http.post(box.url(), headers=base_headers(token), json=rpc("ping"))
    assert_error(response, 401, -32600)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="smcp-box"')
    assert (f'error="{error_param}"' in challenge) == (error_param is not None)
    if token is not None:
        assert token not in response.text
        assert token not in challenge
    row = (await box.audit_rows())[-1]
    assert row["event"] == "auth.failure"
    assert row["tenant"] == "alpha"
    assert row["outcome"] == "denied"
    assert token is None or token not in json.dumps(row)


async def test_auth_applies_to_get_and_delete(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    for method in ("GET", "DELETE"):
        headers = session_headers(session)
        del headers["Authorization"]
        response = await http.request(method, box.url(), headers=headers)
        assert_error(response, 401, -32600)


# -- legacy sessions ---------------------------------------------------------------------------


async def test_missing_unknown_and_ended_sessions(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    assert_error(
        await http.post(box.url(), headers=base_headers(), json=rpc("ping", request_id=5)),
        400,
        -32600,
        5,
    )
    unknown = session_headers("no-such-session")
    assert_error(await http.post(box.url(), headers=unknown, json=rpc("ping")), 404, -32600, 1)
    assert (await http.delete(box.url(), headers=session_headers(session))).status_code == 204
    for method in ("POST", "GET", "DELETE"):
        kwargs: dict[str, Any] = {"json": rpc("ping")} if method == "POST" else {}
        response = await http.request(method, box.url(), headers=session_headers(session), **kwargs)
        assert response.status_code == 404


async def test_session_belongs_to_its_opener(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    other = session_headers(session, Authorization=f"Bearer {ALPHA_OTHER_TOKEN}")
    assert_error(await http.post(box.url(), headers=other, json=rpc("ping")), 404, -32600, 1)
    mine = session_headers(session, Authorization=f"Bearer {ALPHA_TOKEN}")
    assert (await http.post(box.url(), headers=mine, json=rpc("ping"))).status_code == 200


@pytest.mark.parametrize("version", ["2025-06-18", "2025-03-26", "2024-11-05"])
async def test_other_served_versions_are_accepted_in_a_session(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, version: str
) -> None:
    response = await http.post(
        box.url(), headers=session_headers(session, version), json=rpc("ping")
    )
    assert response.status_code == 200


async def test_missing_version_header_uses_the_negotiated_one(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    response = await http.post(box.url(), headers=session_headers(session, None), json=rpc("ping"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "version", ["1900-01-01", "not-a-version", "2025-11-25x", "2026-07-28"[:7]]
)
async def test_unsupported_version_header(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str, version: str
) -> None:
    response = await http.post(
        box.url(), headers=session_headers(session, version), json=rpc("ping", request_id="a")
    )
    body = assert_error(response, 400, -32022, "a")
    assert body["error"]["data"]["requested"] == version
    assert "2026-07-28" in body["error"]["data"]["supported"]
    assert "2025-11-25" in body["error"]["data"]["supported"]
    get = await http.get(box.url(), headers=session_headers(session, version))
    assert_error(get, 400, -32022)


async def test_initialize_rules(box: BoxUnderTest, http: httpx.AsyncClient, session: str) -> None:
    init = rpc(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x"}},
    )
    response = await http.post(box.url(), headers=session_headers(session), json=init)
    assert_error(response, 400, -32600, 1)
    bad = rpc("initialize", {"capabilities": {}, "clientInfo": {"name": "x"}}, request_id=9)
    response = await http.post(box.url(), headers=base_headers(), json=bad)
    assert_error(response, 200, -32602, 9)
    assert "mcp-session-id" not in response.headers


async def test_legacy_methods_and_unknown_methods(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    headers = session_headers(session)
    # Unknown to the module: its own -32601, with 200 (a 404 means "session gone" in this era).
    assert_error(await http.post(box.url(), headers=headers, json=rpc("no/such")), 200, -32601, 1)
    # A 2026-07-28 method without its envelope, in a legacy session.
    assert_error(
        await http.post(box.url(), headers=headers, json=rpc("server/discover")), 200, -32601, 1
    )
    bad_level = rpc("logging/setLevel", {"level": "loud"}, request_id=3)
    assert_error(await http.post(box.url(), headers=headers, json=bad_level), 200, -32602, 3)


async def test_notifications_and_responses_get_202(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    for body in (
        note("notifications/roots/list_changed"),
        note("notifications/cancelled", {"requestId": 77}),
        {"jsonrpc": "2.0", "id": "srv-1", "result": {}},
    ):
        response = await http.post(box.url(), headers=session_headers(session), json=body)
        assert response.status_code == 202
        assert response.content == b""
    response = await http.post(
        box.url(),
        headers=base_headers(**{"MCP-Protocol-Version": MODERN}),
        json=note("notifications/cancelled"),
    )
    assert response.status_code == 202
    assert response.content == b""


# -- the 2026-07-28 envelope -------------------------------------------------------------------


async def test_modern_header_mismatches(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    call = {"name": "echo", "arguments": {"text": "x"}}

    headers, body = modern("tools/call", call, name="echo")
    headers["Mcp-Method"] = "tools/list"
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)

    headers, body = modern("tools/call", call, name="fuel")
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)

    headers, body = modern("tools/call", call)
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)

    headers, body = modern("tools/list")
    del headers["Mcp-Method"]
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)

    headers, body = modern(
        "tools/list", meta=modern_meta(**{"io.modelcontextprotocol/protocolVersion": "2025-11-25"})
    )
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)

    headers, body = modern("tools/list")
    lines = [*headers.items(), ("Mcp-Method", "tools/list")]
    assert_error(await http.post(box.url(), headers=lines, json=body), 400, -32020, 1)

    # A modern envelope without any version header selects the modern era and fails there.
    headers, body = modern("tools/list")
    del headers["MCP-Protocol-Version"]
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)


async def test_mcp_name_base64_sentinel(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    headers, body = modern(
        "tools/call", {"name": "echo", "arguments": {"text": "x"}}, name="=?base64?ZWNobw==?="
    )
    response = await http.post(box.url(), headers=headers, json=body)
    assert response.status_code == 200
    headers["Mcp-Name"] = "=?base64?ZWNobw?="  # not canonical base64
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32020, 1)


@pytest.mark.parametrize(
    "meta",
    [
        {},
        {"io.modelcontextprotocol/protocolVersion": MODERN},
        modern_meta(**{"io.modelcontextprotocol/clientCapabilities": "all"}),
        modern_meta(**{"io.modelcontextprotocol/clientInfo": "me"}),
        modern_meta(**{"io.modelcontextprotocol/logLevel": "loud"}),
    ],
)
async def test_modern_bad_meta(
    box: BoxUnderTest, http: httpx.AsyncClient, meta: dict[str, Any]
) -> None:
    headers, body = modern("tools/list", meta=meta)
    if not meta:
        del body["params"]["_meta"]
    assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32602, 1)


async def test_modern_unsupported_version(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    headers, body = modern(
        "tools/list", meta=modern_meta(**{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
    )
    headers["MCP-Protocol-Version"] = "2099-01-01"
    body_ = assert_error(await http.post(box.url(), headers=headers, json=body), 400, -32022, 1)
    # Only what server/discover advertises (the modern versions).
    assert body_["error"]["data"] == {"supported": ["2026-07-28"], "requested": "2099-01-01"}


async def test_modern_get_and_delete_are_405(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    for method in ("GET", "DELETE"):
        response = await http.request(
            method,
            box.url(),
            headers=base_headers(**{"MCP-Protocol-Version": MODERN, "Mcp-Session-Id": "x"}),
        )
        assert_error(response, 405, -32600)
        assert response.headers["allow"] == "POST"


async def test_modern_unknown_and_refused_methods(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    for method in ("no/such", "initialize", "ping", "logging/setLevel", "subscriptions/listen"):
        headers, body = modern(method)
        assert_error(await http.post(box.url(), headers=headers, json=body), 404, -32601, 1)


async def test_modern_rejects_posted_responses(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    response = await http.post(
        box.url(),
        headers=base_headers(**{"MCP-Protocol-Version": MODERN}),
        json={"jsonrpc": "2.0", "id": 4, "result": {}},
    )
    assert_error(response, 400, -32600)


async def test_other_http_methods(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    response = await http.put(box.url(), headers=base_headers(), json=rpc("ping"))
    assert response.status_code == 405


async def test_every_exchange_is_observed(
    box: BoxUnderTest, http: httpx.AsyncClient, session: str
) -> None:
    box.observer.observations.clear()
    await http.post(box.url(), headers=session_headers(session), json=rpc("ping"))
    await http.post(box.url("nobody"), headers=base_headers(), json=rpc("ping"))
    await http.post(box.url(), headers=base_headers(None), json=rpc("ping"))
    await http.post(box.url(), headers=session_headers(session), json=rpc("made/up/method"))
    await http.post(
        box.url(), headers=session_headers(session), json=rpc("tools/call", {"name": "fuel"}, 2)
    )
    tenants_methods_errors = [(t, m, e) for t, m, _, e in box.observer.observations]
    assert tenants_methods_errors == [
        ("alpha", "ping", None),
        ("(unknown)", "none", "transport"),
        ("alpha", "none", "auth"),
        ("alpha", "other", "rpc_error"),
        ("alpha", "tools/call", "fuel"),
    ]


async def test_rejected_posts_keep_keep_alive_clients_working(box: BoxUnderTest) -> None:
    """A POST refused before its body is read (here: a bad key) leaves the connection unusable
    for HTTP/1.1, so the answer must say Connection: close; a client that reused it raced the
    server's close and lost its next request ("Server disconnected", seen in CI)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 20_000}}
        # Fewer rounds than [quotas] auth_failures_per_ip (30), past which this address would
        # be locked out (tests/web/test_quotas.py).
        for _ in range(20):
            refused = await client.post(box.url(), headers=base_headers("not-a-key"), json=body)
            assert refused.status_code == 401
            assert refused.headers.get("connection") == "close"
            ok = await client.post(box.url(), headers=base_headers(ALPHA_TOKEN), json=rpc("ping"))
            assert ok.status_code in (200, 400)
