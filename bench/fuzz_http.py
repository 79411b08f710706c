"""``python -m bench.fuzz_http``: send a few thousand malformed requests to a real box over raw
TCP on loopback and count what comes back.

    python -m bench.fuzz_http                     # 3000 cases, seed 1
    python -m bench.fuzz_http --seed 7 --cases 500 --h2-share 0.3

The box runs as ``smcp-box serve`` in a subprocess (scratch state, the repository's utils and
notes tenants, their built wasm modules), with a key for ``utils`` and one legacy session. Each
case is drawn from its own ``random.Random(f"{seed}:{index}")``, so a seed names the same cases
whatever the concurrency. Cases are HTTP/1.1 and 1.0, pipelined, with Content-Length or chunked
(often broken) framing, odd Host/Origin/Content-Type/Accept/MCP-Protocol-Version/Mcp-Session-Id
headers, huge, deep and huge-number JSON, lone surrogates in ids, methods and params, both eras,
with and without the key; and h2c (prior knowledge and ``Upgrade: h2c``) with the same requests,
streams reset mid-body, header oddities and frames no client should send.

It prints responses by status class, every 5xx, the tracebacks in the box's log, MCP-endpoint
refusals whose body is not a JSON-RPC error, and whether the log, the audit export and /metrics
are valid UTF-8; it exits 1 when any 5xx or traceback was seen. Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.fuzz_cases import ACCEPT_BOTH, RawCase, describe, http1_case
from bench.fuzz_h2 import H2Outcome, h2_case
from bench.peers.box import BoxServer
from bench.procs import REPO

IDLE_S = 2.0
#: How long the box may take to answer /healthz after a run: the header deadline (10 s by
#: default) closes what the cases left half-sent, and with it their hold on the address's cap.
HEALTH_PATIENCE_S = 15.0
#: "KeyError: 1", "werkzeug.exceptions.BadHost: 400 Bad Request: …", "UnicodeError".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Host)\b")
#: RFC 9112 §6.1: a transfer coding the server does not implement may get 501 (h11 said so;
#: llhttp, the box's parser since, refuses it with 400).
UNSUPPORTED_CODING = re.compile(rb"(?im)^transfer-encoding: *(?!chunked\r$)")


@dataclass
class Reply:
    status: int | None
    headers: dict[str, str]
    body: bytes


def parse_replies(data: bytes, methods: list[bytes]) -> tuple[list[Reply], bool]:
    """HTTP/1.x responses in ``data`` to requests with ``methods``, in order; the flag says
    whether the last one is complete."""
    replies: list[Reply] = []
    rest = data
    while rest:
        bodiless = len(replies) < len(methods) and methods[len(replies)] == b"HEAD"
        head, sep, after = rest.partition(b"\r\n\r\n")
        if not sep:
            return replies, False
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if status is not None and 100 <= status < 200 and status != 101:
            rest = after
            continue
        if bodiless or status in (204, 304):
            body, rest = b"", after
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, rest, complete = _dechunk(after)
            if not complete:
                replies.append(Reply(status, headers, body))
                return replies, False
        elif "content-length" in headers and headers["content-length"].isdigit():
            size = int(headers["content-length"])
            body, rest = after[:size], after[size:]
            if len(body) < size:
                replies.append(Reply(status, headers, body))
                return replies, False
        else:
            body, rest = after, b""
        replies.append(Reply(status, headers, body))
    return replies, True


def _dechunk(data: bytes) -> tuple[bytes, bytes, bool]:
    body = bytearray()
    rest = data
    while True:
        line, sep, after = rest.partition(b"\r\n")
        if not sep:
            return bytes(body), b"", False
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return bytes(body), b"", False
        if size == 0:
            _, sep, rest = after.partition(b"\r\n")
            return bytes(body), rest, bool(sep)
        if len(after) < size + 2:
            return bytes(body), b"", False
        body += after[:size]
        rest = after[size + 2 :]


async def send_raw(port: int, case: RawCase) -> list[Reply]:
    methods = [line.split(b" ", 1)[0] for line in case.lines]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = bytearray()
    try:
        writer.write(case.data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), IDLE_S)
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            data += chunk
            replies, complete = parse_replies(bytes(data), methods)
            if complete and len(replies) >= case.requests:
                break
            if replies and replies[-1].status == 101:
                break
    finally:
        writer.close()
    return parse_replies(bytes(data), methods)[0]


@dataclass
class Tally:
    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    classes: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    no_reply: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)
    bad_refusals: collections.Counter[str] = field(default_factory=collections.Counter)
    bad_refusal_samples: dict[str, str] = field(default_factory=dict)
    harness_errors: list[str] = field(default_factory=list)
    #: 501s for a Transfer-Encoding other than chunked: the status RFC 9112 §6.1 gives.
    unsupported_coding: int = 0

    def reply(
        self,
        kind: str,
        status: int | None,
        body: bytes,
        preview: str,
        *,
        mcp: bool,
        coding_refused: bool = False,
    ) -> None:
        if status is None:
            self.no_reply[kind] += 1
            return
        self.statuses[status] += 1
        self.classes[f"{status // 100}xx"] += 1
        if status == 501 and coding_refused:
            self.unsupported_coding += 1
        elif status >= 500:
            self.server_errors.append(f"{kind} {status}: {preview}")
        if mcp and status >= 400 and not _jsonrpc_error(body):
            # An empty body is the HTTP parser's refusal (h11, h2), before any app code.
            label = f"{kind} {status}{' (parser, empty body)' if not body else ''}"
            self.bad_refusals[label] += 1
            self.bad_refusal_samples.setdefault(label, preview)


def _jsonrpc_error(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "id" not in message:
        return False
    error = message.get("error")
    return (
        isinstance(error, dict)
        and type(error.get("code")) is int
        and isinstance(error.get("message"), str)
    )


def _is_mcp_path(request_line: bytes) -> bool:
    parts = request_line.split(b" ")
    # HEAD answers carry no body to check.
    endpoints = (b"/mcp", b"/t/utils/mcp", b"/t/notes/mcp")
    return len(parts) > 1 and parts[0] != b"HEAD" and parts[1] in endpoints


async def run_case(index: int, args: argparse.Namespace, box: FuzzBox, tally: Tally) -> None:
    rng = random.Random(f"{args.seed}:{index}")
    key = box.key if rng.random() < 0.7 else None
    try:
        await _run_case(index, rng, key, box, tally, h2=rng.random() < args.h2_share)
    except Exception as exc:  # the harness's own failure: counted, never fatal
        tally.cases["harness-error"] += 1
        tally.harness_errors.append(f"case {index}: {exc!r}")


async def _run_case(
    index: int, rng: random.Random, key: str | None, box: FuzzBox, tally: Tally, *, h2: bool
) -> None:
    if h2:
        outcome = await h2_case(rng, port=box.port, key=key, session=box.session)
        _tally_h2(outcome, tally, index)
        return
    case = http1_case(rng, port=box.port, key=key, session=box.session)
    tally.cases[case.kind] += 1
    replies = await send_raw(box.port, case)
    lines = case.lines
    if not replies:
        tally.no_reply[case.kind] += 1
    for number, reply in enumerate(replies):
        line = lines[number] if number < len(lines) else b""
        preview = f"case {index}: {describe(case.data)}"
        tally.reply(
            case.kind,
            reply.status,
            reply.body,
            preview,
            mcp=_is_mcp_path(line),
            coding_refused=UNSUPPORTED_CODING.search(case.data) is not None,
        )


def _tally_h2(outcome: H2Outcome, tally: Tally, index: int) -> None:
    tally.cases[outcome.kind] += 1
    # A GOAWAY (h2's answer to a malformed frame or header block) ends every stream unanswered.
    silent = outcome.kind + (" (goaway)" if (outcome.ended or "").startswith("goaway") else "")
    if not outcome.replies:
        tally.no_reply[silent] += 1
    for reply in outcome.replies:
        if reply.status is None:
            if not reply.done:
                tally.no_reply[silent] += 1
            continue  # reset by us (or refused by the server): no status is owed
        preview = f"case {index} ({outcome.ended}): {reply.headers} {bytes(reply.body[:120])!r}"
        tally.reply(outcome.kind, reply.status, bytes(reply.body), preview, mcp=False)


class FuzzBox:
    """A real box in a subprocess, its key for ``utils`` and one legacy session."""

    def __init__(self, workdir: Path) -> None:
        tenants = workdir / "tenants"
        for name in ("utils", "notes"):
            shutil.copytree(REPO / "tenants" / name, tenants / name)
        settings = {
            "SMCP_BOX_LOG_LEVEL": "info",
            # Bodies that never arrive hold a case no longer than this.
            "SMCP_BOX_SERVER_BODY_TIMEOUT_S": "2",
        }
        self.server = BoxServer(workdir, tenants, settings=settings, name="fuzz-box")
        self.key = ""
        self.session: str | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start_box()
        self.key = self.server.create_key("utils")
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Accept": ACCEPT_BOTH,
            "Content-Type": "application/json",
        }
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "0"},
        }
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        reply = httpx.post(self.server.url("utils"), headers=headers, json=message, timeout=10)
        reply.raise_for_status()
        self.session = reply.headers["mcp-session-id"]

    def health(self, patience_s: float = HEALTH_PATIENCE_S) -> bool:
        """Whether ``/healthz`` answers 200 within ``patience_s``. Right after a run, the
        connections that cases left half-sent still count against the per-address cap (a new
        one is refused with 429 at accept) until the header deadline closes them: the box is
        alive when it recovers from that, not when it answers at once."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                if httpx.get(f"{self.server.base_url}/healthz", timeout=5).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    def metrics(self) -> bytes:
        return httpx.get(f"{self.server.base_url}/metrics", timeout=10).content

    def stop(self) -> int | None:
        return self.server.stop()

    def audit_export(self) -> bytes:
        out = self.server.workdir / "audit.jsonl"
        self.server.cli("audit", "export", "-o", str(out))
        return out.read_bytes()

    def log_bytes(self) -> bytes:
        return self.server.log_path.read_bytes()


def tracebacks(log: str) -> collections.Counter[str]:
    """Each log record holding a traceback, named by its logger and its exception's line."""
    found: collections.Counter[str] = collections.Counter()
    for line in log.splitlines():
        if "Traceback (most recent call last)" not in line:
            continue
        if not line.startswith("level="):
            found["(unstructured stderr)"] += 1
            continue
        logger = next((p[7:] for p in line.split(" ") if p.startswith("logger=")), "?")
        text = json.loads(line.split(" msg=", 1)[1])
        found[f"{logger}: {_exception_line(text)}"] += 1
    return found


def _exception_line(text: str) -> str:
    """The last line naming an exception (exception groups draw boxes around theirs)."""
    for raw in reversed(text.splitlines()):
        candidate = raw.strip(" |+-")
        if EXCEPTION_LINE.match(candidate):
            return candidate[:160]
    return "?"


def _utf8_ok(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def run(args: argparse.Namespace, box: FuzzBox, tally: Tally) -> None:
    queue = iter(range(args.cases))

    async def worker() -> None:
        for index in queue:
            await run_case(index, args, box, tally)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))


def report(tally: Tally, box: FuzzBox, log: bytes, audit: bytes, metrics: bytes) -> dict[str, Any]:
    text = log.decode("utf-8", "replace")
    found = tracebacks(text)
    error_lines = sum(1 for line in text.splitlines() if "level=error" in line)
    return {
        "cases": dict(sorted(tally.cases.items())),
        "responses_by_class": dict(sorted(tally.classes.items())),
        "responses_by_status": dict(sorted(tally.statuses.items())),
        "no_reply_by_kind": dict(sorted(tally.no_reply.items())),
        "5xx": len(tally.server_errors),
        "5xx_samples": tally.server_errors[:10],
        "501_unsupported_transfer_coding": tally.unsupported_coding,
        "tracebacks": sum(found.values()),
        "tracebacks_by_exception": dict(found.most_common()),
        "error_log_lines": error_lines,
        "harness_errors": tally.harness_errors[:10],
        "mcp_refusals_not_jsonrpc": dict(tally.bad_refusals),
        "mcp_refusal_samples": tally.bad_refusal_samples,
        "log_utf8": _utf8_ok(log),
        "audit_utf8": _utf8_ok(audit),
        "audit_rows": audit.count(b"\n"),
        "metrics_utf8": _utf8_ok(metrics),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_http", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--h2-share", type=float, default=0.2, help="share of h2c cases")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="smcp-fuzz-"))
    box = FuzzBox(workdir)
    tally = Tally()
    started = time.monotonic()
    box.start()
    try:
        asyncio.run(run(args, box, tally))
        alive = box.health()
        metrics = box.metrics()
    finally:
        exit_code = box.stop()
    figures = report(tally, box, box.log_bytes(), box.audit_export(), metrics)
    figures.update(
        seed=args.seed,
        case_count=args.cases,
        seconds=round(time.monotonic() - started, 1),
        alive_after=alive,
        exit_code=exit_code,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            shown = json.dumps(value, indent=2) if isinstance(value, dict | list) else value
            print(f"{name}: {shown}")
        print(f"box log: {box.server.log_path}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = figures["5xx"] or figures["tracebacks"] or not alive or exit_code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
