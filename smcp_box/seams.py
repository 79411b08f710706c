"""The seams every package shares: records and Protocols, each defined once, stdlib only.

Lower packages (``protocol``, ``sandbox``, ``store``, ``auth``, ``vetting``, ``tenancy``)
implement or use these; upper ones (``web``, ``box``, ``admin``, ``ops``, ``tui``) wire them
together. Keeping them here, importing nothing of the box, is what lets imports flow one way:
a store never needs the web package to know what a session record is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

#: A decoded JSON object, as JSON-RPC messages, admin API bodies and audit details are.
JsonObject = dict[str, Any]
#: How a tenant's callers prove who they are (tenant.toml ``auth``).
AuthMode = Literal["api_key", "oauth", "both", "none"]
AUTH_MODES: Final[tuple[AuthMode, ...]] = ("api_key", "oauth", "both", "none")
#: What a tenant's module is (tenant.toml ``kind``): a core module of the smcp-v1 ABI, a
#: component of the ``smcp:box`` WIT world, or a WASI command speaking MCP over stdio.
TenantKind = Literal["core", "component", "stdio"]
TENANT_KINDS: Final[tuple[TenantKind, ...]] = ("core", "component", "stdio")
#: Bytes in a mebibyte: memory limits are set in MiB, quotas in bytes.
MIB: Final = 1024 * 1024

#: Sends one JSON-RPC notification (a complete message dict) to the caller's stream.
NotifySink = Callable[[JsonObject], Awaitable[None]]


@dataclass(frozen=True)
class ModuleDescription:
    """What a tenant module says about itself in reply to a warm-up ``initialize``, and its
    tools from a warm-up ``tools/list``.

    Cached per module hash; answers ``server/discover`` and the box's half of ``initialize``.
    ``tools`` (the tool objects as listed, each with its ``inputSchema``) is what the box checks
    ``Mcp-Param-*`` headers against; None when the module has no tools capability or the list
    could not be had, and the transport then asks the module itself.
    """

    server_info: JsonObject
    capabilities: JsonObject
    instructions: str | None = None
    tools: tuple[JsonObject, ...] | None = None
    #: The module's prompts/list and resources/templates/list (None: no such capability), and
    #: its resources/list: None also when it could not be had without kv (approvals cover
    #: static resources only when the module lists them without state; docs/vetting.md).
    prompts: tuple[JsonObject, ...] | None = None
    resource_templates: tuple[JsonObject, ...] | None = None
    resources: tuple[JsonObject, ...] | None = None


@dataclass
class CallContext:
    """Everything a tenant call needs to know about the request it serves."""

    tenant: str
    protocol_version: str
    notify: NotifySink
    session_id: str | None = None
    request_id: str | int | None = None
    #: Lowest log level the client asked for (legacy ``logging/setLevel``); None means all.
    log_level: str | None = None
    source_ip: str | None = None
    #: Who is calling (the authenticated principal); None for the box's own calls (warm-up,
    #: vetting), which audit as "system".
    caller: Principal | None = None
    #: Receipt filled in by the runtime: fuel, wall time, peak memory, host calls.
    receipt: dict[str, Any] = field(default_factory=dict)
    #: Quota refusals the call met without failing (a kv write refused: the module got -1),
    #: as ``smcp_box.errors.QuotaExceeded`` errors (seams imports nothing of the box), appended
    #: by the runtime; the transport counts them in /metrics and audits them.
    refusals: list[Any] = field(default_factory=list)


class TenantRuntime(Protocol):
    """One tenant's MCP server, as the transport sees it."""

    @property
    def name(self) -> str: ...

    @property
    def auth_mode(self) -> AuthMode: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def max_request_bytes(self) -> int:
        """The largest request body the tenant takes (its ``[limits] max_message_bytes``);
        the transport answers a larger one 413 without reading it all."""
        ...

    async def describe(self) -> ModuleDescription:
        """The module's server info and capabilities (cached after the first call)."""
        ...

    async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
        """Forward one JSON-RPC request or notification to the module.

        Returns the module's reply (a full JSON-RPC response dict with ``result`` or ``error``),
        or None for a notification. Raises a :class:`smcp_box.errors.SandboxError` subclass when
        the module breaks a limit; the transport turns it into a JSON-RPC error for that id.
        Notifications the module emits while running are awaited through ``ctx.notify``.
        """
        ...


class TenantDirectory(Protocol):
    def get(self, name: str) -> TenantRuntime | None: ...

    def by_host(self, host: str) -> TenantRuntime | None:
        """The tenant whose tenant.toml ``hosts`` lists ``host``: a bare DNS name, lowercase,
        without port or trailing dot (the transport normalises a request's Host to that)."""
        ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant their credential is scoped to, and how they proved it."""

    tenant: str
    subject: str
    method: Literal["api_key", "oauth", "none"]
    key_id: str | None = None
    #: What the credential may do (``mcp:tools``, ``mcp:resources``, ``mcp:prompts``); None
    #: means everything (a key made without scopes, a public tenant). Checked per method by the
    #: transport through :func:`smcp_box.auth.scopes.required_scope`.
    scopes: frozenset[str] | None = None


class Admission(Protocol):
    """Quotas and address limits the transport applies before doing any work for a request.

    Each check raises a :class:`smcp_box.errors.QuotaExceeded` (429, with ``retry_after`` for
    rates) or :class:`smcp_box.errors.AddressNotAllowed` (403); none awaits anything.
    """

    def check_address(self, tenant: str, address: str | None) -> None:
        """A locked-out address (too many failed authentications), or one outside the
        tenant's allowed networks, is refused."""
        ...

    def auth_failed(self, address: str | None) -> None:
        """Count a failed authentication against the client's address."""
        ...

    def admit_request(self, tenant: str) -> None:
        """Take one authenticated request from the tenant's rate (token bucket)."""
        ...

    def refusal_hold_s(self, tenant: str) -> float:
        """Count a rate refusal (429) of ``tenant``; the seconds to hold its answer (0: none):
        a client sending on regardless of ``Retry-After`` is answered no faster than told."""
        ...

    def check_new_session(self, tenant: str, open_sessions: int) -> None: ...

    def check_new_stream(self, tenant: str, open_streams: int) -> None: ...

    def audit_due(self, tenant: str, quota: str) -> int | None:
        """The number of refusals an audit row written now stands for, or None to skip the row
        (refusals are audited at most once a minute per tenant and quota)."""
        ...


class Authenticator(Protocol):
    async def authenticate(
        self,
        tenant: TenantRuntime,
        headers: Mapping[str, str],
        source_ip: str | None,
        resource: str | None = None,
    ) -> Principal:
        """Return the principal, or raise :class:`smcp_box.errors.AuthError`.

        A credential for another tenant is an AuthError (401), never a Principal of that tenant.
        ``resource`` is the URL the request was made to as the client names it (RFC 8707: an
        OAuth access token's audience must equal it); None when it cannot be known, which
        refuses every access token.
        """
        ...


@dataclass(frozen=True)
class SessionRecord:
    tenant: str
    session_id: str
    protocol_version: str
    client_info: JsonObject
    created_at: float
    last_seen: float
    ended: bool
    #: Small mutable per-session state the transport keeps (e.g. ``initialized``, log level).
    state: JsonObject
    #: The box that owns the session now (``[cluster] box_id``; "" for a row from before
    #: owners were kept), and the epoch bumped by every change of owner.
    owner_box: str = ""
    epoch: int = 0


class SessionStore(Protocol):
    """Sessions and their replayable SSE events (legacy era only)."""

    async def create_session(
        self, tenant: str, session_id: str, protocol_version: str, client_info: JsonObject
    ) -> None: ...

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord | None: ...

    async def update_session_state(
        self, tenant: str, session_id: str, state: JsonObject, *, epoch: int | None = None
    ) -> None:
        """Replace the session's state and mark it as seen now.

        With ``epoch`` (the one in the record the writer read), only while this box still owns
        the session at that epoch: else :class:`~smcp_box.errors.SessionMoved`.
        """
        ...

    async def claim_session(
        self, tenant: str, session_id: str, seen: SessionRecord
    ) -> SessionRecord:
        """Take the session over from the owner and epoch of ``seen`` (a compare-and-set) and
        return it as this box now owns it; if another box won the race, the row as it is now
        (owned by the winner). :class:`~smcp_box.errors.SessionNotFound` when it is gone."""
        ...

    async def end_session(self, tenant: str, session_id: str) -> bool: ...

    async def count_open_sessions(self, tenant: str | None = None) -> int:
        """Sessions not yet ended (of ``tenant``, or of every tenant)."""
        ...

    async def append_event(self, tenant: str, session_id: str, stream_id: str, payload: str) -> str:
        """Persist one SSE event's data and return its event id.

        Event ids are unique within the session and say which stream they belong to, so a
        ``Last-Event-ID`` alone identifies the stream to resume.
        """
        ...

    async def replay_events(
        self, tenant: str, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, str]]] | None:
        """The stream id of ``last_event_id`` and its events after it, oldest first.

        None when the event id is unknown for this session.
        """
        ...


class Auditor(Protocol):
    """Appends rows to the tamper-evident audit log. Callers never pass secrets."""

    async def record(
        self,
        event: str,
        *,
        tenant: str | None,
        actor: str,
        source_ip: str | None,
        outcome: str,
        detail: JsonObject,
    ) -> None: ...


class RequestObserver(Protocol):
    """Live metrics hook on the hot path; implementations must be cheap and never raise."""

    def observe(
        self, tenant: str, method: str, duration_s: float, error_kind: str | None
    ) -> None: ...

    def stream_opened(self, tenant: str) -> None: ...

    def stream_closed(self, tenant: str) -> None: ...


@dataclass(frozen=True)
class Change:
    """A change one box committed that every box sharing its store must act on.

    ``payload`` holds ids and names only, never a secret: on PostgreSQL it travels in a
    ``NOTIFY``, which any session of the database may read. At most 7,000 bytes of UTF-8.
    """

    #: What kind of change (see docs/scale-out.md "Fan-out" for the topics and payloads).
    topic: str
    payload: str
    #: The box that made the change (``[cluster] box_id``).
    origin: str


#: A listener of :class:`ChangeFeed`: called on the event loop, must not block or raise.
ChangeListener = Callable[[Change], None]


class ChangeFeed(Protocol):
    """Changes announced to every box of a fleet, this one included.

    Invariants: :meth:`publish` calls this box's own listeners before it returns (so a change
    takes effect here at once, whatever the backend), and every other box's listeners once,
    when its feed receives the change; a box never hears its own change a second time.
    On one box (SQLite) the feed is in-process only (store/changes.py).
    """

    #: This box's id, the ``origin`` of what it publishes.
    box_id: str

    async def publish(self, topic: str, payload: str) -> None: ...

    def subscribe(self, topic: str, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` for each change of ``topic`` from now on; returns the function
        that stops it."""
        ...
