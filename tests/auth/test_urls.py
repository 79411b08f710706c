"""The OAuth URL rules shared by the resource server, the authorization server and metadata."""

from __future__ import annotations

import pytest

from smcp_box.auth.urls import (
    AS_METADATA_PATH,
    JWKS_PATH,
    OIDC_METADATA_PATH,
    PRM_PATH,
    base_url,
    host_resource_url,
    protected_resource_metadata_url,
    request_resource_url,
    resource_url,
)


def test_issuer_setting_wins_over_the_request() -> None:
    assert base_url("https://box.lan:8765", "http", "10.0.0.5:8765") == "https://box.lan:8765"


@pytest.mark.parametrize(
    ("scheme", "host", "expected"),
    [
        ("http", "127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("HTTPS", "Box.LAN:443", "https://box.lan"),
        ("http", "box.lan:80", "http://box.lan"),
        ("https", "box.lan:80", "https://box.lan:80"),
        ("http", "[::1]:8765", "http://[::1]:8765"),
        ("http", "[::1]", "http://[::1]"),
    ],
)
def test_base_from_the_request(scheme: str, host: str, expected: str) -> None:
    assert base_url("", scheme, host) == expected


def test_base_without_a_host_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="Host header"):
        base_url("", "http", " ")


def test_resource_urls() -> None:
    assert resource_url("https://box.lan", "notes") == "https://box.lan/t/notes/mcp"
    assert host_resource_url("https://notes.box.lan") == "https://notes.box.lan/mcp"


@pytest.mark.parametrize(
    ("resource", "metadata"),
    [
        (
            "https://box.lan:8765/t/notes/mcp",
            "https://box.lan:8765/.well-known/oauth-protected-resource/t/notes/mcp",
        ),
        ("https://notes.lan/mcp", "https://notes.lan/.well-known/oauth-protected-resource/mcp"),
        ("https://box.lan", "https://box.lan/.well-known/oauth-protected-resource"),
        ("https://box.lan/", "https://box.lan/.well-known/oauth-protected-resource"),
    ],
)
def test_protected_resource_metadata_url_is_rfc9728_path_form(resource: str, metadata: str) -> None:
    assert protected_resource_metadata_url(resource) == metadata


def test_well_known_paths() -> None:
    assert PRM_PATH == "/.well-known/oauth-protected-resource"
    assert AS_METADATA_PATH == "/.well-known/oauth-authorization-server"
    assert OIDC_METADATA_PATH == "/.well-known/openid-configuration"
    assert JWKS_PATH == "/oauth/jwks"


@pytest.mark.parametrize(
    ("issuer", "scheme", "host", "tenant", "expected"),
    [
        ("", "http", "127.0.0.1:8765", "notes", "http://127.0.0.1:8765/t/notes/mcp"),
        ("https://box.lan", "http", "10.0.0.2:8765", "notes", "https://box.lan/t/notes/mcp"),
        ("", "https", "Notes.LAN:443", None, "https://notes.lan/mcp"),
        # Host-routed behind a TLS proxy: the tenant's own host, the issuer's scheme.
        ("https://box.lan", "http", "notes.lan", None, "https://notes.lan/mcp"),
    ],
)
def test_request_resource_url(
    issuer: str, scheme: str, host: str, tenant: str | None, expected: str
) -> None:
    assert request_resource_url(issuer, scheme, host, tenant) == expected
