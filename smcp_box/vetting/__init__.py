"""Vetting of tenant modules' tool definitions: pinning and description scanning. No I/O.

The box hosts only vetted modules. Module hashes and the import allowlist are checked by the
sandbox; this package covers what a module *tells the model*: its ``tools/list`` reply.

- :func:`tools_fingerprint` / :func:`check_tool_pin` pin the tool definitions, so that a module
  cannot change what it tells the model after an admin reviewed it (a "rug pull").
- :func:`scan_tools` looks for instructions aimed at the model hidden in tool metadata (tool
  poisoning), and for invisible characters that hide text from a human reviewer.
- :func:`vet_tools` / :func:`format_report` combine both for the loader and ``smcp-box vet``.
"""

from .pins import PIN_KEY, PINNED_FIELDS, canonical_tools_json, check_tool_pin, tools_fingerprint
from .report import VetReport, format_report, vet_tools
from .scan import LONG_DESCRIPTION_CHARS, Finding, Severity, scan_tools

__all__ = [
    "LONG_DESCRIPTION_CHARS",
    "PINNED_FIELDS",
    "PIN_KEY",
    "Finding",
    "Severity",
    "VetReport",
    "canonical_tools_json",
    "check_tool_pin",
    "format_report",
    "scan_tools",
    "tools_fingerprint",
    "vet_tools",
]
