"""Pinning of tool definitions: a fingerprint of what the model sees, checked against tenant.toml.

A module's hash pin already fixes its code, but the same code can describe its tools differently
depending on config, and a re-uploaded module gets a new hash anyway. The fingerprint pins the
*reviewed text and schemas* themselves, so an admin re-vets whenever they change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from smcp_box.errors import ModuleRejected

#: The tenant.toml key that holds the pin (the lead wires it into the tenant.toml parser).
PIN_KEY = "tools_sha256"

#: Fields of a tool definition that reach the model or steer how it uses the tool. Anything else
#: (``_meta``, ``icons``, vendor extensions) is left out so that cosmetic additions do not force
#: a re-vet; the scanner still only trusts what is pinned.
PINNED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _canonical(value: Any) -> str:
    # sort_keys makes key order irrelevant; compact separators and ensure_ascii=False make the
    # text unique for a given value, so equal definitions always hash equal.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _pinned_view(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {key: tool[key] for key in PINNED_FIELDS if key in tool}


def canonical_tools_json(tools: Sequence[Mapping[str, Any]]) -> str:
    """The canonical JSON text the fingerprint is taken of: a list sorted by tool name.

    Ties (duplicate or missing names) are broken by each tool's own canonical text, so the
    order in which a module lists its tools never changes the result.
    """
    keyed = [(str(view.get("name", "")), _canonical(view)) for view in map(_pinned_view, tools)]
    # Each view's canonical text is already canonical JSON, so the list is joined from them.
    return "[" + ",".join(text for _, text in sorted(keyed)) + "]"


def tools_fingerprint(tools: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 hex of :func:`canonical_tools_json`."""
    # surrogatepass: json.loads accepts lone surrogates ("\ud800"), which strict UTF-8 cannot
    # encode; hashing must not fail on a reply the module was able to produce.
    data = canonical_tools_json(tools).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def tool_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """The tools' names in listing order; a missing or non-string name is shown as its repr."""
    return [_name_of(tool, i) for i, tool in enumerate(tools)]


def _name_of(tool: Mapping[str, Any], index: int) -> str:
    name = tool.get("name")
    return name if isinstance(name, str) else f"<tool #{index} without a name>"


def pin_problem(
    tenant: str,
    pinned: str | None,
    tools: Sequence[Mapping[str, Any]],
    pinned_names: Sequence[str] | None = None,
) -> str | None:
    """Why the tools do not match the pin, as a message for the admin; None when they match."""
    actual = tools_fingerprint(tools)
    how = (
        f"Review the tools (`smcp-box vet TENANT_DIR` lists them and prints the new pin), then "
        f"set {PIN_KEY} in the tenant's tenant.toml to the pin it prints."
    )
    if pinned is None:
        return (
            f"tenant {tenant!r}: its tool definitions are not pinned, so they were never vetted "
            f"(they fingerprint as {actual}). {how}"
        )
    # Admins paste pins by hand; case and surrounding blanks carry no meaning in a hex digest.
    wanted = pinned.strip().lower()
    if wanted == actual:
        return None
    if not _HEX64.fullmatch(wanted):
        return (
            f"tenant {tenant!r}: {PIN_KEY} = {pinned!r} is not a SHA-256 hex digest (64 hex "
            f"digits); the tools fingerprint as {actual}. {how}"
        )
    detail = ""
    if pinned_names is not None:
        current = set(tool_names(tools))
        before = set(pinned_names)
        added, removed = sorted(current - before), sorted(before - current)
        parts = []
        if added:
            parts.append("added " + ", ".join(added))
        if removed:
            parts.append("removed " + ", ".join(removed))
        # Same names but a different fingerprint: some definition's text or schema changed.
        detail = (
            " (" + ("; ".join(parts) if parts else "same tool names, a definition changed") + ")"
        )
    return (
        f"tenant {tenant!r}: its tool definitions changed since vetting{detail}: pinned "
        f"{PIN_KEY} {wanted}, but the module's tools fingerprint as {actual}. {how}"
    )


def check_tool_pin(
    tenant: str,
    pinned: str | None,
    tools: Sequence[Mapping[str, Any]],
    pinned_names: Sequence[str] | None = None,
) -> None:
    """Raise ModuleRejected unless ``tools`` fingerprint as ``pinned``.

    A missing pin is refused too: unpinned tools were never vetted. ``pinned_names`` (the tool
    names recorded at vetting time, when known) lets the message say which tools were added or
    removed; a hash alone cannot tell.
    """
    problem = pin_problem(tenant, pinned, tools, pinned_names)
    if problem is not None:
        raise ModuleRejected(
            problem,
            data={"tenant": tenant, "pinned": pinned, "actual": tools_fingerprint(tools)},
        )


__all__ = [
    "PINNED_FIELDS",
    "PIN_KEY",
    "canonical_tools_json",
    "check_tool_pin",
    "pin_problem",
    "tool_names",
    "tools_fingerprint",
]
