"""Structured logs to stderr, friendly to journald, with request ids and no secrets.

One line per record: ``level=info logger=smcp_box.web request_id=… msg="…"``. Under systemd
(``$JOURNAL_STREAM`` set) each line starts with a ``<N>`` syslog priority so journald files it at
the right level. A redaction filter masks anything shaped like an API key or bearer token in the
final text, as a last line of defence: code should not log secrets in the first place.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from typing import TextIO

#: The id of the HTTP request being served, set by the web layer.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "smcp_request_id", default=None
)

_SECRET_PATTERNS = (
    re.compile(r"smcp_[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
)
_SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def redact(text: str) -> str:
    text = _SECRET_PATTERNS[0].sub("smcp_[REDACTED]", text)
    return _SECRET_PATTERNS[1].sub(r"\1[REDACTED]", text)


def _utf8_safe(text: str) -> str:
    """``text`` with any lone surrogate written as its ``\\udXXX`` escape, so the line encodes
    as UTF-8 on any stream: a value a client sent can reach a log line, and a surrogate in it
    would fail a strict stream's write (and lose the whole line) or reach the journal as
    invalid UTF-8. The common case, plain ASCII, costs one scan."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, *, journald: bool) -> None:
        super().__init__()
        self._journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        parts = [f"level={record.levelname.lower()}", f"logger={record.name}"]
        request_id = request_id_var.get()
        if request_id:
            parts.append(f"request_id={request_id}")
        parts.append(f"msg={json.dumps(redact(message), ensure_ascii=False)}")
        line = _utf8_safe(" ".join(parts))
        if self._journald:
            return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{line}"
        return line


def configure_logging(level: str, *, stream: TextIO | None = None) -> None:
    """Install the box's formatter on the root logger (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_smcp_box", False):
            root.removeHandler(existing)
    handler._smcp_box = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiosqlite logs every statement with its parameters at debug level; parameters can hold
    # values that are only protected by encryption (and not at all with store.encrypt=false).
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # httpx logs every request it makes at info level: the CLI's admin calls would print a line
    # each on stderr around the command's own output.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
