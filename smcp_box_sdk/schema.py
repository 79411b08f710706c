"""JSON Schema from Python type hints, for tool input and output schemas."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _is_typed_dict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__annotations__")


def schema_for(tp: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation. Unknown types give ``{}`` (anything)."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = get_args(tp)
        schema = schema_for(base)
        described = [extra for extra in extras if isinstance(extra, str)]
        if described:
            schema["description"] = described[0]
        return schema
    if tp in _SIMPLE:
        return {"type": _SIMPLE[tp]}
    if tp is type(None):
        return {"type": "null"}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(tp) if arg is not type(None)]
        if len(options) == 1:
            return schema_for(options[0])
        return {"anyOf": [schema_for(arg) for arg in options]}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        args = get_args(tp)
        array: dict[str, Any] = {"type": "array"}
        if args:
            array["items"] = schema_for(args[0])
        return array
    if origin is dict or tp is dict:
        args = get_args(tp)
        mapping: dict[str, Any] = {"type": "object"}
        if len(args) == 2:
            mapping["additionalProperties"] = schema_for(args[1])
        return mapping
    if _is_typed_dict(tp):
        hints = get_type_hints(tp, include_extras=True)
        required = sorted(getattr(tp, "__required_keys__", hints))
        return {
            "type": "object",
            "properties": {name: schema_for(hint) for name, hint in hints.items()},
            "required": required,
        }
    return {}


def _optional(tp: Any) -> bool:
    if get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def input_schema(func: Callable[..., Any], skip: Callable[[Any], bool]) -> dict[str, Any]:
    """The object schema of ``func``'s parameters; those whose annotation ``skip`` accepts (the
    call context) are left out. A parameter without a default is required."""
    hints = get_type_hints(func, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(func).parameters.items():
        hint = hints.get(name, Any)
        if skip(hint):
            continue
        schema = schema_for(hint)
        if param.default is inspect.Parameter.empty:
            if not _optional(hint):
                required.append(name)
        elif param.default is not None:
            schema["default"] = param.default
        properties[name] = schema
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def output_schema(func: Callable[..., Any]) -> dict[str, Any] | None:
    """An output schema when ``func`` returns a TypedDict (structured results), else None."""
    returned = get_type_hints(func, include_extras=True).get("return")
    return schema_for(returned) if _is_typed_dict(returned) else None


def check_value(value: Any, schema: dict[str, Any]) -> str | None:
    """Why ``value`` does not fit ``schema`` (the subset :func:`schema_for` produces), or None."""
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {schema['enum']!r}"
    if "anyOf" in schema:
        if all(check_value(value, option) is not None for option in schema["anyOf"]):
            return "matches none of the allowed types"
        return None
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    if isinstance(kind, str) and kind in checks and not checks[kind](value):
        return f"must be of type {kind}"
    return None
