"""Tool definitions as approvals keep them: the pinned view of each tool, and the diff an
admin reviews before approving a change. No I/O.

The approved set is exactly what the fingerprint (:func:`~smcp_box.vetting.pins.tools_fingerprint`)
covers, so an approval's hash and a tenant.toml ``tools_sha256`` pin are the same kind of value,
and the definitions served in place of a changed module's are the reviewed text, nothing more.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .pins import PINNED_FIELDS, tools_fingerprint


def approved_view(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The tools reduced to their pinned fields, sorted by name (then by their text): what an
    approval stores and what a tenant serving approved definitions lists."""
    views = [{key: tool[key] for key in PINNED_FIELDS if key in tool} for tool in tools]
    return sorted(views, key=lambda view: (str(view.get("name", "")), _text(view, indent=None)))


def definitions_sha256(tools: Sequence[Mapping[str, Any]]) -> str:
    """The fingerprint of ``tools``: what an approval records and ``tools_sha256`` pins."""
    return tools_fingerprint(tools)


def tool_name_set(tools: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    return frozenset(str(tool["name"]) for tool in tools if isinstance(tool.get("name"), str))


def _text(value: Any, *, indent: int | None) -> str:
    return json.dumps(value, sort_keys=True, indent=indent, ensure_ascii=False)


def definitions_diff(
    approved: Sequence[Mapping[str, Any]] | None,
    current: Sequence[Mapping[str, Any]],
    *,
    approved_label: str = "approved",
    current_label: str = "module",
) -> str:
    """A unified diff of the canonical JSON (keys sorted, two-space indent) of the approved
    definitions and the module's current ones. Without approved definitions (only a pin is
    known, whose text the box never saw) every current line shows as added."""
    before = [] if approved is None else _text(approved_view(approved), indent=2).splitlines()
    after = _text(approved_view(current), indent=2).splitlines()
    lines = difflib.unified_diff(
        before, after, fromfile=approved_label, tofile=current_label, lineterm=""
    )
    return "\n".join(lines) + "\n"


__all__ = ["approved_view", "definitions_diff", "definitions_sha256", "tool_name_set"]
