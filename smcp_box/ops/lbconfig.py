"""``smcp-box lb-config``: the HAProxy 2.6 configuration for a fleet of boxes on one PostgreSQL.

The output is complete: ``haproxy -c -f FILE`` accepts it as printed, and it needs no editing
for the common case. What it does, and why each choice (docs/scale-out.md explains the same to
an admin):

* **Routing by session id.** Handshake-era session ids are ``<box_id>-<random>`` and box ids
  never contain ``-``, so one ``-m beg <box_id>-`` ACL per box sends a session's follow-ups to
  its owner without a table. A request without a session id (every stateless-era call, every
  ``initialize``) goes to the box with the fewest open connections (``leastconn``: GET streams
  stay open for hours, so counting connections spreads them better than taking turns).
* **Failover.** ``/readyz`` is the health check: a draining box answers it 503 and is taken out
  of rotation while its calls finish. A dead box fails the check within about two seconds
  (``inter 1s``, ``fall 2``; one failed connection fails a check at once, ``observe layer4``).
  Until then, and for requests caught by the death, ``retry-on conn-failure empty-response
  response-timeout`` with ``option redispatch 1`` resends the request to another box (the
  request body is buffered, ``option http-buffer-request``, so a POST can be sent again). A
  session's request that lands on another box is taken over there: same id, no re-initialize.
* **Rate limits.** Stick tables count requests per credential and per client address.
  The credential is keyed by the SHA-256 of its ``Authorization`` header, so HAProxy's memory
  and its stats socket never hold a credential. Over the limit the answer is 429 with
  ``Retry-After``; each box's own limiter stays as the backstop.
* **Streams.** ``timeout server``/``timeout client`` are inactivity timeouts: a GET stream
  stays open as long as the box's SSE keep-alive comments (every 15 s by default) flow, and a
  slow tool call or a durable task's synchronous wait (at most 600 s) finishes before either.
  ``timeout tunnel`` covers connections upgraded away from HTTP.
* **Keep-alive to the boxes** (``option http-keep-alive``, ``http-reuse safe``) rather than
  ``http-server-close``: a connection per call would cost each box a TCP accept and a fresh
  HTTP parser on its hot path. An idle connection the box closed under HAProxy is caught by the
  same retries.

The boxes come as (id, ``host:port``) pairs, from ``--box`` or from the fleet's heartbeats
(ops/lb_command.py, the command itself), checked by :func:`boxes_from_pairs`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from smcp_box import __version__
from smcp_box.config import BOX_ID_PATTERN
from smcp_box.errors import ConfigError
from smcp_box.tenancy.manifest import TENANT_NAME_PATTERN

#: Longest synchronous wait a request may have on a box: a durable task's tool called without
#: task negotiation runs to its end (``[tasks] max_timeout_s`` is at most 600 s), plus margin.
STREAM_TIMEOUT_S: Final = 660
#: A request line and headers must arrive within this; matches the box's header_timeout_s.
REQUEST_HEAD_TIMEOUT_S: Final = 10
#: Health checks: a dead box misses ``FALL`` checks ``INTERVAL_MS`` apart before it is down.
CHECK_INTERVAL_MS: Final = 1000
CHECK_FALL: Final = 2
CHECK_RISE: Final = 2
#: Connection attempts per request (the first one included is not counted by HAProxy).
RETRIES: Final = 3
#: Entries of each rate table: one per credential or address seen within the window.
RATE_TABLE_SIZE: Final = "1m"


@dataclass(frozen=True)
class BoxAddress:
    """One box as HAProxy reaches it."""

    box_id: str
    host: str
    port: int

    @property
    def server_address(self) -> str:
        # HAProxy takes the last colon as the port separator, so IPv6 needs its own prefix.
        if ":" in self.host:
            return f"ipv6@{self.host}:{self.port}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per window; 0 turns a limit off."""

    per_key: int = 0
    per_ip: int = 0
    window_s: int = 1

    @property
    def any(self) -> bool:
        return self.per_key > 0 or self.per_ip > 0


@dataclass(frozen=True)
class LbOptions:
    listen_host: str
    listen_port: int
    #: PEM with the certificate chain and its key (or the key in ``<file>.key``): HTTPS, h2.
    tls_cert: Path | None = None
    rates: RateLimits = RateLimits()
    #: Tenant name -> the ids of the boxes that serve ``/t/<tenant>/``.
    tenant_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: HAProxy's runtime API (``show stat``, ``disable server``), for admins and the bench.
    stats_socket: Path | None = None
    #: (user, group) HAProxy's workers run as once it has bound its ports; None: as started.
    run_as: tuple[str, str] | None = None


# --- input checks ---------------------------------------------------------------------------


def split_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port), or a ConfigError naming ``what``."""
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)", text)
    plain = re.fullmatch(r"([A-Za-z0-9_.-]*):(\d+)", text)
    found = bracketed or plain
    if found is None:
        raise ConfigError(
            f"{what} {text!r} is not HOST:PORT: give a host name or address and a port, "
            "e.g. 10.0.0.11:8765 (an IPv6 address in brackets: [fd00::11]:8765)"
        )
    host, port = found[1], int(found[2])
    if not 1 <= port <= 65_535:
        raise ConfigError(f"{what} {text!r}: the port must be 1-65535")
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{what} {text!r}: {host!r} is not an IPv6 address") from None
    return host, port


def boxes_from_pairs(pairs: Iterable[tuple[str, str]]) -> list[BoxAddress]:
    """Check (box id, ``HOST:PORT``) pairs, from ``--box`` or from the fleet's heartbeats."""
    boxes: list[BoxAddress] = []
    for box_id, address in pairs:
        if not re.fullmatch(BOX_ID_PATTERN, box_id):
            raise ConfigError(
                f"box id {box_id!r} must be 1-32 letters, digits or underscores (no '-': "
                "session ids are <box_id>-<random> and HAProxy routes them by that prefix); "
                "it must equal the box's [cluster] box_id"
            )
        host, port = split_address(address, f"box {box_id}'s address")
        if not host:
            raise ConfigError(f"box {box_id}'s address {address!r} names no host")
        boxes.append(BoxAddress(box_id, host, port))
    if not boxes:
        raise ConfigError("no boxes: give each one as --box ID=HOST:PORT")
    for attribute, what in (("box_id", "id"), ("server_address", "address")):
        values = [getattr(box, attribute) for box in boxes]
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ConfigError(f"two boxes have the same {what}: {', '.join(repeated)}")
    return boxes


def parse_box_flag(text: str) -> tuple[str, str]:
    """``--box ID=HOST:PORT`` -> (id, address); the pair is checked by boxes_from_pairs."""
    box_id, sep, address = text.partition("=")
    if not sep:
        raise ConfigError(f"--box {text!r}: write it as ID=HOST:PORT, e.g. box1=10.0.0.11:8765")
    return box_id, address


def check_tls_cert(path: Path) -> Path:
    """The certificate file HAProxy will load: readable PEM holding a certificate, and a
    private key in it or in ``<path>.key`` (HAProxy's two layouts)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(
            f"--tls-cert {path}: cannot read it ({exc.strerror}); HAProxy needs a PEM file "
            "with the certificate chain and the private key, readable by its user"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"--tls-cert {path}: no PEM certificate in it")
    key_file = path.with_name(path.name + ".key")
    if "PRIVATE KEY-----" not in text and not key_file.is_file():
        raise ConfigError(
            f"--tls-cert {path}: no private key in it nor in {key_file}; put the key after "
            f"the certificate chain (cat server.crt server.key > {path.name})"
        )
    return path.resolve()


def load_tenant_map(path: Path, box_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """A TOML file of ``tenant = ["box1", "box2"]`` lines: which boxes serve which tenant."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--tenant-map {path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--tenant-map {path}: not valid TOML ({exc})") from None
    mapping: dict[str, tuple[str, ...]] = {}
    for tenant, boxes in table.items():
        if not TENANT_NAME_PATTERN.match(tenant):
            raise ConfigError(f"--tenant-map {path}: {tenant!r} is not a tenant name")
        if (
            not isinstance(boxes, list)
            or not boxes
            or not all(isinstance(box, str) for box in boxes)
        ):
            raise ConfigError(
                f'--tenant-map {path}: {tenant} must list box ids, e.g. {tenant} = ["box1"]'
            )
        unknown = [box for box in boxes if box not in box_ids]
        if unknown:
            raise ConfigError(
                f"--tenant-map {path}: {tenant} names {', '.join(unknown)}, not among the "
                f"boxes ({', '.join(box_ids)})"
            )
        mapping[tenant] = tuple(dict.fromkeys(boxes))
    return mapping


# --- the configuration ----------------------------------------------------------------------


def render(boxes: Sequence[BoxAddress], options: LbOptions) -> str:
    """The whole HAProxy configuration for ``boxes`` (checked by :func:`boxes_from_pairs`)."""
    lines = [
        f"# HAProxy configuration for {len(boxes)} smcp-box boxes, written by smcp-box "
        f"lb-config {__version__}.",
        "# Regenerate it when boxes come or go; docs/scale-out.md explains every part.",
        "",
        *_global(options),
        "",
        *_defaults(),
        "",
        *_frontend(options),
        "",
        *_backend("boxes", boxes, checked=True),
    ]
    by_id = {box.box_id: box for box in boxes}
    for tenant, box_ids in options.tenant_map.items():
        lines += ["", *_backend(f"tenant_{tenant}", [by_id[i] for i in box_ids], checked=False)]
    if options.rates.per_key:
        lines += ["", *_rate_table("rate_per_key", "binary len 32", options.rates.window_s)]
    if options.rates.per_ip:
        lines += ["", *_rate_table("rate_per_ip", "ipv6", options.rates.window_s)]
    return "\n".join(lines) + "\n"


def _global(options: LbOptions) -> list[str]:
    lines = ["global", "    log stdout format raw local0"]
    if options.run_as is not None:
        lines += [f"    user {options.run_as[0]}", f"    group {options.run_as[1]}"]
    if options.stats_socket is not None:
        lines.append(f"    stats socket {options.stats_socket} mode 600 level admin")
    if options.tls_cert is not None:
        lines += [
            "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
            "    ssl-default-bind-ciphersuites "
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
        ]
    return lines


def _defaults() -> list[str]:
    return [
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        "    option http-keep-alive",
        "    http-reuse safe",
        "    # Buffer each request body so that a retry can send it again (MCP bodies are small).",
        "    option http-buffer-request",
        "    timeout connect 2s",
        f"    timeout http-request {REQUEST_HEAD_TIMEOUT_S}s",
        f"    timeout http-keep-alive {REQUEST_HEAD_TIMEOUT_S}s",
        "    timeout queue 10s",
        "    # Inactivity timeouts: long enough for a GET stream between keep-alive comments and",
        "    # for the longest synchronous call.",
        f"    timeout client {STREAM_TIMEOUT_S}s",
        f"    timeout server {STREAM_TIMEOUT_S}s",
        "    timeout tunnel 1h",
        "    timeout client-fin 5s",
        "    timeout server-fin 5s",
        f"    retries {RETRIES}",
        "    retry-on conn-failure empty-response response-timeout",
        "    option redispatch 1",
    ]


def _frontend(options: LbOptions) -> list[str]:
    bind = f"    bind {_bind_address(options.listen_host, options.listen_port)}"
    if options.tls_cert is not None:
        bind += f" ssl crt {options.tls_cert} alpn h2,http/1.1"
    lines = [
        "frontend mcp",
        bind,
        "    # The boxes believe X-Forwarded-For from HAProxy ([server] trusted_proxies): only",
        "    # the address HAProxy saw may reach them.",
        "    http-request del-header x-forwarded-for",
        "    option forwardfor",
    ]
    if options.tls_cert is not None:
        lines.append("    http-request set-header x-forwarded-proto https")
    lines += _rate_rules(options.rates)
    for tenant in options.tenant_map:
        lines.append(f"    use_backend tenant_{tenant} if {{ path_beg /t/{tenant}/ }}")
    lines.append("    default_backend boxes")
    return lines


def _bind_address(host: str, port: int) -> str:
    return f"ipv6@{host}:{port}" if ":" in host else f"{host}:{port}"


def _rate_rules(rates: RateLimits) -> list[str]:
    if not rates.any:
        return []
    lines = ["    # Rate limits: the credential is counted by its SHA-256, never kept as sent."]
    refusals: list[tuple[str, str]] = []
    if rates.per_key:
        lines.append(
            "    http-request track-sc0 req.hdr(authorization),sha2(256) table rate_per_key "
            "if { req.hdr(authorization) -m found }"
        )
        refusals.append((f"sc_http_req_rate(0) gt {rates.per_key}", "this credential"))
    if rates.per_ip:
        lines.append("    http-request track-sc1 src table rate_per_ip")
        refusals.append((f"sc_http_req_rate(1) gt {rates.per_ip}", "this address"))
    window = f"{rates.window_s} s"
    for condition, whom in refusals:
        message = (
            f'{{"error":"quota","message":"too many requests from {whom} for the fleet '
            f'(limit per {window}); retry after {window}"}}'
        )
        lines.append(
            f"    http-request return status 429 content-type application/json "
            f"string '{message}' hdr retry-after {rates.window_s} if {{ {condition} }}"
        )
    return lines


def _backend(name: str, boxes: Sequence[BoxAddress], *, checked: bool) -> list[str]:
    lines = [f"backend {name}", "    balance leastconn"]
    if checked:
        lines += [
            "    # /readyz: a draining box answers 503 and leaves the rotation.",
            "    option httpchk",
            "    http-check send meth GET uri /readyz ver HTTP/1.1 hdr host smcp-box-check",
            "    http-check expect status 200",
            f"    default-server check inter {CHECK_INTERVAL_MS}ms fastinter 250ms "
            f"fall {CHECK_FALL} rise {CHECK_RISE} observe layer4 error-limit 1 "
            "on-error fail-check init-addr last,libc,none",
        ]
    else:
        lines.append("    # Health as the boxes backend sees it (track): one check per box.")
    for box in boxes:
        acl = f"session_on_{box.box_id}"
        lines.append(f"    acl {acl} req.hdr(mcp-session-id) -m beg {box.box_id}-")
        lines.append(f"    use-server {box.box_id} if {acl}")
    for box in boxes:
        server = f"    server {box.box_id} {box.server_address}"
        if not checked:
            server += f" track boxes/{box.box_id}"
        lines.append(server)
    return lines


def _rate_table(name: str, key_type: str, window_s: int) -> list[str]:
    # Entries outlive their window by a minute, so a client cannot reset its count by pausing
    # exactly until its entry expires.
    return [
        f"backend {name}",
        f"    stick-table type {key_type} size {RATE_TABLE_SIZE} expire {window_s + 60}s "
        f"store http_req_rate({window_s}s)",
    ]
