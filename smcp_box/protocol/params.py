"""``Mcp-Param-*`` headers (2026-07-28): tool arguments a tool's schema mirrors into headers.

A tool's ``inputSchema`` may mark a property with ``x-mcp-header: <Name>``; a client then sends that
argument's value as ``Mcp-Param-<Name>`` so intermediaries can route on it, and a server that reads
the body must reject (-32020, HTTP 400) a request whose headers and body disagree.

An annotation is valid only on a string, integer or boolean property reachable from the schema
root through ``properties`` keys alone, with a non-empty RFC 9110 token as its name, unique
case-insensitively. A schema with any invalid annotation makes the tool invalid; clients drop such
tools, so nothing is checked against it.

The transport checks every 2026-07-28 ``tools/call`` with it, against the schema the module
listed (cached per module hash, see :mod:`smcp_box.web.tool_schemas`, which also keeps each
tool's :func:`mirrored_params`: the schema is walked once per tool, not once per call).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from smcp_box.errors import HeaderMismatch
from smcp_box.protocol.modern import decode_header_value

ANNOTATION: Final = "x-mcp-header"
HEADER_PREFIX: Final = "Mcp-Param-"

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_PRIMITIVES: Final = frozenset({"string", "integer", "boolean"})
# JSON Schema keywords whose values are schemas, by shape. Crossing any of them leaves the
# "properties only" chain; instance keywords (const, enum, default) and $ref are never entered.
_ONE_SCHEMA: Final = frozenset(
    {
        "items",
        "contains",
        "additionalProperties",
        "unevaluatedItems",
        "unevaluatedProperties",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "contentSchema",
    }
)
_SCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS: Final = frozenset({"patternProperties", "dependentSchemas", "$defs", "definitions"})

Path = tuple[str, ...]


def _positions(schema: Any) -> Iterator[tuple[Path | None, dict[str, Any]]]:
    """Every schema position with its ``properties`` path (None once off the pure chain)."""
    stack: list[tuple[Path | None, Any]] = [((), schema)]
    while stack:  # explicit stack: no recursion limit on hostile schemas
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for keyword, value in node.items():
            if keyword == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    stack.append(((*path, name) if path is not None else None, sub))
            elif keyword in _ONE_SCHEMA:
                stack.append((None, value))
            elif keyword in _SCHEMA_LISTS and isinstance(value, list):
                stack.extend((None, sub) for sub in value)
            elif keyword in _SCHEMA_MAPS and isinstance(value, dict):
                stack.extend((None, sub) for sub in value.values())


def invalid_annotation(schema: Any) -> str | None:
    """Why a tool's ``x-mcp-header`` annotations are invalid, or None when they are fine."""
    seen: set[str] = set()
    for path, node in _positions(schema):
        if ANNOTATION not in node:
            continue
        if not path:
            return f"{ANNOTATION} is only allowed on properties reached through 'properties'"
        token = node[ANNOTATION]
        where = ".".join(path)
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return f"property {where!r}: {ANNOTATION} must be a non-empty header-name token"
        if node.get("type") not in _PRIMITIVES:
            return f"property {where!r}: {ANNOTATION} needs type string, integer or boolean"
        if token.lower() in seen:
            return f"property {where!r}: {ANNOTATION} {token!r} is not unique"
        seen.add(token.lower())
    return None


def _annotated(schema: Any) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path, node in _positions(schema):
        token = node.get(ANNOTATION)
        if path and isinstance(token, str):
            yield path, token, node


def _value_at(arguments: Mapping[str, Any], path: Path) -> Any:
    node: Any = arguments
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _rendered(value: Any) -> str | None:
    """How a client writes an argument into its header; None for values it cannot carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _matches(declared_type: Any, value: Any, header: str) -> bool:
    # Integers compare as numbers (the spec's SHOULD: "42.0" equals 42), exactly, for plain
    # decimal headers only.
    is_integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if declared_type == "integer" and not isinstance(value, bool) and is_integral:
        if _DECIMAL.fullmatch(header) is None:
            return False
        whole, _, fraction = header.partition(".")
        return set(fraction) <= {"0"} and int(whole) == int(value)
    return header == _rendered(value)


@dataclass(frozen=True)
class MirroredParam:
    """One argument a tool's schema mirrors into a header: where it is, and its header."""

    path: Path
    header: str
    declared_type: Any


def mirrored_params(input_schema: Any) -> tuple[MirroredParam, ...]:
    """What a tool's schema mirrors into headers; nothing for a schema with an invalid
    annotation (clients drop such tools, so nothing is checked against it). Worked out once
    per tool (:class:`~smcp_box.web.tool_schemas.ToolSchemas` keeps it), not per call."""
    if invalid_annotation(input_schema) is not None:
        return ()
    return tuple(
        MirroredParam(path, f"{HEADER_PREFIX}{token}", node.get("type"))
        for path, token, node in _annotated(input_schema)
    )


def check_param_headers(
    input_schema: Any,
    arguments: Mapping[str, Any],
    header_lines: Iterable[tuple[str, str]],
) -> None:
    """:func:`check_mirrored_headers` against a schema as it is."""
    check_mirrored_headers(mirrored_params(input_schema), arguments, header_lines)


def check_mirrored_headers(
    mirrored: tuple[MirroredParam, ...],
    arguments: Mapping[str, Any],
    header_lines: Iterable[tuple[str, str]],
) -> None:
    """Raise :class:`HeaderMismatch` unless every mirrored argument and its header agree:
    both present and equal (after base64-sentinel decoding), or both absent (null is absent)."""
    if not mirrored:
        return  # most tools mirror nothing into headers: no need to index the header lines
    values: dict[str, list[str]] = {}
    for name, value in header_lines:
        values.setdefault(name.lower(), []).append(value)
    for param in mirrored:
        header_name = param.header
        where = ".".join(param.path)
        sent = values.get(header_name.lower(), [])
        if len(sent) > 1:
            raise HeaderMismatch(f"Header mismatch: {header_name} appears more than once")
        value = _value_at(arguments, param.path)
        rendered = _rendered(value) if value is not None else None
        if rendered is None:
            if sent:
                raise HeaderMismatch(
                    f"Header mismatch: {header_name} is present but argument {where!r} is not"
                )
            continue
        if not sent:
            raise HeaderMismatch(
                f"Header mismatch: argument {where!r} is present but {header_name} is missing"
            )
        # Field values exclude surrounding whitespace (RFC 9110 §5.5); servers may see it raw.
        decoded = decode_header_value(sent[0].strip(" \t"))
        if decoded is None or not _matches(param.declared_type, value, decoded):
            raise HeaderMismatch(
                f"Header mismatch: {header_name} does not match argument {where!r}"
            )
