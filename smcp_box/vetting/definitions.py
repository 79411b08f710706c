"""Definitions as approvals keep them: the pinned view of each tool, the module's prompts,
resource templates and static resources beside them, and the diff an admin reviews before
approving a change. No I/O.

Tools are fingerprinted alone (``tools_sha256``, as tenant.toml pins them and has since before
the other kinds were covered); the other kinds have their own fingerprint (:func:`others_sha256`)
kept in the approval record. The *review* fingerprint an admin approves names both, and is the
tools fingerprint itself for a module with no prompts or resources.

The approved set is exactly what the fingerprint (:func:`~smcp_box.vetting.pins.tools_fingerprint`)
covers, so an approval's hash and a tenant.toml ``tools_sha256`` pin are the same kind of value,
and the definitions served in place of a changed module's are the reviewed text, nothing more.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from smcp_box.seams import ModuleDescription

from .pins import PINNED_FIELDS, tools_fingerprint

#: The definitions approved besides tools: kind -> (list method, field naming an item).
OTHER_KINDS: Final[dict[str, tuple[str, str]]] = {
    "prompts": ("prompts/list", "name"),
    "resourceTemplates": ("resources/templates/list", "uriTemplate"),
    "resources": ("resources/list", "uri"),
}
#: How a kind's items are named in change lists ("prompt:greet"); tools are named bare.
_ITEM_PREFIX: Final = {
    "prompts": "prompt",
    "resourceTemplates": "template",
    "resources": "resource",
}

#: Approved prompts, resource templates and static resources by kind (OTHER_KINDS' keys); a
#: kind the module does not list (or, for resources, lists only with state) is absent.
Others = Mapping[str, Sequence[Mapping[str, Any]]]


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


def other_view(kind: str, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A kind's items as approved: everything the module says of each but ``_meta`` (the
    protocol's room for extensions, not text a client reads), sorted by their naming field."""
    key = OTHER_KINDS[kind][1]
    views = [{k: v for k, v in item.items() if k != "_meta"} for item in items]
    return sorted(views, key=lambda view: (str(view.get(key, "")), _text(view, indent=None)))


def others_view(
    prompts: Sequence[Mapping[str, Any]] | None,
    templates: Sequence[Mapping[str, Any]] | None,
    resources: Sequence[Mapping[str, Any]] | None,
) -> dict[str, list[dict[str, Any]]]:
    """The other kinds a module listed (None: not listed, or not covered), as approved."""
    listed = {"prompts": prompts, "resourceTemplates": templates, "resources": resources}
    return {kind: other_view(kind, items) for kind, items in listed.items() if items is not None}


def others_sha256(others: Others) -> str:
    """The fingerprint of the other kinds (in canonical JSON, as :func:`others_view` has them)."""
    canonical = {kind: other_view(kind, items) for kind, items in others.items()}
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def review_sha256(tools_sha256: str, others: Others) -> str:
    """What an admin approves: the tools fingerprint alone when the module lists no prompts or
    resources (so a tools-only module keeps the token it always had), else both together."""
    if not any(others.values()):
        return tools_sha256
    data = f"{tools_sha256}:{others_sha256(others)}".encode()
    return hashlib.sha256(data).hexdigest()


def item_names(kind: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """A kind's items by their name as change lists show it ("prompt:greet")."""
    key = OTHER_KINDS[kind][1]
    return {f"{_ITEM_PREFIX[kind]}:{item.get(key)}": item for item in items}


def coverage(
    description: ModuleDescription,
) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """What approvals hold of a module besides its tools (kind, item count), and the kinds it
    declares that they cannot hold (static resources it lists only with kv)."""
    listed = others_view(description.prompts, description.resource_templates, description.resources)
    covered = tuple((kind, len(items)) for kind, items in listed.items())
    declared = isinstance(description.capabilities.get("resources"), dict)
    missing = ("resources",) if declared and description.resources is None else ()
    return covered, missing


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


def others_diff(
    approved: Others | None,
    current: Others,
    *,
    approved_label: str = "approved",
    current_label: str = "module",
) -> str:
    """The diff of each other kind that differs, labelled with its kind ("" when none does).
    ``approved`` None: never recorded (a pin covers tools only), every item shows as added."""
    parts = []
    for kind in OTHER_KINDS:
        before_items = (approved or {}).get(kind, ())
        after_items = current.get(kind, ())
        before = _text(other_view(kind, before_items), indent=2).splitlines()
        after = _text(other_view(kind, after_items), indent=2).splitlines()
        if before == after or not (before_items or after_items):
            continue
        lines = difflib.unified_diff(
            before,
            after,
            fromfile=f"{approved_label} {kind}",
            tofile=f"{current_label} {kind}",
            lineterm="",
        )
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


__all__ = [
    "OTHER_KINDS",
    "Others",
    "approved_view",
    "coverage",
    "definitions_diff",
    "definitions_sha256",
    "item_names",
    "other_view",
    "others_diff",
    "others_sha256",
    "others_view",
    "review_sha256",
    "tool_name_set",
]
