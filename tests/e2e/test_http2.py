"""HTTP/2 through the real box: h2 over TLS negotiated by ALPN, and h2c with prior knowledge,
including a legacy-era SSE response streamed over an HTTP/2 stream."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smcp_box.ops.certs import issue_server_certificate, load_or_create_ca
from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import (
    legacy_headers,
    modern_headers,
    modern_request,
    sse_events_of,
)
from tests.e2e.conftest import make_tenants


@pytest.fixture(scope="module")
def tls_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BoxProcess, Path]]:
    workdir = tmp_path_factory.mktemp("tlsbox")
    ca = load_or_create_ca(workdir / "ca", hostname="test")
    server = issue_server_certificate(ca, workdir / "tls", ["localhost", "127.0.0.1"])
    proc = BoxProcess(
        workdir=workdir,
        tenants_dir=make_tenants(workdir),
        extra_env={
            "SMCP_BOX_SERVER_TLS_CERT": str(server.cert_path),
            "SMCP_BOX_SERVER_TLS_KEY": str(server.key_path),
        },
        scheme="https",
        verify=ssl.create_default_context(cafile=str(ca.cert_path)),
    )
    proc.start()
    try:
        yield proc, ca.cert_path
    finally:
        assert proc.stop() == 0, proc.log()


def progress_call(request_id: int) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": "count_primes",
            "arguments": {"n": 500_000},
            "_meta": {"progressToken": request_id},
        },
    }


async def test_h2_over_tls_via_alpn(tls_box: tuple[BoxProcess, Path]) -> None:
    box, ca_path = tls_box
    key = box.create_key("utils")
    context = ssl.create_default_context(cafile=str(ca_path))
    async with httpx.AsyncClient(http2=True, verify=context, timeout=30) as http:
        response = await http.post(
            box.url("utils"),
            json=modern_request(1, "tools/call", {"name": "hash", "arguments": {"text": "a"}}),
            headers=modern_headers(key, "tools/call", "hash"),
        )
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200
        assert "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" in response.text


async def test_tls_prefers_1_3_and_still_serves_1_2(tls_box: tuple[BoxProcess, Path]) -> None:
    """The refusal of TLS < 1.2 is tested on the server context in tests/ops/test_tls.py; here
    the running box negotiates 1.3 by default and serves a 1.2-only client."""
    box, ca_path = tls_box
    for maximum, expected in [
        (ssl.TLSVersion.MAXIMUM_SUPPORTED, "TLSv1.3"),
        (ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
    ]:
        context = ssl.create_default_context(cafile=str(ca_path))
        context.maximum_version = maximum
        async with httpx.AsyncClient(verify=context, timeout=10) as http:
            response = await http.get(f"{box.base_url}/healthz")
            assert response.status_code == 200
            stream = response.extensions["network_stream"]
            assert stream.get_extra_info("ssl_object").version() == expected


async def test_h2c_prior_knowledge_with_sse(box: BoxProcess, keys: dict[str, str]) -> None:
    url, key = box.url("utils"), keys["utils"]
    async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as http:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "h2c", "version": "1"},
            },
        }
        response = await http.post(url, json=init, headers=legacy_headers(key))
        assert response.http_version == "HTTP/2"
        session = response.headers["mcp-session-id"]
        streamed = await http.post(url, json=progress_call(9), headers=legacy_headers(key, session))
        assert streamed.http_version == "HTTP/2"
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = sse_events_of(streamed.text)
        assert sum("notifications/progress" in data for _, data in events) == 10
        assert '"id":9' in events[-1][1].replace(" ", "")
