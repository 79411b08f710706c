"""``/mcp`` served by the tenant whose tenant.toml ``hosts`` names the request's Host, in both
eras, with the official SDK client; Origin on a tenant's own hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from smcp_box.web.mcp import TransportSettings
from tests.web.conftest import ALPHA_TOKEN, BETA_TOKEN, BoxUnderTest, run_box
from tests.web.rawhttp import base_headers, modern, note, rpc, session_headers

HOSTS = {"alpha.box.lan": "alpha", "mcp.alpha.example": "alpha", "gamma.box.lan": "gamma"}


@pytest.fixture
async def hbox() -> AsyncIterator[BoxUnderTest]:
    settings = TransportSettings(sse_keepalive_s=0.5, max_body_bytes=64 * 1024)
    async for running in run_box(settings, hosts=HOSTS):
        yield running


def host_url(box: BoxUnderTest) -> str:
    return f"{box.base_url}/mcp"


def assert_jsonrpc_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["code"] == code
    return body


@pytest.mark.parametrize(
    "host", ["alpha.box.lan", "ALPHA.box.lan:8443", "alpha.box.lan.", "mcp.alpha.example"]
)
async def test_modern_request_is_served_by_the_hosts_tenant(
    hbox: BoxUnderTest, http: httpx.AsyncClient, host: str
) -> None:
    headers, body = modern("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, name="echo")
    response = await http.post(host_url(hbox), headers={**headers, "Host": host}, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["content"][0]["text"] == "hi"
    (_message, ctx), *_ = hbox.alpha.calls
    assert ctx.tenant == "alpha"
    assert hbox.beta.calls == []


async def test_legacy_session_at_the_host_is_the_tenants_session(
    hbox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    host = {"Host": "alpha.box.lan"}
    response = await http.post(
        host_url(hbox),
        headers=base_headers(**host),
        json=rpc(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        ),
    )
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    assert (await hbox.session(session_id)).tenant == "alpha"
    ack = await http.post(
        host_url(hbox),
        headers=session_headers(session_id, **host),
        json=note("notifications/initialized"),
    )
    assert ack.status_code == 202
    ping = await http.post(
        host_url(hbox), headers=session_headers(session_id, **host), json=rpc("ping", request_id=7)
    )
    assert ping.status_code == 200
    assert ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    # One tenant, two addresses: the path form reaches the same session.
    by_path = await http.post(
        hbox.url("alpha"), headers=session_headers(session_id), json=rpc("ping", request_id=8)
    )
    assert by_path.json() == {"jsonrpc": "2.0", "id": 8, "result": {}}
    # The host's tenant is alpha: beta's path does not know alpha's session.
    elsewhere = await http.post(
        hbox.url("beta"),
        headers=session_headers(session_id, Authorization=f"Bearer {BETA_TOKEN}"),
        json=rpc("ping", request_id=9),
    )
    assert elsewhere.status_code == 404
    ended = await http.delete(host_url(hbox), headers=session_headers(session_id, **host))
    assert ended.status_code in (200, 204)
    assert (await hbox.session(session_id)).ended


async def test_get_stream_and_modern_get_at_the_host(
    hbox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers = {"Host": "alpha.box.lan", "Accept": "text/event-stream"}
    response = await http.get(
        host_url(hbox),
        headers={
            **headers,
            "Authorization": f"Bearer {ALPHA_TOKEN}",
            "MCP-Protocol-Version": "2026-07-28",
        },
    )
    assert_jsonrpc_error(response, 405, -32600)
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "host", ["nobody.box.lan", "127.0.0.1", "", "alpha.box.lan:bad", "u@alpha.box.lan"]
)
async def test_unknown_host_is_404_naming_nothing(
    hbox: BoxUnderTest, http: httpx.AsyncClient, host: str
) -> None:
    headers, body = modern("server/discover")
    response = await http.post(host_url(hbox), headers={**headers, "Host": host}, json=body)
    text = response.text
    assert_jsonrpc_error(response, 404, -32600)
    for secret in ("alpha", "beta", "gamma", "nobody", ALPHA_TOKEN):
        assert secret not in text
    assert hbox.alpha.calls == []


async def test_disabled_tenant_at_its_host_is_503(
    hbox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = modern("server/discover")
    response = await http.post(
        host_url(hbox), headers={**headers, "Host": "gamma.box.lan"}, json=body
    )
    assert_jsonrpc_error(response, 503, -32055)


async def test_the_hosts_tenant_still_checks_credentials(
    hbox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = modern("server/discover")
    response = await http.post(
        host_url(hbox),
        headers={**headers, "Host": "alpha.box.lan", "Authorization": f"Bearer {BETA_TOKEN}"},
        json=body,
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    rows = await hbox.audit_rows()
    assert rows[-1]["event"] == "auth.failure"
    assert rows[-1]["tenant"] == "alpha"


# -- Origin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["https://alpha.box.lan", "https://alpha.box.lan:8443", "https://mcp.alpha.example/"]
)
@pytest.mark.parametrize("by", ["host", "path"])
async def test_a_tenants_own_https_hosts_are_allowed_origins(
    hbox: BoxUnderTest, http: httpx.AsyncClient, origin: str, by: str
) -> None:
    headers, body = modern("server/discover")
    headers = {**headers, "Origin": origin}
    if by == "host":
        response = await http.post(
            host_url(hbox), headers={**headers, "Host": "alpha.box.lan"}, json=body
        )
    else:
        response = await http.post(hbox.url("alpha"), headers=headers, json=body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("origin", "tenant_host", "path", "token"),
    [
        # Another tenant's host is not this tenant's origin.
        ("https://alpha.box.lan", None, "beta", BETA_TOKEN),
        # Plain http on the name is left to allowed_origins.
        ("http://alpha.box.lan", "alpha.box.lan", None, ALPHA_TOKEN),
        ("https://evil.example", "alpha.box.lan", None, ALPHA_TOKEN),
        ("https://alpha.box.lan.evil.example", "alpha.box.lan", None, ALPHA_TOKEN),
        ("https://alpha.box.lan/page", "alpha.box.lan", None, ALPHA_TOKEN),
        # An unknown host with a foreign Origin: the Origin is refused first, as at /t/.
        ("https://nobody.box.lan", "nobody.box.lan", None, ALPHA_TOKEN),
    ],
)
async def test_other_origins_are_forbidden(
    hbox: BoxUnderTest,
    http: httpx.AsyncClient,
    origin: str,
    tenant_host: str | None,
    path: str | None,
    token: str,
) -> None:
    headers, body = modern("server/discover")
    headers = {**headers, "Origin": origin, "Authorization": f"Bearer {token}"}
    if tenant_host is not None:
        headers["Host"] = tenant_host
    url = hbox.url(path) if path is not None else host_url(hbox)
    response = await http.post(url, headers=headers, json=body)
    assert_jsonrpc_error(response, 403, -32600)


# -- the official SDK client ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_at_the_host(hbox: BoxUnderTest, mode: str) -> None:
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {ALPHA_TOKEN}", "Host": "alpha.box.lan"},
        timeout=httpx2.Timeout(10.0, read=30.0),
    ) as http:
        transport = streamable_http_client(host_url(hbox), http_client=http)
        async with Client(transport, mode=mode) as client:
            tools = await client.list_tools()
            assert "echo" in [tool.name for tool in tools.tools]
            result = await client.call_tool("echo", {"text": "via host"})
            assert result.content[0].text == "via host"  # type: ignore[union-attr]
    assert all(ctx.tenant == "alpha" for _, ctx in hbox.alpha.calls)
    assert hbox.alpha.calls


async def test_the_access_log_names_the_tenant_served_by_host(
    hbox: BoxUnderTest, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="smcp_box.access")
    headers, body = modern("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, name="echo")
    response = await http.post(
        host_url(hbox), headers={**headers, "Host": "alpha.box.lan"}, json=body
    )
    assert response.status_code == 200, response.text
    lines = [r.getMessage() for r in caplog.records if r.name == "smcp_box.access"]
    assert any(line.startswith("POST /mcp 200") and "tenant=alpha" in line for line in lines)
