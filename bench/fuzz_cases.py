"""Seeded malformed inputs for the MCP endpoint: JSON-RPC bodies, header values and HTTP/1.x
requests as raw bytes. ``bench/fuzz_http.py`` sends them; ``bench/fuzz_h2.py`` reuses the bodies
and header values over HTTP/2.

Everything is drawn from one ``random.Random``, so a seed names a run exactly.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Final

MODERN: Final = "2026-07-28"
LEGACY_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
META_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
META_CAPS: Final = "io.modelcontextprotocol/clientCapabilities"
ACCEPT_BOTH: Final = "application/json, text/event-stream"

#: Strings that have broken JSON handling somewhere: lone surrogates (escaped, as JSON can only
#: carry them), non-BMP characters, controls, quotes, huge text.
_ODD_STRINGS: Final = (
    "",
    "\\ud800",
    "\\udfff",
    "\\ud83d\\ude00",
    "\\ude00\\ud83d",
    "x\\ud800y",
    "\\u0000",
    "\u202e\u0000\u0007",
    "\U0001f600",
    'quote"back\\\\slash',
    "a" * 70_000,
    "\\ud800" * 50,
)
_ODD_NUMBERS: Final = (
    "0",
    "-0",
    "1e999",
    "-1e999",
    "1e-999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 5000,
    "9" * 400,
    "1.5",
    "123456789012345678901234567890",
    "-9223372036854775809",
    "18446744073709551616",
    "0.1e1",
)
METHODS: Final = (
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "logging/setLevel",
    "completion/complete",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
    "resources/subscribe",
    "nope/nothing",
)
#: The utils tenant's tools (count_primes left out: it runs as long as it is asked to), and
#: names no tool has.
_TOOL_NAMES: Final = (
    "echo",
    "hello",
    "hash",
    "base64_encode",
    "base64_decode",
    "now",
    "convert_units",
    "json_query",
    "log_demo",
    "\\ud800",
    "",
    "n" * 300,
)
_ARGUMENT_KEYS: Final = ("text", "algorithm", "url_safe", "value", "from", "to", "json", "path")
#: Header values that broke, or could break, a header parser or whatever logs the value.
_ODD_HEADER_VALUES: Final = (
    b"",
    b" ",
    b"\xff\xfe",
    b"caf\xc3\xa9",
    b"\xed\xa0\x80",  # a surrogate encoded as if it were UTF-8
    b"a\x01b",
    b"x" * 9000,
    b"\t",
    b"null",
    b"[::1",
    b"*",
    b"%00",
    b'"quoted"',
    b"a, b, c",
)


def json_literal(rng: random.Random, depth: int = 0) -> str:
    """An arbitrary (maybe invalid) JSON value as text."""
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        kind = rng.randrange(5)
        if kind == 0:
            return rng.choice(_ODD_NUMBERS)
        if kind == 1:
            return '"' + rng.choice(_ODD_STRINGS) + '"'
        if kind == 2:
            return rng.choice(("true", "false", "null"))
        if kind == 3:
            return str(rng.randint(-(2**70), 2**70))
        return json.dumps("".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(8)))
    if roll < 0.65:
        items = [json_literal(rng, depth + 1) for _ in range(rng.randrange(4))]
        return "[" + ",".join(items) + "]"
    keys = [rng.choice(("a", "_meta", "name", "arguments", "\\ud800", "", "uri", "level"))]
    keys += [rng.choice(_ODD_STRINGS[:10]) for _ in range(rng.randrange(3))]
    pairs = [f'"{key}":{json_literal(rng, depth + 1)}' for key in keys]
    return "{" + ",".join(pairs) + "}"


def _id(rng: random.Random) -> str | None:
    roll = rng.randrange(10)
    if roll < 4:
        return str(rng.randint(0, 1000))
    if roll < 6:
        return '"' + rng.choice(_ODD_STRINGS) + '"'
    if roll < 8:
        return rng.choice((*_ODD_NUMBERS, "null", "true", "[1]", "{}"))
    return None  # no id: a notification


def _meta(rng: random.Random, era: str) -> str:
    version = MODERN if era == "modern" else rng.choice(LEGACY_VERSIONS)
    if rng.random() < 0.2:
        version = rng.choice(("1999-01-01", "\\ud800", "", MODERN))
        return f'{{"{META_VERSION}":"{version}","{META_CAPS}":{json_literal(rng)}}}'
    return f'{{"{META_VERSION}":"{version}","{META_CAPS}":{{}}}}'


def _params(rng: random.Random, method: str, era: str) -> str:
    roll = rng.randrange(8)
    fields: list[str] = []
    if era == "modern" and roll < 6:
        fields.append(f'"_meta":{_meta(rng, era)}')
    if method == "initialize":
        version = rng.choice((*LEGACY_VERSIONS, MODERN, "\\ud800", "x"))
        fields.append(f'"protocolVersion":"{version}","capabilities":{{}}')
        fields.append('"clientInfo":{"name":"fuzz","version":"0"}')
    elif method == "tools/call":
        name = rng.choice(_TOOL_NAMES)
        arguments = json_literal(rng)
        if rng.random() < 0.6:
            keys = rng.sample(_ARGUMENT_KEYS, rng.randrange(1, 4))
            arguments = "{" + ",".join(f'"{key}":{json_literal(rng)}' for key in keys) + "}"
        fields.append(f'"name":"{name}","arguments":{arguments}')
    elif method in ("resources/read", "resources/subscribe"):
        fields.append(f'"uri":{json_literal(rng)}')
    elif method == "logging/setLevel":
        fields.append(f'"level":{json_literal(rng)}')
    elif roll >= 6:
        fields.append(f'"x":{json_literal(rng)}')
    if roll == 7:
        return json_literal(rng)
    return "{" + ",".join(fields) + "}"


def jsonrpc_body(rng: random.Random, era: str) -> bytes:
    """One request body: mostly JSON-RPC shaped, with odd ids, methods, params and numbers."""
    roll = rng.randrange(100)
    if roll < 4:
        return b"{" * rng.choice((100, 3000, 100_000))
    if roll < 7:
        return ("[" * 50_000 + "]" * 50_000).encode()
    if roll < 10:
        return rng.randbytes(rng.randrange(1, 300))
    if roll < 12:
        return b"\xef\xbb\xbf" + b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    if roll < 14:
        return b""
    if roll < 17:
        return json_literal(rng).encode("utf-8", "surrogatepass")
    if roll < 19:
        return b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"y" * 5_000_000
    method = rng.choice(METHODS)
    if rng.random() < 0.15:
        method = rng.choice(_ODD_STRINGS[:10])
    version = rng.choice(('"2.0"',) * 8 + ('"1.0"', "2", "null"))
    parts = [f'"jsonrpc":{version}']
    request_id = _id(rng)
    if request_id is not None:
        parts.append(f'"id":{request_id}')
    parts.append(f'"method":"{method}"')
    if rng.random() < 0.85:
        parts.append(f'"params":{_params(rng, method, era)}')
    if rng.random() < 0.05:
        parts = ['"jsonrpc":"2.0"', f'"id":{_id(rng) or 1}', f'"result":{json_literal(rng)}']
    rng.shuffle(parts)
    text = "{" + ",".join(parts) + "}"
    if rng.random() < 0.05:
        text = "[" + text + "," + text + "]"
    return text.encode("utf-8", "surrogatepass")


def header_value(rng: random.Random, good: str) -> bytes:
    """Mostly the good value, else an odd one (or the good one with odd bytes added)."""
    roll = rng.random()
    if roll < 0.7:
        return good.encode()
    if roll < 0.85:
        return rng.choice(_ODD_HEADER_VALUES)
    return good.encode() + rng.choice(_ODD_HEADER_VALUES)


@dataclass
class Request:
    """One HTTP request, as fields the HTTP/1 and HTTP/2 senders both lay out."""

    method: str
    path: str
    era: str
    #: (name, value), in order; names may be odd too.
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


def mcp_request(rng: random.Random, *, port: int, key: str | None, session: str | None) -> Request:
    """A request to an MCP endpoint (both eras, with and without a key), mostly well formed
    except for one or two fields."""
    era = "modern" if rng.random() < 0.5 else "legacy"
    method = rng.choice(("POST",) * 8 + ("GET", "DELETE", "PUT", "OPTIONS", "PATCH", "HEAD"))
    path = rng.choice(
        ("/t/utils/mcp",) * 6
        + ("/t/notes/mcp", "/mcp", "/t/nope/mcp", "/t/%ff%fe/mcp", "/t/%ED%A0%80/mcp")
        + ("/t/utils/mcp?x=%ff", "/t/utils/mcp/", "//t/utils/mcp", "/healthz", "/", "/metrics")
        + ("/t/" + "u" * 5000 + "/mcp", "/t/utils/../utils/mcp", "/t/\xe9/mcp")
    )
    headers: list[tuple[bytes, bytes]] = []
    host = f"127.0.0.1:{port}"
    odd_hosts = (
        "",
        "exa mple",
        "[::1",
        "127.0.0.1:99999",
        "a@b",
        "utils.box.lan",
        "\xe9",
        "-",
        "..",
        "x" * 300,
        "127.0.0.1:80:80",
        "[fe80::1%eth0]",
    )
    if rng.random() < 0.15:
        host = rng.choice(odd_hosts)
    if rng.random() > 0.03:
        headers.append((b"Host", host.encode("utf-8")))
    if rng.random() < 0.03:
        headers.append((b"Host", b"second.host"))
    headers.append((b"Accept", header_value(rng, ACCEPT_BOTH)))
    headers.append((b"Content-Type", header_value(rng, "application/json")))
    if key is not None and rng.random() < 0.85:
        headers.append((b"Authorization", header_value(rng, f"Bearer {key}")))
    elif rng.random() < 0.3:
        headers.append((b"Authorization", header_value(rng, "Bearer smcp_nothing_here_1234")))
    if era == "modern" or rng.random() < 0.2:
        version = MODERN if era == "modern" else rng.choice(LEGACY_VERSIONS)
        headers.append((b"MCP-Protocol-Version", header_value(rng, version)))
    elif rng.random() < 0.5:
        headers.append((b"MCP-Protocol-Version", header_value(rng, rng.choice(LEGACY_VERSIONS))))
    if era == "modern":
        headers.append((b"Mcp-Method", header_value(rng, rng.choice(METHODS))))
        if rng.random() < 0.3:
            headers.append((b"Mcp-Name", header_value(rng, "echo")))
    if era == "legacy" and rng.random() < 0.6:
        sid = session if session and rng.random() < 0.7 else "not-a-session"
        headers.append((b"Mcp-Session-Id", header_value(rng, sid)))
    if rng.random() < 0.2:
        origin = rng.choice(
            ("http://127.0.0.1", "null", "https://evil.example", "http://[::1", "\xff", "")
        )
        headers.append((b"Origin", origin.encode("utf-8")))
    if rng.random() < 0.1:
        headers.append((b"Last-Event-ID", header_value(rng, "1-0")))
    if rng.random() < 0.05:
        headers.append((b"X-Request-Id", header_value(rng, "fuzz-1")))
    if rng.random() < 0.05:
        headers.append((rng.choice((b"X\xffBad", b"Mcp-Param-X", b"Expect")), b"100-continue"))
    rng.shuffle(headers)
    body = jsonrpc_body(rng, era) if method in ("POST", "PUT", "PATCH") else b""
    return Request(method=method, path=path, era=era, headers=headers, body=body)


def _head(request: Request, version: bytes, extra: list[tuple[bytes, bytes]]) -> bytes:
    lines = [request.method.encode() + b" " + request.path.encode("utf-8") + b" " + version]
    lines += [name + b": " + value for name, value in [*request.headers, *extra]]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _chunked(body: bytes, rng: random.Random) -> bytes:
    """The body in chunks, often broken: bad sizes, missing terminator, extensions, trailers."""
    out = bytearray()
    step = max(1, len(body) // rng.randrange(1, 5)) if body else 1
    for start in range(0, len(body), step):
        piece = body[start : start + step]
        size = b"%x" % len(piece)
        roll = rng.random()
        if roll < 0.1:
            size = b"zz"
        elif roll < 0.15:
            size = b"%x" % (len(piece) + 3)
        elif roll < 0.2:
            size += b";ext=1"
        elif roll < 0.22:
            size = b"f" * 20
        out += size + b"\r\n" + piece + b"\r\n"
    roll = rng.random()
    if roll < 0.7:
        out += b"0\r\n\r\n"
    elif roll < 0.8:
        out += b"0\r\nTrailer-X: 1\r\n\r\n"
    elif roll < 0.9:
        out += b"0\r\n"
    return bytes(out)


@dataclass
class RawCase:
    """One HTTP/1.x case: the bytes to send and how many responses at most may come back."""

    kind: str
    data: bytes
    #: The request line of each request in ``data``, in order (empty for garbage).
    lines: list[bytes] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return max(1, len(self.lines))


def http1_case(rng: random.Random, *, port: int, key: str | None, session: str | None) -> RawCase:
    """HTTP/1.1 or 1.0, pipelined or not, Content-Length or chunked (maybe broken), or a request
    line that is not HTTP at all."""
    roll = rng.randrange(100)
    if roll < 3:
        garbage = rng.choice(
            (
                rng.randbytes(rng.randrange(1, 200)),
                b"GET / HTTP/9.9\r\n\r\n",
                b"POST /t/utils/mcp HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                b"POST /t/utils/mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab",
                b"GET /t/utils/mcp HTTP/1.1\r\nHost: a\r\n folded: yes\r\n\r\n",
                b"GET\r\n\r\n",
                b"\r\n\r\n\r\n",
                b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(40),
            )
        )
        return RawCase("garbage", garbage)
    count = 1 if roll < 80 else rng.randrange(2, 5)
    data = bytearray()
    lines: list[bytes] = []
    kind = "http/1.1"
    for index in range(count):
        request = mcp_request(rng, port=port, key=key, session=session)
        version = b"HTTP/1.1"
        if rng.random() < 0.1:
            version, kind = b"HTTP/1.0", "http/1.0"
        extra: list[tuple[bytes, bytes]] = []
        body = request.body
        framing = rng.random()
        if body and framing < 0.12:
            kind = "chunked"
            extra.append((b"Transfer-Encoding", rng.choice((b"chunked", b"gzip, chunked"))))
            body = _chunked(body, rng)
        elif body or request.method == "POST":
            length = len(body)
            if framing < 0.16:
                length = max(0, length - rng.randrange(1, 10))  # short: the rest is garbage
            elif framing < 0.18:
                length += rng.randrange(1, 4)  # long: the server waits for the body timeout
            extra.append((b"Content-Length", str(length).encode()))
            if framing > 0.98:
                extra.append((b"Transfer-Encoding", b"chunked"))  # both: smuggling shape
        if rng.random() < 0.1 and index == count - 1:
            extra.append((b"Connection", rng.choice((b"close", b"keep-alive", b"upgrade"))))
        head = _head(request, version, extra)
        lines.append(head.split(b"\r\n", 1)[0])
        data += head + body
    if count > 1:
        kind = "pipelined"
    return RawCase(kind, bytes(data), lines)


def describe(data: Any) -> str:
    """A short printable preview of a case's bytes (for the report)."""
    text = bytes(data[:120]).decode("latin-1")
    return text.encode("unicode_escape").decode("ascii")
