"""Redirect URI rules: what may be registered, and how a request's URI is matched (RFC 8252)."""

from __future__ import annotations

import pytest

from smcp_box.auth.clients import redirect_uri_matches, redirect_uri_problem


@pytest.mark.parametrize(
    "uri",
    [
        "https://vscode.dev/redirect",
        "http://127.0.0.1:33418/callback",
        "http://localhost/callback",
        "http://[::1]:8080/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ],
)
def test_allowed_redirect_uris(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://box.lan/cb", "loopback"),
        ("javascript:alert(1)", "never allowed"),
        ("data:text/html,hi", "never allowed"),
        ("file:///etc/passwd", "never allowed"),
        ("https://a.example/cb#x", "fragment"),
        ("https:///nohost", "no host"),
        ("/relative", "no scheme"),
        ("http://127.0.0.1:99999/cb", "not a valid URL"),
    ],
)
def test_refused_redirect_uris(uri: str, why: str) -> None:
    problem = redirect_uri_problem(uri)
    assert problem is not None
    assert why in problem


def test_matching_is_exact_except_the_loopback_port() -> None:
    assert redirect_uri_matches("https://a.example/cb", "https://a.example/cb")
    assert not redirect_uri_matches("https://a.example/cb", "https://a.example/cb/")
    assert not redirect_uri_matches("https://a.example/cb", "https://a.example:8443/cb")
    assert redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:5123/cb")
    assert redirect_uri_matches("http://localhost:1/cb", "http://localhost:2/cb")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://localhost:5123/cb")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:5123/other")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:5123/cb?x=1")
    assert not redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:bad/cb")
