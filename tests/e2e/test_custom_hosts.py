"""Custom host names end to end: tenant.toml ``hosts``, a certificate from the real
``smcp-box cert --tenant-hosts``, and a real ``smcp-box serve`` over TLS answering
``https://utils.box.lan:<port>/mcp`` (TLS SNI and certificate check on that name, HTTP/2
``:authority``), with raw httpx and the official SDK client in both eras."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.e2e.clients import modern_headers, modern_request

HOST = "utils.box.lan"


@pytest.fixture(scope="module")
def hosts_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BoxProcess, Path]]:
    workdir = tmp_path_factory.mktemp("hostsbox")
    tenants = copy_tenants(workdir / "tenants", ["notes", "utils"])
    manifest = tenants / "utils" / "tenant.toml"
    manifest.write_text(
        manifest.read_text().replace('name = "utils"\n', f'name = "utils"\nhosts = ["{HOST}"]\n')
    )
    box = BoxProcess(workdir=workdir, tenants_dir=tenants, scheme="https")
    cert = box.cli(
        "cert",
        "--tenant-hosts",
        "--ca-dir",
        str(workdir / "ca"),
        "--out",
        str(workdir / "tls"),
        "--credstore",
        "none",
        "127.0.0.1",
    )
    assert f"for {HOST}, localhost, 127.0.0.1, ::1" in cert.stdout, cert.stdout
    ca_path = workdir / "ca" / "ca.crt"
    box.extra_env = {
        "SMCP_BOX_SERVER_TLS_CERT": str(workdir / "tls" / "server.crt"),
        "SMCP_BOX_SERVER_TLS_KEY": str(workdir / "tls" / "server.key"),
    }
    box.verify = ssl.create_default_context(cafile=str(ca_path))
    box.start()
    try:
        yield box, ca_path
    finally:
        assert box.stop() == 0, box.log()


def by_name(box: BoxProcess) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Reach the box at 127.0.0.1 as if DNS said utils.box.lan: Host (HTTP/2 ``:authority``)
    and TLS SNI carry the name, and the certificate is checked against it."""
    return f"{box.base_url}/mcp", {"Host": f"{HOST}:{box.port}"}, {"sni_hostname": HOST}


async def test_h2_over_tls_at_the_tenants_name(hosts_box: tuple[BoxProcess, Path]) -> None:
    box, ca_path = hosts_box
    key = box.create_key("utils")
    url, host, extensions = by_name(box)
    context = ssl.create_default_context(cafile=str(ca_path))
    body = modern_request(1, "tools/call", {"name": "echo", "arguments": {"text": "named"}})
    async with httpx.AsyncClient(http2=True, verify=context, timeout=30) as http:
        request = http.build_request(
            "POST",
            url,
            json=body,
            headers={**modern_headers(key, "tools/call", "echo"), **host},
            extensions=extensions,
        )
        response = await http.send(request)
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200, response.text
        assert "named" in response.text
        unknown = http.build_request(
            "POST",
            url,
            json=body,
            headers={**modern_headers(key, "tools/call", "echo"), "Host": "other.box.lan"},
            extensions=extensions,
        )
        missing = await http.send(unknown)
        assert missing.status_code == 404
        assert "utils" not in missing.text
    # The name is checked against the certificate: a name it lacks fails the handshake.
    async with httpx.AsyncClient(verify=context, timeout=30) as fresh:
        with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED"):
            await fresh.get(f"{box.base_url}/healthz", extensions={"sni_hostname": "nope.box.lan"})
    # The serve banner lists the tenant's host URL.
    assert f"https://{HOST}:{box.port}/mcp" in box.log()


class _SniTransport(httpx2.AsyncHTTPTransport):
    """Every request carries TLS SNI (and so the certificate check) for the tenant's name."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.extensions["sni_hostname"] = HOST
        return await super().handle_async_request(request)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_at_the_tenants_name(
    hosts_box: tuple[BoxProcess, Path], mode: str
) -> None:
    box, ca_path = hosts_box
    key = box.create_key("utils")
    url, host, _ = by_name(box)
    context = ssl.create_default_context(cafile=str(ca_path))
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {key}", **host},
            transport=_SniTransport(verify=context, http2=True),
            timeout=httpx2.Timeout(10.0, read=30.0),
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = await client.list_tools()
        assert "echo" in [tool.name for tool in tools.tools]
        result = await client.call_tool("echo", {"text": f"sdk {mode}"})
        assert result.content[0].text == f"sdk {mode}"  # type: ignore[union-attr]
