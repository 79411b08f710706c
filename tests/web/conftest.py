"""A real Hypercorn on a loopback port serving the real ``create_app`` over the real
:class:`~smcp_box.store.Store` (an encrypted SQLite file in a temporary folder) and the real
audit writer.

Three seams stay scripted, each because the real part cannot run here, and each is held to its
real counterpart by a contract test (``test_fakes_contract.py``):

* the tenants (:mod:`tests.web.fakes`, :mod:`tests.web.fakes_interactive`): Python modules that
  hold a call until the test releases or cancels it, say when a call started, and script input
  rounds and list changes; a wasm module cannot wait on the test, and a cancelled wasm call is
  not observable from outside;
* the authenticator: fixed bearer tokens (the tests name them) and a suspended key (403), which
  real API keys, random and never suspended, cannot express;
* the observer: it keeps each observation in order, which the live metrics only aggregate.
"""

from __future__ import annotations

import itertools
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from smcp_box.auth.tokens import TokenService
from smcp_box.config import OAuthSettings, QuotaSettings, Settings
from smcp_box.metrics import BoxFigures, TenantFigures
from smcp_box.seams import JsonObject, SessionRecord
from smcp_box.store import Store
from smcp_box.store.audit_writer import AuditWriter
from smcp_box.store.changes import LocalChangeFeed
from smcp_box.tenancy.quotas import Admission
from smcp_box.web.app import create_app
from smcp_box.web.connections import EXTENSION_KEY as CONNECTIONS_KEY
from smcp_box.web.connections import ConnectionGuard
from smcp_box.web.mcp import McpTransport, TransportSettings
from smcp_box.web.services import AppServices, McpServices
from tests.support.serving import serve_on_loopback
from tests.web.fakes import Directory, EchoRuntime, RecordingObserver, TokenAuthenticator
from tests.web.waiting import Changes

ALPHA_TOKEN = "alpha-token-0123456789"
ALPHA_OTHER_TOKEN = "alpha-other-token-0123456789"
SUSPENDED_TOKEN = "alpha-suspended-token-0123456789"
BETA_TOKEN = "beta-token-0123456789"

ACCEPT_BOTH = "application/json, text/event-stream"


@dataclass(frozen=True)
class Appended:
    """One SSE event the transport persisted, as the store acknowledged it."""

    event_id: str
    stream_id: str
    payload: str


class TappedStore:
    """The real store, with a tap that notes what the transport asked of it.

    Every call goes to the real store and its answer (or error) is the store's own; the tap
    only records the events it acknowledged and how often session state was written, which the
    store does not list.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.appended: dict[tuple[str, str], list[Appended]] = {}
        self.touches = 0
        self.changes = Changes()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def update_session_state(
        self, tenant: str, session_id: str, state: JsonObject, *, epoch: int | None = None
    ) -> None:
        await self.store.update_session_state(tenant, session_id, state, epoch=epoch)
        self.touches += 1
        self.changes.note()

    async def append_event(self, tenant: str, session_id: str, stream_id: str, payload: str) -> str:
        event_id = await self.store.append_event(tenant, session_id, stream_id, payload)
        self.appended.setdefault((tenant, session_id), []).append(
            Appended(event_id, stream_id, payload)
        )
        self.changes.note()
        return event_id


@dataclass
class BoxUnderTest:
    base_url: str
    alpha: EchoRuntime
    beta: EchoRuntime
    sessions: TappedStore
    auditor: AuditWriter
    observer: RecordingObserver
    settings: TransportSettings
    session_ids: list[str] = field(default_factory=list)
    #: The injected wall clock (the store's and the transport's); tests move it forward.
    now: list[float] = field(default_factory=lambda: [0.0])
    #: The blueprint's transport (to shut it down the way ``serve`` does).
    transport: McpTransport | None = None
    #: The app's per-address caps and their drop counts (web/connections.py).
    connections: ConnectionGuard | None = None
    #: The Quart app itself (its asgi_app is the lean MCP path in front of Quart's own).
    app: Any = None

    def url(self, tenant: str = "alpha") -> str:
        return f"{self.base_url}/t/{tenant}/mcp"

    async def session(self, session_id: str, tenant: str = "alpha") -> SessionRecord:
        """The session's record as the real store has it."""
        record = await self.sessions.store.get_session(tenant, session_id)
        assert record is not None, f"the store has no session {session_id!r}"
        return record

    def stored(self, session_id: str, tenant: str = "alpha") -> list[Appended]:
        """The events the store acknowledged for the session, oldest first."""
        return list(self.sessions.appended.get((tenant, session_id), []))

    async def audit_rows(self) -> list[dict[str, Any]]:
        """Every audit row written so far, oldest first (after flushing the writer)."""
        await self.auditor.flush()
        rows = await self.sessions.store.audit_page(limit=1000)
        return [
            {
                "event": row.event,
                "tenant": row.tenant,
                "actor": row.actor,
                "source_ip": row.source_ip,
                "outcome": row.outcome,
                "detail": row.detail,
            }
            for row in sorted(rows, key=lambda row: row.id)
        ]


@dataclass
class FleetMember:
    """One box of a fleet for :func:`run_box`: its store on the shared database, its box id and
    change feed, and the wall clock its store was opened with (the transport's too)."""

    store: Store
    box_id: str
    changes: LocalChangeFeed
    now: list[float]


def app_settings(transport: TransportSettings) -> Settings:
    """The settings tree whose server section is ``transport`` (they are one record)."""
    return Settings(server=transport)


async def run_box(
    settings: TransportSettings,
    *,
    alpha: EchoRuntime | None = None,
    hosts: dict[str, str] | None = None,
    admission: Admission | None = None,
    fleet: FleetMember | None = None,
) -> AsyncIterator[BoxUnderTest]:
    """``hosts`` (host name -> tenant name) are the tenants' tenant.toml ``hosts``. ``fleet``:
    serve as one box of a fleet, on its store (the caller's, closed here) and box id."""
    alpha, beta = alpha or EchoRuntime("alpha"), EchoRuntime("beta")
    disabled = EchoRuntime("gamma", enabled=False)
    now = [1_700_000_000.0] if fleet is None else fleet.now
    observer = RecordingObserver()
    counter = itertools.count(1)
    issued: list[str] = []
    prefix = "sess" if fleet is None else fleet.box_id

    def new_session_id() -> str:
        session_id = f"{prefix}-{next(counter)}-0123456789abcdef"
        issued.append(session_id)
        return session_id

    with tempfile.TemporaryDirectory(prefix="smcp-web-") as folder:
        if fleet is None:
            store = await Store.open(
                Path(folder) / "box.db", secrets.token_bytes(32), clock=lambda: now[0]
            )
        else:
            store = fleet.store
            store.join_fleet(fleet.box_id, fleet.changes)
        auditor = AuditWriter(store, clock=lambda: now[0])
        auditor.start()
        sessions = TappedStore(store)
        tokens = TokenService(store, OAuthSettings(), lambda: now[0])
        await tokens.start()

        async def readiness() -> list[str]:
            await store.healthcheck()
            return []

        async def no_metrics() -> tuple[BoxFigures, list[TenantFigures]]:
            raise AssertionError("tests/web does not scrape /metrics")

        services = McpServices(
            tenants=Directory(alpha, beta, disabled, hosts=hosts),
            authenticator=TokenAuthenticator(
                {
                    ALPHA_TOKEN: ("alpha", "alice"),
                    ALPHA_OTHER_TOKEN: ("alpha", "mallory"),
                    SUSPENDED_TOKEN: ("alpha", "suspended"),
                    BETA_TOKEN: ("beta", "bob"),
                }
            ),
            sessions=sessions,
            auditor=auditor,
            observer=observer,
            clock=lambda: now[0],
            new_session_id=new_session_id,
            admission=admission or Admission(QuotaSettings(), lambda _name: None),
            **({} if fleet is None else {"box_id": fleet.box_id, "changes": fleet.changes}),
        )
        app = create_app(
            app_settings(settings),
            AppServices(
                mcp=services, readiness=readiness, metrics_snapshot=no_metrics, tokens=tokens
            ),
        )
        transport: McpTransport = app.extensions["smcp_box.mcp"]
        assert transport.settings == settings

        try:
            async with serve_on_loopback(app) as base_url:
                box = BoxUnderTest(
                    base_url=base_url,
                    alpha=alpha,
                    beta=beta,
                    sessions=sessions,
                    auditor=auditor,
                    observer=observer,
                    settings=settings,
                    session_ids=issued,
                    now=now,
                    transport=transport,
                    connections=app.extensions[CONNECTIONS_KEY],
                    app=app,
                )
                try:
                    async with httpx.AsyncClient(timeout=10) as probe:
                        ready = await probe.get(f"{box.base_url}/readyz")
                        assert ready.status_code == 200, ready.text
                    yield box
                finally:
                    await transport.aclose()
        finally:
            await auditor.close()
            await store.close()


@pytest.fixture
async def box() -> AsyncIterator[BoxUnderTest]:
    async for running in run_box(TransportSettings(sse_keepalive_s=0.5, max_body_bytes=64 * 1024)):
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def sdk_http_client(token: str = ALPHA_TOKEN) -> httpx2.AsyncClient:
    """The httpx2 client the official SDK client runs on, carrying the bearer token."""
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(10.0, read=30.0),
    )
