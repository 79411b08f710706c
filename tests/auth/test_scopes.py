"""The scope vocabulary and the per-method check shared by API keys and OAuth tokens."""

from __future__ import annotations

import pytest

from smcp_box.auth.scopes import ALL_SCOPES, check_scope, parse_scopes, required_scope
from smcp_box.errors import InsufficientScope
from smcp_box.protocol.http import bearer_challenge
from smcp_box.seams import Principal


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("tools/list", "mcp:tools"),
        ("tools/call", "mcp:tools"),
        ("tasks/get", "mcp:tools"),
        ("resources/read", "mcp:resources"),
        ("resources/templates/list", "mcp:resources"),
        ("prompts/get", "mcp:prompts"),
        ("initialize", None),
        ("ping", None),
        ("notifications/initialized", None),
        ("logging/setLevel", None),
    ],
)
def test_required_scope_by_method(method: str, scope: str | None) -> None:
    assert required_scope(method) == scope


def _principal(scopes: frozenset[str] | None) -> Principal:
    return Principal(tenant="alpha", subject="key:1", method="api_key", scopes=scopes)


def test_unrestricted_and_covering_credentials_pass() -> None:
    check_scope(_principal(None), "tools/call")
    check_scope(_principal(frozenset({"mcp:tools"})), "tools/call")
    check_scope(_principal(frozenset()), "ping")


def test_missing_scope_is_403_naming_the_scope() -> None:
    with pytest.raises(InsufficientScope) as caught:
        check_scope(_principal(frozenset({"mcp:prompts"})), "tools/call")
    assert caught.value.http_status == 403
    assert caught.value.scope == "mcp:tools"
    assert "tools/call needs scope mcp:tools" in caught.value.message
    assert "mcp:prompts" in caught.value.message


def test_parse_scopes_refuses_unknown_names() -> None:
    assert parse_scopes("mcp:tools, mcp:prompts") == {"mcp:tools", "mcp:prompts"}
    assert parse_scopes("") == frozenset()
    with pytest.raises(ValueError, match=r"unknown scope mcp:tool: known scopes are mcp:tools"):
        parse_scopes("mcp:tool")
    assert set(ALL_SCOPES) == {"mcp:tools", "mcp:resources", "mcp:prompts"}


def test_challenge_carries_scope() -> None:
    value = bearer_challenge(
        realm="r", error="insufficient_scope", description="d", scope="mcp:tools"
    )
    assert value == (
        'Bearer realm="r", error="insufficient_scope", scope="mcp:tools", error_description="d"'
    )
