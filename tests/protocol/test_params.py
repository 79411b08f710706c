from __future__ import annotations

from typing import Any

import pytest

from smcp_box.errors import HeaderMismatch
from smcp_box.protocol.params import (
    MirroredParam,
    check_param_headers,
    invalid_annotation,
    mirrored_params,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "limit": {"type": "integer", "x-mcp-header": "Limit"},
        "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
        "target": {
            "type": "object",
            "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}},
        },
        "query": {"type": "string"},
    },
}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (SCHEMA, None),
        ({"type": "object"}, None),
        ({"x-mcp-header": "Root", "type": "string"}, "only allowed"),
        ({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}, "needs type"),
        ({"properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}, "token"),
        ({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}, "token"),
        ({"properties": {"a": {"type": "string", "x-mcp-header": 3}}}, "token"),
        (
            {
                "properties": {
                    "a": {"type": "string", "x-mcp-header": "Same"},
                    "b": {"type": "string", "x-mcp-header": "same"},
                }
            },
            "not unique",
        ),
        ({"items": {"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}}, "only allowed"),
        (
            {"anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]},
            "only allowed",
        ),
        ({"$defs": {"d": {"type": "string", "x-mcp-header": "D"}}}, "only allowed"),
        # Instance data is never mistaken for an annotation.
        ({"properties": {"a": {"type": "object", "default": {"x-mcp-header": "X"}}}}, None),
    ],
)
def test_invalid_annotation(schema: Any, problem: str | None) -> None:
    found = invalid_annotation(schema)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def headers(**values: str) -> list[tuple[str, str]]:
    return [(f"Mcp-Param-{k.replace('_', '-')}", v) for k, v in values.items()]


@pytest.mark.parametrize(
    ("arguments", "sent"),
    [
        ({}, []),
        ({"query": "x"}, []),
        ({"region": "us-west1"}, headers(Region="us-west1")),
        ({"region": "Hello, 世界"}, headers(Region="=?base64?SGVsbG8sIOS4lueVjA==?=")),
        ({"limit": 42}, headers(Limit="42")),
        ({"limit": 42}, headers(Limit="42.0")),
        ({"limit": 42.0}, headers(Limit="42")),
        ({"dry": False}, headers(Dry_Run="false")),
        ({"target": {"zone": "b"}}, headers(Zone="b")),
        ({"region": None}, []),
        ({"target": "not-an-object"}, []),
        ({"region": ["list"]}, []),
        # Surrounding whitespace is not part of a field value (RFC 9110 section 5.5).
        ({"region": "us"}, headers(Region=" us\t")),
        ({"region": "Hello"}, headers(Region=" =?base64?SGVsbG8=?= ")),
        # The conformance suite's literal cases: not the sentinel, so compared as they are.
        ({"region": "SGVsbG8="}, headers(Region="SGVsbG8=")),
        ({"region": "=?base64?SGVsbG8="}, headers(Region="=?base64?SGVsbG8=")),
    ],
)
def test_matching_headers(arguments: dict[str, Any], sent: list[tuple[str, str]]) -> None:
    check_param_headers(SCHEMA, arguments, [("Accept", "*/*"), *sent])


@pytest.mark.parametrize(
    ("arguments", "sent", "why"),
    [
        ({"region": "us"}, [], "missing"),
        ({}, headers(Region="us"), "is present but"),
        ({"region": None}, headers(Region="us"), "is present but"),
        ({"region": "us"}, headers(Region="eu"), "does not match"),
        (
            {"region": "us"},
            [("mcp-param-region", "us"), ("MCP-PARAM-REGION", "us")],
            "more than once",
        ),
        ({"limit": 42}, headers(Limit="42.5"), "does not match"),
        ({"limit": 42}, headers(Limit="4.2e1"), "does not match"),
        ({"dry": True}, headers(Dry_Run="True"), "does not match"),
        ({"region": "x"}, headers(Region="=?base64?eA?="), "does not match"),
        ({"region": "x"}, headers(Region="caf\xe9"), "does not match"),
        ({"region": ["list"]}, headers(Region="list"), "is present but"),
        # Bad padding and bad characters in the sentinel are rejected, never read literally.
        ({"region": "Hello"}, headers(Region="=?base64?SGVsbG8?="), "does not match"),
        ({"region": "Hello"}, headers(Region="=?base64?SGVs!!!bG8=?="), "does not match"),
    ],
)
def test_mismatching_headers(
    arguments: dict[str, Any], sent: list[tuple[str, str]], why: str
) -> None:
    with pytest.raises(HeaderMismatch, match=why) as caught:
        check_param_headers(SCHEMA, arguments, sent)
    assert caught.value.jsonrpc_code == -32020


def test_mirrored_params_are_worked_out_once_per_schema() -> None:
    assert set(mirrored_params(SCHEMA)) == {
        MirroredParam(("region",), "Mcp-Param-Region", "string"),
        MirroredParam(("limit",), "Mcp-Param-Limit", "integer"),
        MirroredParam(("dry",), "Mcp-Param-Dry-Run", "boolean"),
        MirroredParam(("target", "zone"), "Mcp-Param-Zone", "string"),
    }
    assert mirrored_params({"type": "object"}) == ()
    # One invalid annotation: the tool is invalid, nothing of it is mirrored.
    assert mirrored_params({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}) == ()


def test_invalid_schemas_check_nothing() -> None:
    bad = {"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}
    check_param_headers(bad, {"a": 1.5}, headers(A="2"))


def test_agrees_with_the_reference_client_encoding() -> None:
    inbound = pytest.importorskip("mcp.shared.inbound")
    arguments = {"region": " padded ", "limit": 7, "dry": True, "target": {"zone": "=?base64?x?="}}
    sent = inbound.mcp_param_headers(inbound.x_mcp_header_map(SCHEMA), arguments)
    check_param_headers(SCHEMA, arguments, list(sent.items()))
