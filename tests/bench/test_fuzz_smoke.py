"""bench/fuzz_http: its parsers on known bytes, and a short seeded run against a real box that
must come out clean (no 5xx, no traceback, UTF-8 log and audit)."""

from __future__ import annotations

import json
import random

import pytest

from bench import fuzz_http
from bench.fuzz_cases import http1_case


def test_pipelined_replies_split_by_length_chunks_and_head() -> None:
    data = (
        b"HTTP/1.1 401 \r\ncontent-length: 7\r\n\r\n"  # to a HEAD: no body follows
        b"HTTP/1.1 200 \r\ncontent-length: 2\r\n\r\nok"
        b"HTTP/1.1 400 \r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    replies, complete = fuzz_http.parse_replies(data, [b"HEAD", b"POST", b"POST"])
    assert complete
    assert [(reply.status, reply.body) for reply in replies] == [
        (401, b""),
        (200, b"ok"),
        (400, b"abc"),
    ]
    partial, complete = fuzz_http.parse_replies(data[:-5], [b"HEAD", b"POST", b"POST"])
    assert not complete
    assert len(partial) == 3


def test_tracebacks_are_named_by_logger_and_exception() -> None:
    record = "Unhandled exception\n  | Traceback (most recent call last):\n  | KeyError: 1\n  +---"
    log = "\n".join(
        [
            f"level=error logger=asyncio msg={json.dumps(record)}",
            'level=info logger=smcp_box.access msg="GET / 200"',
            "Traceback (most recent call last):",
        ]
    )
    assert fuzz_http.tracebacks(log) == {"asyncio: KeyError: 1": 1, "(unstructured stderr)": 1}


def test_cases_are_a_function_of_the_seed() -> None:
    def draw(seed: str) -> bytes:
        return http1_case(random.Random(seed), port=1, key="k", session="s").data

    assert draw("1:5") == draw("1:5")
    assert draw("1:5") != draw("1:6")


@pytest.mark.slow
def test_a_short_run_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz_http.main(["--cases", "150", "--seed", "3", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["5xx"] == 0
    assert figures["tracebacks"] == 0
    assert figures["log_utf8"]
    assert figures["audit_utf8"]
    assert figures["alive_after"]
    assert sum(figures["responses_by_class"].values()) > 100
