"""The scope vocabulary shared by API keys and OAuth tokens, and which method needs which.

A credential's scopes (:attr:`smcp_box.seams.Principal.scopes`) say which kinds of MCP feature it
may use. ``None`` means unrestricted (a key made without scopes, a public tenant). Methods that
every client needs to talk at all (``initialize``, ``ping``, notifications, ``logging/setLevel``)
need no scope, so a client holding only ``mcp:prompts`` can still connect and list prompts.
"""

from __future__ import annotations

from typing import Final

from smcp_box.errors import InsufficientScope
from smcp_box.seams import Principal

TOOLS: Final = "mcp:tools"
RESOURCES: Final = "mcp:resources"
PROMPTS: Final = "mcp:prompts"
#: Every scope a tenant offers, in the order consent pages and metadata list them.
ALL_SCOPES: Final[tuple[str, ...]] = (TOOLS, RESOURCES, PROMPTS)

#: Method prefix → the scope it needs. Tasks are deferred tool calls, so they need mcp:tools.
_BY_PREFIX: Final[tuple[tuple[str, str], ...]] = (
    ("tools/", TOOLS),
    ("tasks/", TOOLS),
    ("resources/", RESOURCES),
    ("prompts/", PROMPTS),
)


def required_scope(method: str) -> str | None:
    """The scope ``method`` needs, or None for methods every connected client may call."""
    for prefix, scope in _BY_PREFIX:
        if method.startswith(prefix):
            return scope
    return None


def parse_scopes(text: str) -> frozenset[str]:
    """Scopes from a space- or comma-separated list; unknown names are a ValueError that lists
    the known ones (a typo must not silently grant nothing)."""
    names = frozenset(part for part in text.replace(",", " ").split() if part)
    unknown = sorted(names - set(ALL_SCOPES))
    if unknown:
        raise ValueError(
            f"unknown scope {', '.join(unknown)}: known scopes are {', '.join(ALL_SCOPES)}"
        )
    return names


def check_scope(principal: Principal, method: str) -> None:
    """Raise :class:`~smcp_box.errors.InsufficientScope` (403) if ``principal`` may not call
    ``method``; the error names the missing scope for the ``WWW-Authenticate`` challenge."""
    needed = required_scope(method)
    if needed is None or principal.scopes is None or needed in principal.scopes:
        return
    raise InsufficientScope(
        f"Forbidden: {method} needs scope {needed}; this credential has "
        f"{' '.join(sorted(principal.scopes)) or 'no scopes'}",
        scope=needed,
    )
