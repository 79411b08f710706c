"""The server TLS context: real handshakes on 127.0.0.1, and certificate reload for new ones."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from hypercorn.asyncio import serve

from smcp_box.errors import ConfigError
from smcp_box.ops.certs import (
    LocalCA,
    ServerCertificate,
    fingerprint_sha256,
    issue_server_certificate,
    load_or_create_ca,
)
from smcp_box.ops.tls import CertReloader, ReloadableTLSConfig, build_ssl_context
from tests.support.waiting import wait_until


@dataclass
class Handshake:
    version: str
    alpn: str | None
    cipher: str
    fingerprint: str


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return load_or_create_ca(tmp_path / "ca", hostname="testbox")


@pytest.fixture
def issued(tmp_path: Path, ca: LocalCA) -> ServerCertificate:
    return issue_server_certificate(ca, tmp_path / "tls", ["box.lan"])


def _client_context(ca: LocalCA, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.set_alpn_protocols(["h2", "http/1.1"])
    if maximum is not None:
        context.minimum_version = min(maximum, ssl.TLSVersion.TLSv1_2)
        context.maximum_version = maximum
    return context


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo_server(issued: ServerCertificate) -> AsyncIterator[tuple[CertReloader, int]]:
    reloader = CertReloader(issued.cert_path, issued.key_path)
    server = await asyncio.start_server(_echo, "127.0.0.1", 0, ssl=reloader.context)
    port = server.sockets[0].getsockname()[1]
    yield reloader, port
    server.close()
    await server.wait_closed()


async def _handshake(
    port: int, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> tuple[Handshake, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client, server_hostname=server_hostname
    )
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    shake = Handshake(
        version=ssl_object.version(),
        alpn=ssl_object.selected_alpn_protocol(),
        cipher=ssl_object.cipher()[0],
        fingerprint=fingerprint_sha256(x509.load_der_x509_certificate(der)),
    )
    return shake, reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


async def test_handshake_prefers_tls13_and_h2(
    echo_server: tuple[CertReloader, int], issued: ServerCertificate, ca: LocalCA
) -> None:
    _, port = echo_server
    shake, reader, writer = await _handshake(port, _client_context(ca))
    assert shake.version == "TLSv1.3"
    assert shake.alpn == "h2"
    assert shake.fingerprint == fingerprint_sha256(issued.certificate)
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    await _close(writer)


async def test_tls12_clients_get_forward_secret_aead(
    echo_server: tuple[CertReloader, int], ca: LocalCA
) -> None:
    _, port = echo_server
    shake, _, writer = await _handshake(port, _client_context(ca, ssl.TLSVersion.TLSv1_2))
    assert shake.version == "TLSv1.2"
    assert shake.cipher.startswith("ECDHE-ECDSA-")
    assert "GCM" in shake.cipher or "CHACHA20" in shake.cipher
    assert shake.alpn == "h2"
    await _close(writer)


async def test_http11_only_clients_get_http11(
    echo_server: tuple[CertReloader, int], ca: LocalCA
) -> None:
    _, port = echo_server
    client = _client_context(ca)
    client.set_alpn_protocols(["http/1.1"])
    shake, _, writer = await _handshake(port, client)
    assert shake.alpn == "http/1.1"
    await _close(writer)


async def test_clients_not_trusting_the_ca_fail(
    echo_server: tuple[CertReloader, int], tmp_path: Path
) -> None:
    _, port = echo_server
    stranger = load_or_create_ca(tmp_path / "stranger")
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(port, _client_context(stranger))


async def test_reload_swaps_the_certificate_for_new_handshakes(
    echo_server: tuple[CertReloader, int], issued: ServerCertificate, ca: LocalCA, tmp_path: Path
) -> None:
    reloader, port = echo_server
    old_fingerprint = fingerprint_sha256(issued.certificate)
    before, old_reader, old_writer = await _handshake(port, _client_context(ca))
    assert before.fingerprint == old_fingerprint

    renewed = issue_server_certificate(ca, tmp_path / "tls", ["box.lan", "box2.lan"])
    new_fingerprint = fingerprint_sha256(renewed.certificate)
    assert new_fingerprint != old_fingerprint
    # The files changed, but nothing is served from them until reload.
    unchanged, _, writer = await _handshake(port, _client_context(ca))
    assert unchanged.fingerprint == old_fingerprint
    await _close(writer)

    info = reloader.reload()
    assert info.fingerprint_sha256 == new_fingerprint
    assert reloader.info == info

    # With SNI (a host name) and without (an IP address: clients send no server name).
    for server_hostname in ("box2.lan", "127.0.0.1"):
        after, reader, writer = await _handshake(port, _client_context(ca), server_hostname)
        assert after.fingerprint == new_fingerprint
        assert after.alpn == "h2"
        assert after.version == "TLSv1.3"
        writer.write(b"new")
        assert await reader.readexactly(3) == b"new"
        await _close(writer)

    # The connection made before the reload carries on with the certificate it was made with.
    old_writer.write(b"still here")
    assert await old_reader.readexactly(10) == b"still here"
    await _close(old_writer)


async def test_a_bad_reload_keeps_the_old_certificate(
    echo_server: tuple[CertReloader, int], issued: ServerCertificate, ca: LocalCA, tmp_path: Path
) -> None:
    reloader, port = echo_server
    other = issue_server_certificate(ca, tmp_path / "other", ["box.lan"])
    shutil.copy(other.key_path, issued.key_path)  # a key that does not match server.crt
    with pytest.raises(ConfigError, match="cannot use TLS certificate"):
        reloader.reload()
    issued.key_path.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        reloader.reload()
    shake, _, writer = await _handshake(port, _client_context(ca))
    assert shake.fingerprint == fingerprint_sha256(issued.certificate)
    await _close(writer)


def test_build_ssl_context_settings(issued: ServerCertificate) -> None:
    context = build_ssl_context(issued.cert_path, issued.key_path)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.verify_mode == ssl.CERT_NONE  # clients authenticate with bearer tokens


def test_build_ssl_context_explains_bad_files(issued: ServerCertificate, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_ssl_context(tmp_path / "missing.crt", issued.key_path)
    with pytest.raises(ConfigError, match="cannot use TLS certificate"):
        build_ssl_context(issued.key_path, issued.key_path)


# --- through Hypercorn, as `serve` runs it -------------------------------------------------------


async def _app(scope: dict[str, object], receive: object, send: object) -> None:
    assert callable(receive)
    assert callable(send)
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = str(scope["http_version"]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_hypercorn_serves_h2_and_picks_up_a_reload(
    issued: ServerCertificate, ca: LocalCA, tmp_path: Path
) -> None:
    reloader = CertReloader(issued.cert_path, issued.key_path)
    config = ReloadableTLSConfig(reloader)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config.bind = [f"fd://{listener.detach()}"]  # Hypercorn owns and closes it from here on
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(_app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(http2=True, verify=_client_context(ca)) as client:
            responses: list[httpx.Response] = []

            async def answered() -> bool:
                try:
                    responses.append(await client.get(f"https://localhost:{port}/"))
                except httpx.ConnectError:
                    return False
                return True

            await wait_until(answered, what="Hypercorn to answer over TLS", interval=0.05)
            response = responses[0]
            assert response.status_code == 200
            assert response.http_version == "HTTP/2"
            assert response.text == "2"

        renewed = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"])
        reloader.reload()
        shake, _, writer = await _handshake(port, _client_context(ca))
        assert shake.fingerprint == fingerprint_sha256(renewed.certificate)
        assert shake.alpn == "h2"
        await _close(writer)
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)
