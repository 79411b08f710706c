"""Go stdio modules built from source for the tests, once per session and folder."""

from __future__ import annotations

import threading
from pathlib import Path

from smcp_box.tenancy.gobuild import build_go

REPO = Path(__file__).resolve().parents[2]
#: The example stdio tenant and the stdio fault fixture, both Go.
TASKS_SOURCE = REPO / "tenants" / "tasks"
STDIO_FAULTS_SOURCE = REPO / "tests" / "e2e" / "faults" / "stdio"

_lock = threading.Lock()
_built: dict[Path, bytes] = {}


def go_module(source: Path, scratch: Path) -> bytes:
    """The module built from ``source`` (GOOS=wasip1), built at most once per test session."""
    with _lock:
        if source not in _built:
            _built[source] = build_go(source, scratch / f"{source.name}.wasm").read_bytes()
        return _built[source]
