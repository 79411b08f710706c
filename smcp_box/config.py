"""The box's settings: one frozen tree, layered defaults < TOML file < ``SMCP_BOX_*`` env < flags.

Every field is documented once, here, and shown with its default in ``config.example.toml``
(a test keeps the two in step). Unknown keys anywhere are errors that name the key, because a
misspelt setting silently falling back to its default is how appliances get misconfigured.

Environment overrides: a top-level field ``state_dir`` is ``SMCP_BOX_STATE_DIR``; a field
``port`` of section ``server`` is ``SMCP_BOX_SERVER_PORT``. Environment values are text, parsed as
the field's type (lists are comma-separated); a TOML value must already have the field's type
(``port = "8765"`` is an error, not a port).

Numbers have one table of bounds: :data:`LIMITS` for the per-tenant limits (the ``[sandbox]``
defaults, a tenant.toml's ``[limits]``, admin changes and the sandbox's ``Limits`` are all held
to it) and :data:`SETTING_BOUNDS` for the rest. A value outside gives one message at every layer,
``memory_mib = 99999 is out of range: allowed 1..4096 (MiB)``, prefixed by where it came from.

Default paths follow systemd: ``$STATE_DIRECTORY``, ``$CACHE_DIRECTORY``, ``$RUNTIME_DIRECTORY``
and ``$CREDENTIALS_DIRECTORY`` when set (the unit sets them), else folders under ``./.smcp-box``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import socket
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from smcp_box.errors import ConfigError
from smcp_box.seams import MIB

ENV_PREFIX = "SMCP_BOX_"


@dataclass(frozen=True)
class ServerSettings:
    #: Address to listen on. The default keeps a fresh box off the LAN until you choose.
    host: str = "127.0.0.1"
    #: TCP port for the MCP endpoints, /healthz and /metrics.
    port: int = 8765
    #: Largest request body accepted, in bytes; larger ones get 413 before being read whole.
    max_body_bytes: int = 4 * MIB
    #: Extra allowed browser origins (e.g. "https://box.lan:8765"). Loopback origins are always
    #: allowed; requests without an Origin header (non-browser clients) are always allowed.
    allowed_origins: tuple[str, ...] = ()
    #: Addresses or networks (CIDR) of reverse proxies whose ``X-Forwarded-For`` is believed:
    #: for a request from one of them, the client is the nearest address in that header that
    #: is not itself a trusted proxy. Empty (the default): the header is ignored, since any
    #: client could send it to dodge per-address limits and allowlists.
    trusted_proxies: tuple[str, ...] = ()
    #: Seconds between SSE keep-alive comments on idle streams.
    sse_keepalive_s: float = 15.0
    #: Handshake-era clients: seconds the box waits for the client to answer a request it sends
    #: on a tool's behalf (sampling, elicitation, roots). Elicitation waits for a person.
    server_request_timeout_s: float = 300.0
    #: PEM certificate chain; with tls_key set, the box serves HTTPS with HTTP/2 via ALPN.
    tls_cert: str = ""
    #: PEM private key for tls_cert.
    tls_key: str = ""
    #: Seconds in-flight requests get to finish after SIGTERM before the box exits.
    shutdown_grace_s: float = 10.0
    #: ``retry`` (milliseconds) sent with SSE priming events: how long a client waits before it
    #: reconnects a dropped stream. 0 sends none and leaves it to the client (the SDK waits 1 s).
    sse_retry_ms: int = 0
    #: Seconds a client gets to send its whole request body, from the end of its headers;
    #: then 408 and the connection is closed.
    body_timeout_s: float = 30.0
    #: Seconds a connection gets to send a complete request head (request line and headers),
    #: counted from when it opens or its previous response ends; then it is closed without an
    #: answer. The same deadline ends idle kept-alive connections. A client that dribbles a
    #: header a byte at a time is not given more time by doing so.
    header_timeout_s: float = 10.0
    #: Open TCP connections one client address may hold; the next is answered 429 and closed.
    #: Connections from a trusted proxy (trusted_proxies) are not counted: they carry many
    #: clients, and the proxy should cap its own.
    max_connections_per_address: int = 128
    #: Open GET (SSE) streams one client address may hold, over every tenant (the address as
    #: trusted_proxies resolves it); the next is answered 429. Per-tenant stream quotas
    #: (``[quotas] max_sse_streams``) apply as well.
    max_sse_streams_per_address: int = 64
    #: A legacy session used after this many seconds of not being marked seen is marked seen
    #: again, so the idle reaper spares sessions in use without a store write per request.
    session_touch_s: float = 60.0
    #: ``realm`` of the ``WWW-Authenticate: Bearer`` challenge on 401 and 403.
    auth_realm: str = "smcp-box"
    #: RFC 9728 protected-resource metadata URL named in the challenge; ``{tenant}`` is replaced
    #: by the tenant's name. Empty: the box's own metadata URL for tenants with ``auth =
    #: "oauth"`` or ``"both"`` (computed per request), and none for the others.
    resource_metadata_url: str = ""
    #: Handshake era: InputRequiredResult rounds (sampling, elicitation, roots) the box runs for
    #: one request before it fails it (-32603); bounds a module that keeps asking.
    max_input_rounds: int = 8
    #: One log line per HTTP request (method, path without its query, status, bytes, duration,
    #: client address, tenant, request id; never headers, bodies or keys). On by default: a
    #: homelab admin expects ``journalctl -u smcp-box`` to show who called what, as a web
    #: server's access log would, and a box's traffic is small. Applies live on SIGHUP.
    access_log: bool = True


@dataclass(frozen=True)
class SandboxSettings:
    """Defaults for every tenant; a tenant.toml [limits] table may lower or raise each limit.

    The per-tenant limits (every field but ``tick_ms``, ``inline_fuel`` and ``cpu_slots``) have
    the names,
    units and bounds of :data:`LIMITS`, the one vocabulary of the box, tenant.toml, the sandbox's
    ``Limits`` record, the admin API, the CLI and the TUI.
    """

    #: Linear-memory limit of one module instance, in MiB.
    memory_mib: int = 128
    #: Fuel (roughly, wasm instructions) one call may burn before it is stopped.
    fuel: int = 2_000_000_000
    #: Wall-clock limit of one call, in milliseconds (epoch interruption).
    timeout_ms: int = 5_000
    #: Largest reply a module may return, and largest string it may pass to a host import, in
    #: bytes.
    max_reply_bytes: int = 4 * MIB
    #: Largest message the box passes into a module, in bytes.
    max_message_bytes: int = 4 * MIB
    #: Warm instances kept per tenant.
    max_instances: int = 4
    #: Instances made when a tenant loads, so that its first calls find them warm (at most
    #: max_instances). 0 makes instances on demand (a component still makes one at load).
    warm_instances: int = 0
    #: Calls one tenant may run at once; more wait up to queue_timeout_ms, then get "tenant busy".
    max_concurrent_calls: int = 8
    #: How long a call waits for one of its tenant's max_concurrent_calls slots, in milliseconds.
    queue_timeout_ms: int = 500
    #: Host-import calls (log, kv, notify … together) one call may make.
    max_host_calls: int = 10_000
    #: Epoch tick of the wall-clock ticker thread, in milliseconds.
    tick_ms: int = 10
    #: Fuel a call may burn on the event loop before it is moved to a worker thread (so is a call
    #: that reaches a kv, blob or sleep import: it runs again from the start); 0 runs every
    #: call in a worker. Small calls answered inline skip a thread hop that costs several
    #: times the call, and the budget keeps a call's loop time below the ~0.5 ms of Python every
    #: request costs anyway, so no tenant gains loop time by it.
    inline_fuel: int = 100_000
    #: Wasm calls running at once, box-wide; waiting calls take turns tenant by tenant, and a
    #: long call gives its slot up every tick while others wait (fair CPU shares). 0: one per
    #: core. One tenant holds at most all of them but one (at least one).
    cpu_slots: int = 0


@dataclass(frozen=True)
class Bound:
    """The inclusive range a number may take, and the unit it counts in."""

    low: int | float
    high: int | float
    unit: str
    #: What it bounds, for the CLI's ``--help`` and the TUI's forms.
    label: str = ""

    def problem(self, name: str, value: int | float) -> str | None:
        """The one out-of-range message every layer gives, or None when ``value`` fits."""
        if self.low <= value <= self.high:
            return None
        return (
            f"{name} = {_show(value)} is out of range: "
            f"allowed {_show(self.low)}..{_show(self.high)} ({self.unit})"
        )


def _show(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


#: The per-tenant limits: tenant.toml ``[limits]`` keys (= ``[sandbox]`` fields, = ``Limits``
#: fields, = admin API, CLI and TUI names) and their bounds. Box defaults, tenant.toml values
#: and admin changes are all held to these, with the same message.
LIMITS: Mapping[str, Bound] = types.MappingProxyType(
    {
        "memory_mib": Bound(1, 4096, "MiB", "linear memory per instance"),
        "fuel": Bound(
            1_000, 10**12, "fuel units", "fuel per call (about one per wasm instruction)"
        ),
        "timeout_ms": Bound(1, 600_000, "ms", "wall-clock limit per call"),
        "max_reply_bytes": Bound(64, 64 * MIB, "bytes", "largest reply"),
        "max_message_bytes": Bound(64, 64 * MIB, "bytes", "largest message into the module"),
        "max_instances": Bound(1, 256, "instances", "warm instances kept"),
        "warm_instances": Bound(0, 256, "instances", "instances made at load"),
        "max_concurrent_calls": Bound(1, 1_024, "calls", "calls at once"),
        "queue_timeout_ms": Bound(1, 60_000, "ms", "wait for a free call slot"),
        "max_host_calls": Bound(1, 10_000_000, "calls", "host-import calls per call"),
    }
)

#: The per-tenant quotas: tenant.toml ``[quotas]`` keys (= ``[quotas]`` fields giving the box
#: defaults). 0 turns a rate or budget off; counts are always capped.
QUOTAS: Mapping[str, Bound] = types.MappingProxyType(
    {
        "requests_per_s": Bound(0, 1_000_000, "requests/s", "sustained request rate (0: no limit)"),
        "burst": Bound(1, 10_000_000, "requests", "requests allowed at once above the rate"),
        "max_sessions": Bound(1, 1_000_000, "sessions", "open legacy sessions"),
        "max_sse_streams": Bound(1, 100_000, "streams", "open GET (SSE) streams"),
        "fuel_per_minute": Bound(
            0, 10**15, "fuel units", "fuel burned per rolling minute (0: no limit)"
        ),
        "max_open_tasks": Bound(1, 100_000, "tasks", "tasks working or waiting for input"),
        "kv_max_keys": Bound(0, 10**9, "keys", "kv keys (0: [store] kv_max_keys)"),
        "kv_max_total_bytes": Bound(
            0, 2**50, "bytes", "kv keys and values together (0: [store] kv_max_total_bytes)"
        ),
        "blob_max_bytes": Bound(1, 2**40, "bytes", "largest blob"),
        "blob_max_total_bytes": Bound(1, 2**50, "bytes", "bytes of all blobs"),
        "blob_max_count": Bound(1, 10**7, "blobs", "number of blobs"),
        # A resources/read reply holds the whole blob, base64 (4/3) for binary content: 64 MiB
        # keeps one reply under ~86 MB of the box's memory.
        "blob_resource_max_bytes": Bound(
            1_024, 64 * MIB, "bytes", "largest blob resources/read returns"
        ),
    }
)

#: Bounds of the other numeric settings, by dotted name (checked at every layer too).
SETTING_BOUNDS: Mapping[str, Bound] = types.MappingProxyType(
    {
        "server.port": Bound(1, 65_535, "TCP port"),
        "server.max_body_bytes": Bound(1_024, 1_024 * MIB, "bytes"),
        "server.sse_keepalive_s": Bound(0.1, 3_600.0, "seconds"),
        "server.server_request_timeout_s": Bound(1.0, 86_400.0, "seconds"),
        "server.shutdown_grace_s": Bound(0.0, 3_600.0, "seconds"),
        "server.sse_retry_ms": Bound(0, 3_600_000, "ms"),
        "server.body_timeout_s": Bound(0.1, 3_600.0, "seconds"),
        "server.header_timeout_s": Bound(0.1, 3_600.0, "seconds"),
        "server.max_connections_per_address": Bound(1, 1_000_000, "connections"),
        "server.max_sse_streams_per_address": Bound(1, 1_000_000, "streams"),
        "server.session_touch_s": Bound(0.0, 86_400.0, "seconds"),
        "cluster.heartbeat_s": Bound(0.1, 3_600.0, "seconds"),
        "cluster.dead_after_s": Bound(0.5, 86_400.0, "seconds"),
        "server.max_input_rounds": Bound(1, 1_000, "rounds"),
        "tasks.ttl_s": Bound(60, 30 * 86_400, "seconds"),
        "tasks.poll_interval_ms": Bound(100, 600_000, "ms"),
        "tasks.default_timeout_s": Bound(1, 600, "seconds"),
        "tasks.max_timeout_s": Bound(1, 600, "seconds"),
        "tasks.purge_interval_s": Bound(1, 86_400, "seconds"),
        "sandbox.tick_ms": Bound(1, 1_000, "ms"),
        "sandbox.inline_fuel": Bound(0, 10_000_000, "fuel units"),
        "sandbox.cpu_slots": Bound(0, 1_024, "calls"),
        "store.max_events_per_session": Bound(1, 10_000_000, "events"),
        "store.kv_max_keys": Bound(1, 10**9, "keys"),
        "store.kv_max_value_bytes": Bound(1, 1_024 * MIB, "bytes"),
        "store.kv_max_total_bytes": Bound(1, 2**50, "bytes"),
        "sessions.idle_timeout_s": Bound(1.0, 365 * 86_400.0, "seconds"),
        "sessions.max_age_s": Bound(60.0, 365 * 86_400.0, "seconds"),
        "audit.retention_days": Bound(1, 36_500, "days"),
        "quotas.auth_failures_per_ip": Bound(1, 1_000_000, "failures"),
        "quotas.auth_failure_window_s": Bound(1, 86_400, "seconds"),
        "oauth.access_token_ttl_s": Bound(30, 86_400, "seconds"),
        "oauth.refresh_token_ttl_s": Bound(60, 365 * 86_400, "seconds"),
        "oauth.code_ttl_s": Bound(10, 600, "seconds"),
        "oauth.signing_key_rotation_days": Bound(1, 3_650, "days"),
        "oauth.cimd_max_bytes": Bound(1_024, 1 * MIB, "bytes"),
        "oauth.cimd_timeout_s": Bound(0.1, 60.0, "seconds"),
        "oauth.cimd_cache_s": Bound(0, 7 * 86_400, "seconds"),
        "oauth.login_max_failures_per_user": Bound(1, 1_000, "attempts"),
        "oauth.login_max_failures_per_ip": Bound(1, 100_000, "attempts"),
        "oauth.login_window_s": Bound(1, 86_400, "seconds"),
        "oauth.login_session_s": Bound(60, 86_400, "seconds"),
    }
)


def check_limit(name: str, value: object) -> int:
    """``value`` as the limit ``name``, or ConfigError with the shared message.

    Every layer (box defaults, tenant.toml, admin changes, the sandbox's ``Limits``) calls this,
    and adds at most a prefix saying where the value came from.
    """
    checked = _check_bounded(LIMITS, "limit", name, value, fractional=False)
    assert isinstance(checked, int)
    return checked


def check_limits(values: Mapping[str, object]) -> dict[str, int]:
    """Every entry checked with :func:`check_limit`; the first bad one raises."""
    return {name: check_limit(name, value) for name, value in values.items()}


def check_quota(name: str, value: object) -> int | float:
    """``value`` as the quota ``name`` (``requests_per_s`` may be fractional), or ConfigError
    with the shared out-of-range message."""
    return _check_bounded(QUOTAS, "quota", name, value, fractional=name == "requests_per_s")


def _check_bounded(
    table: Mapping[str, Bound], what: str, name: str, value: object, *, fractional: bool
) -> int | float:
    """The one check behind :func:`check_limit` and :func:`check_quota`: a known name, a
    number of the right kind (never a bool), within its bound."""
    bound = table.get(name)
    if bound is None:
        raise ConfigError(f"unknown {what} {name!r} (known: {', '.join(table)})")
    numeric = int | float if fractional else int
    if not isinstance(value, numeric) or isinstance(value, bool):
        kind = "a number" if fractional else "an integer"
        raise ConfigError(f"{name} = {value!r} is not {kind} ({bound.unit})")
    problem = bound.problem(name, value)
    if problem is not None:
        raise ConfigError(problem)
    return value


@dataclass(frozen=True)
class QuotaSettings:
    """Per-tenant quotas' box-wide defaults (a tenant.toml ``[quotas]`` table overrides them,
    within :data:`QUOTAS`' bounds), and the per-address limits on failed authentication.

    Past a rate the answer is HTTP 429 with ``Retry-After``; past a count or budget, a JSON-RPC
    error naming the quota. Each refusal is counted in ``/metrics`` and audited (at most one row
    per tenant and quota a minute, with the number suppressed).
    """

    #: Sustained requests per second per tenant (a token bucket); 0: no limit.
    requests_per_s: float = 200.0
    #: Requests a tenant may receive at once above that rate (the bucket's size).
    burst: int = 400
    #: Open legacy (2024-11-05 … 2025-11-25) sessions per tenant.
    max_sessions: int = 1_000
    #: Open GET (SSE) streams per tenant.
    max_sse_streams: int = 200
    #: Fuel a tenant's calls may burn per rolling minute (about one unit per wasm
    #: instruction); 0: no limit beyond each call's own ``fuel``.
    fuel_per_minute: int = 0
    #: Tasks (docs/tasks.md) one tenant may have working or waiting for input at once; past
    #: it, a tools/call that would start one gets a JSON-RPC error naming the quota.
    max_open_tasks: int = 100
    #: kv keys a tenant may keep; 0: [store] kv_max_keys. A write past it is refused (the
    #: module's kv import returns -1), counted in /metrics and audited.
    kv_max_keys: int = 0
    #: kv bytes (keys and values) a tenant may keep; 0: [store] kv_max_total_bytes.
    kv_max_total_bytes: int = 0
    #: Blob storage per tenant (store/blobs.py): the largest blob, all blobs' bytes, and how
    #: many blobs. A write past one is refused with an error naming it; nothing is kept.
    blob_max_bytes: int = 64 * MIB
    blob_max_total_bytes: int = 1_024 * MIB
    blob_max_count: int = 10_000
    #: Largest blob a client reads as a ``blob:`` resource (tenancy/blob_resources.py): MCP's
    #: resources/read has no cursor and no partial read, so the reply holds the whole blob;
    #: larger ones are refused with an error naming both sizes (tools and the CLI stream any).
    blob_resource_max_bytes: int = 8 * MIB
    #: Failed authentications one client address may make within auth_failure_window_s;
    #: past that, every request from it is refused (429) until the window has passed.
    auth_failures_per_ip: int = 30
    auth_failure_window_s: int = 300


@dataclass(frozen=True)
class TaskSettings:
    """Durable tasks (the MCP tasks extension, docs/tasks.md) for tools that opt in."""

    #: How long a task and its result are kept after it was created (the wire ``ttlMs``).
    ttl_s: int = 3_600
    #: How often clients are asked to poll tasks/get (the wire ``pollIntervalMs``).
    poll_interval_ms: int = 1_000
    #: Wall-clock limit of a task's module call when its tool sets no ``task_timeout_s``.
    default_timeout_s: int = 300
    #: Largest ``task_timeout_s`` a tenant.toml ``[tools.NAME]`` table may set; at most 600,
    #: the bound of every call's wall-clock limit (:data:`LIMITS` ``timeout_ms``).
    max_timeout_s: int = 600
    #: Seconds between purges of tasks past their TTL.
    purge_interval_s: int = 60


@dataclass(frozen=True)
class StoreSettings:
    #: Where the store lives: "sqlite" (one file, one box; the default) or "postgres" (one
    #: database shared by several boxes, docs/scale-out.md).
    backend: str = "sqlite"
    #: SQLite database path; empty means <state_dir>/smcp-box.db. Only for backend "sqlite".
    database: str = ""
    #: PostgreSQL connection string (postgresql://user@host:port/db?sslmode=...); only for
    #: backend "postgres". Never put the password here: it is read from the credentials
    #: folder's ``store-password`` file.
    dsn: str = ""
    #: Encrypt sensitive columns. Only the benchmark turns this off; never in production.
    encrypt: bool = True
    #: SSE events kept per session for Last-Event-ID replay. Past it the oldest are dropped
    #: at each append: a client resuming from an event id older than what is kept gets the
    #: events still kept (not an error), so it may miss some. Applies live on SIGHUP.
    max_events_per_session: int = 1_000
    #: kv quota per tenant: number of keys.
    kv_max_keys: int = 10_000
    #: kv quota per tenant: largest value, in bytes.
    kv_max_value_bytes: int = 1 * MIB
    #: kv quota per tenant: total bytes of keys and values.
    kv_max_total_bytes: int = 64 * MIB


#: A box id: what a session id starts with (``<box_id>-<random>``), so no ``-`` in it; HAProxy
#: routes a session by the text before the first ``-``.
BOX_ID_PATTERN: Final = r"[A-Za-z0-9_]{1,32}"


@dataclass(frozen=True)
class ClusterSettings:
    """This box's place in a fleet of boxes sharing one PostgreSQL store (docs/scale-out.md).
    A single box on SQLite uses only ``box_id`` (session ids, the ``Smcp-Box`` header)."""

    #: This box's name, unique in its fleet: 1-32 letters, digits or underscores. Empty: the
    #: host name, with every other character made an underscore (:func:`box_id`).
    box_id: str = ""
    #: Name the box in an ``Smcp-Box`` header on every HTTP response.
    box_header: bool = True
    #: Seconds between this box's heartbeat writes.
    heartbeat_s: float = 2.0
    #: A box whose last heartbeat is older than this many seconds is gone: another box may
    #: take over its sessions. Several heartbeats long, so one slow write is not a death.
    dead_after_s: float = 10.0


@dataclass(frozen=True)
class SessionSettings:
    """Lifetimes of legacy-era (handshake) sessions. A session past either one answers 404 at
    once (the client then sends initialize again), and the background cleaner deletes it with
    its events within min(60 s, half the lifetime). How many events a session keeps for
    ``Last-Event-ID`` replay is ``[store] max_events_per_session``."""

    #: A session not used for this many seconds expires. It counts from the session's last
    #: recorded use, which is written at most every ``[server] session_touch_s``, so that must
    #: be shorter than this.
    idle_timeout_s: float = 3_600.0
    #: A session expires this many seconds after it was created, however much it is used: a
    #: session id is a bearer value, and this bounds how long a leaked one is worth anything.
    max_age_s: float = 86_400.0


@dataclass(frozen=True)
class AuditSettings:
    #: Days audit rows are kept before background pruning (a signed checkpoint remains).
    retention_days: int = 30


@dataclass(frozen=True)
class MetricsSettings:
    """Who may read ``/metrics`` on the MCP port. It names every tenant and its traffic, so by
    default only the box's own machine (a loopback client) may; a scraper on the LAN needs the
    bearer token."""

    #: File holding a bearer token (32+ characters) a scraper must send
    #: (``Authorization: Bearer …``); also read from $CREDENTIALS_DIRECTORY/metrics-token.
    #: Without a token /metrics answers loopback clients only.
    token_file: str = ""


@dataclass(frozen=True)
class OAuthSettings:
    """The box as OAuth 2.1 authorization server and resource server, for tenants whose
    tenant.toml says ``auth = "oauth"`` or ``"both"`` (docs/oauth.md)."""

    #: The box's public base URL as clients reach it (``https://box.lan:8765``): the issuer of
    #: every token, and the base of each tenant's resource URL (``<issuer>/t/<tenant>/mcp``).
    #: Empty: taken from each request's scheme and Host, which suits one name per box; set it
    #: when clients reach the box by several names or through a proxy.
    issuer: str = ""
    #: Lifetime of an access token (a signed JWT for one tenant). Short, since a JWT stays
    #: valid until it expires wherever it is checked without the store.
    access_token_ttl_s: int = 300
    #: Lifetime of a refresh token; each use rotates it, and reuse revokes its whole family.
    refresh_token_ttl_s: int = 30 * 86_400
    #: Lifetime of an authorization code (single use).
    code_ttl_s: int = 60
    #: A new signing key is made this often; the old one stays in the JWKS until the last
    #: token it signed has expired.
    signing_key_rotation_days: int = 30
    #: Dynamic client registration (RFC 7591). Deprecated by MCP 2026-07-28 but still what
    #: many clients use; false answers /oauth/register with 403.
    dynamic_registration: bool = True
    #: Hosts whose Client ID Metadata Documents the box may fetch. "*" means any host whose
    #: addresses are all public; a host named here may also resolve to a private or loopback
    #: address (a client on the LAN). Empty turns CIMD off.
    cimd_allowed_hosts: tuple[str, ...] = ("*",)
    #: Largest Client ID Metadata Document fetched, and how long a fetch may take.
    cimd_max_bytes: int = 64 * 1024
    cimd_timeout_s: float = 5.0
    #: How long a fetched metadata document is reused (unless its Cache-Control says less).
    cimd_cache_s: int = 3_600
    #: Failed logins allowed per user, and per client address, within login_window_s before
    #: further attempts are refused until the window passes.
    login_max_failures_per_user: int = 5
    login_max_failures_per_ip: int = 20
    login_window_s: int = 900
    #: How long the login page's session cookie lasts.
    login_session_s: int = 900


@dataclass(frozen=True)
class AdminSettings:
    """The admin API: a Unix socket always, a TCP listener only when asked for, with a token."""

    #: Admin socket path; empty means <runtime_dir>/admin.sock. Access to it is the credential.
    socket: str = ""
    #: "host:port" for an extra TCP listener (remote tools); empty means none. Refused unless an
    #: admin token of 32+ characters is in token_file or $CREDENTIALS_DIRECTORY/admin-token.
    tcp_bind: str = ""
    #: File holding the admin token for the TCP listener.
    token_file: str = ""


@dataclass(frozen=True)
class VettingSettings:
    """Who may publish the modules the box hosts (docs/vetting.md). A tenant.toml ``[vetting]``
    table may only tighten these for its own tenant."""

    #: Publisher public keys, ``"ed25519:<base64>"`` as ``smcp-box publisher keygen`` prints
    #: them. A module signed by a key not listed here is refused, whatever require_signature says.
    trusted_publishers: tuple[str, ...] = ()
    #: Refuse every module without a signature (``smcp-box sign``) from a trusted publisher.
    #: false serves unsigned modules with a warning in the log and ``smcp-box vet``.
    require_signature: bool = False
    #: What the box does with a module whose tool definitions differ from the approved ones
    #: (tenant.toml ``tools_sha256`` or the latest ``smcp-box tenant approve``):
    #: "serve_approved" keeps serving the approved definitions and raises an alert until an
    #: admin approves the change; "refuse" stops serving the tenant until then.
    on_changed_definitions: str = "serve_approved"
    #: What a call far outside its tool's behaviour baseline does: "flag" (audit and metrics)
    #: or "block" (also refuse that tool's later calls until ``tenant baseline-reset``).
    baseline: str = "flag"
    #: Calls of a tool learned before its baseline judges any.
    baseline_warmup_calls: int = 20


#: ``[vetting] on_changed_definitions`` values, most lenient first (a tenant may only move right).
CHANGED_DEFINITIONS_MODES = ("serve_approved", "refuse")
#: ``[vetting] baseline`` values, most lenient first (a tenant may only move right).
BASELINE_MODES = ("flag", "block")


#: How a publisher key is written in settings and tenant.toml: 32 raw bytes, base64 (44 chars).
PUBLISHER_KEY_PATTERN = r"ed25519:[A-Za-z0-9+/]{43}="


@dataclass(frozen=True)
class Settings:
    #: Durable state: database and data key. Default $STATE_DIRECTORY or ./.smcp-box/state.
    state_dir: str = ""
    #: Compiled-module cache. Default $CACHE_DIRECTORY or ./.smcp-box/cache.
    cache_dir: str = ""
    #: Admin socket and other runtime files. Default $RUNTIME_DIRECTORY or ./.smcp-box/run.
    runtime_dir: str = ""
    #: systemd credentials (data-key, TLS key). Default $CREDENTIALS_DIRECTORY, else unused.
    credentials_dir: str = ""
    #: Folder of tenant folders, each holding a tenant.toml.
    tenants_dir: str = "tenants"
    #: Seconds between checks of the tenants folder for new tenant folders (and changed files
    #: of folders that failed to load), which are then served as ``smcp-box tenant rescan``
    #: would. 0, the default, never checks: adding a tenant is a deliberate act, and ``tenant
    #: rescan`` (or ``tenant add``) tells the admin at once whether it loaded, where a scan can
    #: only log it. Applies live on SIGHUP.
    tenants_scan_s: float = 0.0
    #: Log level: debug, info, warning, error.
    log_level: str = "info"
    server: ServerSettings = field(default_factory=ServerSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    vetting: VettingSettings = field(default_factory=VettingSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    # --- resolved paths -------------------------------------------------------------------

    def state_path(self) -> Path:
        return _resolve_dir(self.state_dir, "STATE_DIRECTORY", "state")

    def cache_path(self) -> Path:
        return _resolve_dir(self.cache_dir, "CACHE_DIRECTORY", "cache")

    def runtime_path(self) -> Path:
        return _resolve_dir(self.runtime_dir, "RUNTIME_DIRECTORY", "run")

    def credentials_path(self) -> Path | None:
        chosen = self.credentials_dir or os.environ.get("CREDENTIALS_DIRECTORY", "")
        return Path(chosen) if chosen else None

    def database_path(self) -> Path:
        if self.store.database:
            return Path(self.store.database)
        return self.state_path() / "smcp-box.db"

    def tenants_path(self) -> Path:
        return Path(self.tenants_dir)


def read_token(settings: Settings, token_file: str, credential: str, what: str) -> str | None:
    """A bearer token from ``token_file`` or the systemd credential ``credential``; None when
    neither exists. Tokens shorter than 32 characters are refused: they guard the box's API."""
    candidates = [Path(token_file)] if token_file else []
    credentials = settings.credentials_path()
    if credentials is not None:
        candidates.append(credentials / credential)
    for candidate in candidates:
        try:
            token = candidate.read_text().strip()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} {candidate}: {exc.strerror}") from None
        if len(token) < 32:
            raise ConfigError(f"the {what} in {candidate} must be at least 32 characters")
        return token
    return None


def _resolve_dir(explicit: str, systemd_variable: str, fallback: str) -> Path:
    if explicit:
        return Path(explicit)
    # systemd may pass several colon-separated directories; the first is ours.
    from_systemd = os.environ.get(systemd_variable, "").split(":")[0]
    if from_systemd:
        return Path(from_systemd)
    return Path(".smcp-box") / fallback


# --- loading ------------------------------------------------------------------------------

_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "sandbox": SandboxSettings,
    "store": StoreSettings,
    "sessions": SessionSettings,
    "audit": AuditSettings,
    "admin": AdminSettings,
    "metrics": MetricsSettings,
    "oauth": OAuthSettings,
    "quotas": QuotaSettings,
    "tasks": TaskSettings,
    "vetting": VettingSettings,
    "cluster": ClusterSettings,
}


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings tree from the layers; raise ConfigError naming any bad key or value.

    ``overrides`` holds command-line flags as dotted names (``"server.port"``) or top-level names.
    """
    settings = Settings()
    if path is not None:
        settings = _apply_mapping(settings, _read_toml(path), source=str(path))
    env = os.environ if environ is None else environ
    settings = _apply_mapping(settings, _env_layer(env), source="environment")
    if overrides:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.rpartition(".")
            target = nested.setdefault(section, {}) if section else nested
            target[key] = value
        settings = _apply_mapping(settings, nested, source="command line")
    assert isinstance(settings, Settings)
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    unknown: list[str] = []
    top_level = {f.name for f in fields(Settings)} - set(_SECTIONS)
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in top_level:
            layer[key] = raw
            continue
        for section, section_type in _SECTIONS.items():
            prefix = section + "_"
            if key.startswith(prefix) and key[len(prefix) :] in _field_names(section_type):
                layer.setdefault(section, {})[key[len(prefix) :]] = raw
                break
        else:
            unknown.append(name)
    if unknown:
        known = _env_names()
        named = "; ".join(
            f"unknown environment variable {name}{_did_you_mean(name, known)}" for name in unknown
        )
        raise ConfigError(f"{named}: no setting has that name (see config.example.toml)")
    return layer


def _env_names() -> list[str]:
    names = [ENV_PREFIX + f.name.upper() for f in fields(Settings) if f.name not in _SECTIONS]
    for section, section_type in _SECTIONS.items():
        names += [f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}" for f in fields(section_type)]
    return names


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_names(cls: type[Any]) -> set[str]:
    return {f.name for f in fields(cls)}


#: Sources whose values are text to parse (env variables, flags); a TOML file's values are typed.
_TEXT_SOURCES = frozenset({"environment", "command line"})


def _check_known(obj: Any, mapping: Mapping[str, Any], source: str) -> None:
    """Name every unknown key of ``mapping`` at once, each with its likely intended name: a
    config with three typos should take one round of fixing, not three."""
    unknown = list(_unknown_keys(obj, mapping, ""))
    if unknown:
        raise ConfigError("; ".join(unknown) + f" in {source}")


def _unknown_keys(obj: Any, mapping: Mapping[str, Any], where: str) -> Iterator[str]:
    known = {f.name for f in fields(obj)}
    for key, value in mapping.items():
        qualified = f"{where}{key}"
        if key not in known:
            candidates = [f"{where}{name}" for name in known]
            yield f"unknown setting {qualified!r}{_did_you_mean(qualified, candidates)}"
            continue
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            yield from _unknown_keys(current, value, qualified + ".")


def _apply_mapping(obj: Any, mapping: Mapping[str, Any], *, source: str, where: str = "") -> Any:
    if not where:
        _check_known(obj, mapping, source)
    known = {f.name: f for f in fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in mapping.items():
        qualified = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting {qualified!r} in {source}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting {qualified!r} in {source} must be a table")
            changes[key] = _apply_mapping(current, value, source=source, where=qualified + ".")
        else:
            coerced = _coerce(value, hints[key], qualified, source)
            _check_bounds(qualified, coerced, source)
            changes[key] = coerced
    return replace(obj, **changes) if changes else obj


def _check_bounds(qualified: str, value: Any, source: str) -> None:
    section, _, key = qualified.rpartition(".")
    if section == "sandbox" and key in LIMITS:
        problem = LIMITS[key].problem(key, value)
    elif section == "quotas" and key in QUOTAS:
        problem = QUOTAS[key].problem(key, value)
    elif qualified in SETTING_BOUNDS:
        problem = SETTING_BOUNDS[qualified].problem(qualified, value)
    else:
        return
    if problem is not None:
        raise ConfigError(f"{_where(qualified, source)}: {problem}")


def _where(qualified: str, source: str) -> str:
    """Where a value came from, as an admin would look for it."""
    if source == "environment":
        return f"environment ({ENV_PREFIX}{qualified.replace('.', '_').upper()})"
    section, _, _ = qualified.rpartition(".")
    return f"{source} [{section}]" if section else source


def _coerce(value: Any, hint: Any, name: str, source: str) -> Any:
    """``value`` as the field's type: text from the environment or flags is parsed, a TOML
    value must already have the type (a quoted port is a mistake worth naming)."""
    parse = source in _TEXT_SOURCES and isinstance(value, str)
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if parse and value.lower() in {"1", "true", "yes", "on"}:
                return True
            if parse and value.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if hint is int:
            if parse:
                return int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("expected an integer")
            return value
        if hint is float:
            if parse:
                return float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("expected a number")
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
        if origin is tuple:
            if parse:
                return tuple(item.strip() for item in value.split(",") if item.strip())
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return tuple(item.strip() for item in value if item.strip())
        if isinstance(hint, types.UnionType):  # pragma: no cover - no such fields yet
            raise ValueError("unsupported type")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} in {source}: {value!r} is not valid ({exc})") from None
    raise ConfigError(f"setting {name!r} has an unsupported type")  # pragma: no cover


STORE_BACKENDS: Final = ("sqlite", "postgres")


def _store_problems(store: StoreSettings) -> list[str]:
    if store.backend not in STORE_BACKENDS:
        return [f"store.backend = {store.backend!r} must be 'sqlite' or 'postgres'"]
    if store.backend == "sqlite":
        return ["store.dsn is set but store.backend is 'sqlite'"] if store.dsn else []
    if not store.dsn:
        return ["store.backend is 'postgres': set store.dsn (SMCP_BOX_STORE_DSN) as well"]
    if not store.dsn.startswith(("postgresql://", "postgres://")):
        return [f"store.dsn must be a postgresql:// URL, not {store.dsn[:20]!r}…"]
    if _dsn_has_password(store.dsn):
        return [
            "store.dsn must not hold a password: remove it from the URL and put it in the "
            "credentials folder's store-password file"
        ]
    return []


def _dsn_has_password(dsn: str) -> bool:
    parsed = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qs(parsed.query)
    return parsed.password is not None or "password" in query


def read_store_password(settings: Settings) -> str | None:
    """The PostgreSQL password from the credentials folder's ``store-password`` file; None
    when there is no such file (peer or certificate authentication, or a .pgpass)."""
    credentials = settings.credentials_path()
    if credentials is None:
        return None
    path = credentials / "store-password"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the store password {path}: {exc.strerror}") from None
    return text.rstrip("\r\n")


def _validate(settings: Settings) -> None:
    """Checks across fields; each field's own range is checked as its layer is applied."""
    problems: list[str] = []
    if bool(settings.server.tls_cert) != bool(settings.server.tls_key):
        problems.append("server.tls_cert and server.tls_key must be set together")
    if settings.log_level not in {"debug", "info", "warning", "error"}:
        problems.append("log_level must be one of debug, info, warning, error")
    problems += _store_problems(settings.store)
    issuer = settings.oauth.issuer
    if issuer and (not issuer.startswith(("https://", "http://")) or issuer.endswith("/")):
        problems.append(
            f"oauth.issuer = {issuer!r} must be the box's base URL, like https://box.lan:8765 "
            "(http:// only for a loopback box), with no trailing slash"
        )
    for network in settings.server.trusted_proxies:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            problems.append(
                f"server.trusted_proxies: {network!r} is not an IP address or CIDR network"
            )
    for key in settings.vetting.trusted_publishers:
        if not re.fullmatch(PUBLISHER_KEY_PATTERN, key):
            problems.append(
                f"vetting.trusted_publishers entry {key!r} is not a publisher key: give it as "
                "`smcp-box publisher keygen` prints it, ed25519:<base64 of 32 bytes>"
            )
    if settings.vetting.on_changed_definitions not in CHANGED_DEFINITIONS_MODES:
        problems.append(
            "vetting.on_changed_definitions must be "
            + " or ".join(repr(mode) for mode in CHANGED_DEFINITIONS_MODES)
        )
    if settings.vetting.baseline not in BASELINE_MODES:
        problems.append("vetting.baseline must be 'flag' or 'block'")
    if settings.vetting.baseline_warmup_calls < 1:
        problems.append("vetting.baseline_warmup_calls must be at least 1")
    if settings.server.session_touch_s >= settings.sessions.idle_timeout_s:
        problems.append(
            f"server.session_touch_s ({settings.server.session_touch_s:g}) must be shorter than "
            f"sessions.idle_timeout_s ({settings.sessions.idle_timeout_s:g}), or sessions in use "
            "would expire between the writes that record their use"
        )
    if settings.cluster.box_id and not re.fullmatch(BOX_ID_PATTERN, settings.cluster.box_id):
        problems.append(
            f"cluster.box_id = {settings.cluster.box_id!r} must be 1-32 letters, digits or "
            "underscores (no '-': session ids are <box_id>-<random>)"
        )
    if settings.cluster.dead_after_s < 2 * settings.cluster.heartbeat_s:
        problems.append(
            f"cluster.dead_after_s ({settings.cluster.dead_after_s:g}) must be at least twice "
            f"cluster.heartbeat_s ({settings.cluster.heartbeat_s:g}), or one late heartbeat "
            "would make a live box look gone"
        )
    if settings.tenants_scan_s < 0:
        problems.append("tenants_scan_s must be 0 (never) or a number of seconds")
    if settings.tasks.default_timeout_s > settings.tasks.max_timeout_s:
        problems.append(
            f"tasks.default_timeout_s ({settings.tasks.default_timeout_s}) must not exceed "
            f"tasks.max_timeout_s ({settings.tasks.max_timeout_s})"
        )
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


def box_id(settings: Settings, hostname: str | None = None) -> str:
    """This box's id: ``[cluster] box_id``, or else the host name made to fit
    :data:`BOX_ID_PATTERN` (every other character an underscore, at most 32; ``box`` for
    an empty one)."""
    if settings.cluster.box_id:
        return settings.cluster.box_id
    name = socket.gethostname() if hostname is None else hostname
    sanitized = re.sub(r"[^A-Za-z0-9_]", "_", name.split(".")[0])[:32]
    return sanitized or "box"


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """A plain dict of the tree, for ``config check`` and the admin status view."""
    return dataclasses.asdict(settings)
