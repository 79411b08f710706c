"""Log lines: structure, request ids, journald priorities and redaction of secrets."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from smcp_box.logs import configure_logging, redact, request_id_var


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_redacts_api_keys_and_bearer_tokens() -> None:
    secret = "smcp_abcDEF0123456789_xyzXYZ9876543210"
    text = redact(f"key {secret} header Authorization: Bearer abcdefghijklmnop")
    assert secret not in text
    assert "abcdefghijklmnop" not in text
    assert "smcp_[REDACTED]" in text
    assert "Bearer [REDACTED]" in text


def test_lines_carry_level_logger_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    token = request_id_var.set("r-42")
    try:
        logging.getLogger("smcp_box.test").warning("hello %s", "smcp_" + "k" * 30)
        logging.getLogger("smcp_box.test").debug("hidden")
    finally:
        request_id_var.reset(token)
    line = stream.getvalue().strip()
    assert line.startswith("level=warning logger=smcp_box.test request_id=r-42 msg=")
    assert "kkkk" not in line
    assert "hidden" not in stream.getvalue()


def test_a_lone_surrogate_is_escaped_so_the_line_stays_utf8(tmp_path: Path) -> None:
    # A strict UTF-8 file, as a log file handler opens it: an unescaped surrogate would make
    # the write fail and the line be lost.
    path = tmp_path / "box.log"
    with path.open("w", encoding="utf-8", errors="strict") as stream:
        configure_logging("info", stream=stream)
        logging.getLogger("smcp_box.test").warning("method %s é", "x\ud800y")
    line = path.read_bytes().decode("utf-8")
    assert r"x\ud800y é" in line


def test_journald_priority_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    logging.getLogger("x").error("boom")
    assert stream.getvalue().startswith("<3>level=error")


def test_sql_statements_stay_out_of_debug_logs() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    logging.getLogger("aiosqlite").debug("executing INSERT ... ('a secret value',)")
    logging.getLogger("smcp_box.x").debug("visible")
    assert "secret value" not in stream.getvalue()
    assert "visible" in stream.getvalue()


def test_httpx_request_lines_stay_out_of_the_cli_output() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    logging.getLogger("httpx").info("HTTP Request: GET http://smcp-box-admin/v1/status")
    logging.getLogger("httpx").warning("a real problem")
    assert "HTTP Request" not in stream.getvalue()
    assert "a real problem" in stream.getvalue()
