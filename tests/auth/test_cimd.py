"""Client ID Metadata Documents: the SSRF rules, the fetch limits, validation and the cache.

Documents are served by a real HTTP(S) server on 127.0.0.1. Names resolve through an injected
resolver, so "a host that resolves to 10.0.0.1" is tested without contacting 10.0.0.1: the
fetcher must refuse before connecting, and these tests never listen anywhere but loopback.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from smcp_box.auth.cimd import CimdFetcher, ClientMetadata, is_public_address
from smcp_box.config import OAuthSettings
from smcp_box.errors import ClientMetadataError
from smcp_box.ops.certs import issue_server_certificate, load_or_create_ca
from tests.support.loopback_http import LoopbackHttp, Route

HOST = "cimd.test"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Resolver:
    """Answers every name with fixed addresses and counts the lookups."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.addresses


def settings(*hosts: str, **overrides: object) -> OAuthSettings:
    return OAuthSettings(cimd_allowed_hosts=hosts, **overrides)  # type: ignore[arg-type]


def document(url: str, **fields: object) -> bytes:
    body: dict[str, object] = {
        "client_id": url,
        "client_name": "Test Client",
        "redirect_uris": ["http://127.0.0.1/callback"],
        **fields,
    }
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


async def refused(fetcher: CimdFetcher, url: str) -> str:
    with pytest.raises(ClientMetadataError) as info:
        await fetcher.fetch(url)
    assert info.value.http_status == 400
    return info.value.message


async def test_listed_loopback_host_over_http() -> None:
    resolver = Resolver("127.0.0.1")
    async with LoopbackHttp({}) as server:
        url = f"http://{HOST}:{server.port}/client.json"
        server.routes["/client.json"] = Route(
            body=document(url, client_uri="https://example.org", logo_uri="https://e.org/l.png")
        )
        fetcher = CimdFetcher(settings(HOST), resolve=resolver)
        metadata = await fetcher.fetch(url)
    assert metadata == ClientMetadata(
        client_id=url,
        redirect_uris=("http://127.0.0.1/callback",),
        client_name="Test Client",
        client_uri="https://example.org",
        logo_uri="https://e.org/l.png",
    )
    # Resolved once; the request carried the name, not the address it connected to.
    assert resolver.calls == [HOST]
    assert server.hosts == [f"{HOST}:{server.port}"]


async def test_listed_address_literal() -> None:
    async with LoopbackHttp({}) as server:
        url = f"http://127.0.0.1:{server.port}/c"
        server.routes["/c"] = Route(body=document(url))
        metadata = await CimdFetcher(settings("127.0.0.1")).fetch(url)
    assert metadata.client_id == url
    assert metadata.token_endpoint_auth_method == "none"
    assert metadata.grant_types == ("authorization_code",)
    assert metadata.response_types == ("code",)


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "::1", "fd00::1", "127.0.0.1"])
async def test_star_refuses_non_public_addresses(address: str) -> None:
    fetcher = CimdFetcher(settings("*"), resolve=Resolver(address))
    message = await refused(fetcher, f"https://{HOST}/client.json")
    assert f"non-public address {address}" in message
    assert "cimd_allowed_hosts" in message


async def test_star_refuses_when_any_address_is_private() -> None:
    fetcher = CimdFetcher(settings("*"), resolve=Resolver("93.184.216.34", "10.1.2.3"))
    assert "10.1.2.3" in await refused(fetcher, f"https://{HOST}/client.json")


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/c.json", "https://[::1]/c.json", "https://[::ffff:10.0.0.1]/c"]
)
async def test_star_refuses_private_address_literals(url: str) -> None:
    resolver = Resolver()
    assert "non-public address" in await refused(CimdFetcher(settings("*"), resolve=resolver), url)
    assert resolver.calls == []


async def test_http_refused_unless_listed_and_loopback() -> None:
    message = await refused(
        CimdFetcher(settings("*"), resolve=Resolver("93.184.216.34")), f"http://{HOST}/c"
    )
    assert "http is allowed only" in message
    lan = CimdFetcher(settings("lan.test"), resolve=Resolver("10.0.0.1"))
    assert "http is allowed only" in await refused(lan, "http://lan.test/c")


async def test_unlisted_host_and_cimd_off() -> None:
    fetcher = CimdFetcher(settings("other.test"), resolve=Resolver("127.0.0.1"))
    assert "not in [oauth] cimd_allowed_hosts" in await refused(fetcher, f"https://{HOST}/c")
    off = CimdFetcher(settings(), resolve=Resolver("127.0.0.1"))
    assert "turned off" in await refused(off, f"https://{HOST}/c")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://cimd.test/c", "https:// URL"),
        ("https:///c", "https:// URL"),
        ("https://user:pw@cimd.test/c", "user name or password"),
        ("https://cimd.test/c#frag", "fragment"),
        ("https://cimd.test", "needs a path"),
        ("https://cimd.test/", "needs a path"),
        ("https://cimd.test/a/../c", "needs a path"),
        ("https://cimd.test:99999/c", "not a valid URL"),
    ],
)
async def test_url_shape(url: str, expected: str) -> None:
    fetcher = CimdFetcher(settings("cimd.test"), resolve=Resolver("127.0.0.1"))
    assert expected in await refused(fetcher, url)


async def fetch_from(route_for: Callable[[str], Route], **overrides: object) -> str:
    """Serve ``route_for(url)`` at a listed loopback URL and return the refusal's message."""
    async with LoopbackHttp({}) as server:
        url = f"http://{HOST}:{server.port}/client.json"
        server.routes["/client.json"] = route_for(url)
        fetcher = CimdFetcher(settings(HOST, **overrides), resolve=Resolver("127.0.0.1"))
        return await refused(fetcher, url)


async def test_redirect_refused() -> None:
    message = await fetch_from(
        lambda _url: Route(302, headers={"Location": "http://169.254.169.254/latest"})
    )
    assert "302 redirect to http://169.254.169.254/latest" in message
    assert "not followed" in message


async def test_error_status_named() -> None:
    assert "HTTP 404" in await fetch_from(lambda _url: Route(404, b"{}"))


async def test_oversize_refused_by_declared_length() -> None:
    message = await fetch_from(
        lambda url: Route(body=document(url, client_name="x" * 5000)), cimd_max_bytes=1024
    )
    assert "larger than 1024 bytes" in message


async def test_oversize_refused_while_streaming() -> None:
    message = await fetch_from(
        lambda url: Route(body=document(url, client_name="x" * 50_000), until_close=True),
        cimd_max_bytes=1024,
    )
    assert "larger than 1024 bytes" in message


async def test_server_that_never_answers_times_out() -> None:
    message = await fetch_from(lambda _url: Route(hang=True), cimd_timeout_s=0.2)
    assert "within 0.2 s" in message
    assert "cimd_timeout_s" in message


@pytest.mark.parametrize(
    ("route_for", "expected"),
    [
        (lambda url: Route(body=document(url + "x")), "must equal the URL"),
        (lambda url: Route(body=b"{not json"), "not valid JSON"),
        (lambda url: Route(body=b"[1, 2]"), "JSON object"),
        (lambda url: Route(body=document(url, redirect_uris=None)), "redirect_uris must be"),
        (lambda url: Route(body=document(url, redirect_uris=[])), "redirect_uris must be"),
        (lambda url: Route(body=document(url, redirect_uris=[1])), "redirect_uris must be"),
        (lambda url: Route(body=document(url, client_secret="s")), "client secret"),
        (
            lambda url: Route(body=document(url, token_endpoint_auth_method="client_secret_basic")),
            "only 'none'",
        ),
        (lambda url: Route(body=document(url, client_name=7)), "client_name must be a string"),
        (lambda url: Route(body=document(url, grant_types="code")), "grant_types must be"),
    ],
)
async def test_document_validation(route_for: Callable[[str], Route], expected: str) -> None:
    assert expected in await fetch_from(route_for)


async def test_cache_hit_then_expiry() -> None:
    clock = Clock()
    async with LoopbackHttp({}) as server:
        url = f"http://{HOST}:{server.port}/client.json"
        server.routes["/client.json"] = Route(body=document(url))
        fetcher = CimdFetcher(
            settings(HOST, cimd_cache_s=100), resolve=Resolver("127.0.0.1"), clock=clock
        )
        first = await fetcher.fetch(url)
        clock.now += 99
        assert await fetcher.fetch(url) is first
        assert server.hits == 1
        clock.now += 1
        await fetcher.fetch(url)
        assert server.hits == 2
        fetcher.forget(url)
        await fetcher.fetch(url)
        assert server.hits == 3


@pytest.mark.parametrize(
    ("cache_control", "hits_after_10s"),
    [("max-age=5", 2), ("public, max-age=60", 1), ("no-store", 2)],
)
async def test_cache_control_max_age_if_lower(cache_control: str, hits_after_10s: int) -> None:
    clock = Clock()
    async with LoopbackHttp({}) as server:
        url = f"http://{HOST}:{server.port}/client.json"
        server.routes["/client.json"] = Route(
            body=document(url), headers={"Cache-Control": cache_control}
        )
        fetcher = CimdFetcher(
            settings(HOST, cimd_cache_s=30), resolve=Resolver("127.0.0.1"), clock=clock
        )
        await fetcher.fetch(url)
        clock.now += 10
        await fetcher.fetch(url)
        assert server.hits == hits_after_10s


async def test_failures_are_not_cached() -> None:
    async with LoopbackHttp({}) as server:
        url = f"http://{HOST}:{server.port}/client.json"
        server.routes["/client.json"] = Route(body=b"{broken")
        fetcher = CimdFetcher(settings(HOST), resolve=Resolver("127.0.0.1"))
        await refused(fetcher, url)
        server.routes["/client.json"] = Route(body=document(url))
        assert (await fetcher.fetch(url)).client_id == url


def tls_server_context(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = load_or_create_ca(tmp_path / "ca", hostname="testbox")
    issued = issue_server_certificate(ca, tmp_path / "tls", [name])
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(issued.cert_path, issued.key_path)
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    return server, client


@pytest.mark.parametrize(("cert_name", "ok"), [(HOST, True), ("other.test", False)])
async def test_https_connects_to_checked_address_and_verifies_the_name(
    tmp_path: Path, cert_name: str, ok: bool
) -> None:
    server_context, client_context = tls_server_context(tmp_path, cert_name)
    resolver = Resolver("127.0.0.1")
    async with LoopbackHttp({}, tls=server_context) as server:
        url = f"https://{HOST}:{server.port}/client.json"
        server.routes["/client.json"] = Route(body=document(url))
        fetcher = CimdFetcher(settings(HOST), resolve=resolver, ssl_context=client_context)
        if ok:
            assert (await fetcher.fetch(url)).client_id == url
            assert server.hosts == [f"{HOST}:{server.port}"]
        else:
            message = await refused(fetcher, url)
            assert "fetch failed" in message
            assert "certificate" in message.lower() or "hostname" in message.lower()
    assert resolver.calls == [HOST]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1", True),
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("192.0.2.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("2002:0a00:0001::1", False),
        ("fe80::1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public
