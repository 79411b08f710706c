"""What the MCP transport blueprint is given: the web layer's own record of its services.

The records and Protocols themselves live in :mod:`smcp_box.seams`, shared by every package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from smcp_box.auth.server import BoxAuthorizationServer
from smcp_box.auth.throttle import LoginThrottle
from smcp_box.auth.tokens import TokenService
from smcp_box.metrics import BoxFigures, TenantFigures
from smcp_box.seams import (
    Admission,
    Auditor,
    Authenticator,
    ChangeFeed,
    RequestObserver,
    SessionStore,
    TenantDirectory,
)
from smcp_box.tenancy.blob_resources import FollowBlobs
from smcp_box.tenancy.runtime import WasmTenant
from smcp_box.web.connections import ConnectionGuard
from smcp_box.web.drain import DrainSwitch
from smcp_box.web.mcp_tasks import TaskService


@dataclass
class McpServices:
    """What the MCP transport blueprint needs, injected by ``create_app``."""

    tenants: TenantDirectory
    authenticator: Authenticator
    sessions: SessionStore
    auditor: Auditor
    observer: RequestObserver
    #: Wall clock, injected so tests control it.
    clock: Callable[[], float]
    #: Source of cryptographically random session ids (e.g. ``secrets.token_urlsafe``).
    new_session_id: Callable[[], str]
    #: Quotas and per-address limits (tenancy/quotas.py).
    admission: Admission
    #: This box's id in a fleet (``[cluster] box_id``).
    box_id: str = "box"
    #: Changes announced to every box sharing the store; None: this box only, nothing to hear.
    changes: ChangeFeed | None = None
    #: Follows changes of blobs served as resources (web/blob_resources.py); None: none.
    blob_changes: FollowBlobs | None = None
    #: Runs durable tasks (web/mcp_tasks.py); None: tools/call never becomes a task.
    tasks: TaskService | None = None
    #: Whether the box is draining (web/drain.py): new sessions are refused while it is.
    drain: DrainSwitch | None = None


#: One consistent snapshot of the box's figures, for a ``/metrics`` scrape.
MetricsSnapshot = Callable[[], Awaitable[tuple[BoxFigures, list[TenantFigures]]]]


@dataclass
class OAuthServices:
    """What the authorization server's blueprint needs (web/oauth.py)."""

    server: BoxAuthorizationServer
    #: Failed sign-ins per user and per address (one per box: its memory is the throttle).
    throttle: LoginThrottle


@dataclass
class AppServices:
    """Everything ``create_app`` needs from the running box, and nothing more."""

    mcp: McpServices
    #: Why the box is not ready to serve (an empty list when it is): ``/readyz``.
    readiness: Callable[[], Awaitable[list[str]]]
    metrics_snapshot: MetricsSnapshot
    #: The box's OAuth access tokens and signing keys: verified by the transport (through
    #: ``mcp.authenticator``), published at /oauth/jwks, issued by the authorization server.
    tokens: TokenService
    #: Bearer token a scraper must send for /metrics; None: loopback clients only.
    metrics_token: str | None = None
    #: The authorization server; None serves no /oauth routes (tests of other parts).
    oauth: OAuthServices | None = None
    #: ``GET /catalog``: the tenants served now, and the credential check (no audit row per
    #: tenant tried). None: no catalog route.
    catalog_tenants: Callable[[], Sequence[WasmTenant]] | None = None
    catalog_authenticator: Authenticator | None = None
    #: Per-address connection and stream caps (the box's, so reloads and /metrics reach it);
    #: None: ``create_app`` makes one from the settings.
    connections: ConnectionGuard | None = None
