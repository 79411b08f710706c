"""A real Hypercorn on a loopback port, serving a Quart app with only the MCP blueprint and the
in-memory seams of :mod:`tests.web.fakes`."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import httpx2
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from smcp_box.web.mcp import McpTransport, TransportSettings, create_mcp_blueprint
from smcp_box.web.services import McpServices
from tests.web.fakes import (
    Directory,
    EchoRuntime,
    MemorySessionStore,
    RecordingAuditor,
    RecordingObserver,
    TokenAuthenticator,
)

ALPHA_TOKEN = "alpha-token-0123456789"
ALPHA_OTHER_TOKEN = "alpha-other-token-0123456789"
SUSPENDED_TOKEN = "alpha-suspended-token-0123456789"
BETA_TOKEN = "beta-token-0123456789"

ACCEPT_BOTH = "application/json, text/event-stream"


@dataclass
class BoxUnderTest:
    base_url: str
    alpha: EchoRuntime
    beta: EchoRuntime
    sessions: MemorySessionStore
    auditor: RecordingAuditor
    observer: RecordingObserver
    settings: TransportSettings
    session_ids: list[str] = field(default_factory=list)
    #: The injected wall clock; tests move it forward.
    now: list[float] = field(default_factory=lambda: [0.0])
    #: The blueprint's transport (to shut it down the way ``serve`` does).
    transport: McpTransport | None = None

    def url(self, tenant: str = "alpha") -> str:
        return f"{self.base_url}/t/{tenant}/mcp"


def make_app(services: McpServices, settings: TransportSettings) -> Quart:
    """The smallest app around the blueprint, the way ``create_app`` mounts it."""
    app = Quart("mcp-test")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes * 2
    app.register_blueprint(create_mcp_blueprint(services, settings))
    return app


async def run_box(
    settings: TransportSettings, *, alpha: EchoRuntime | None = None
) -> AsyncIterator[BoxUnderTest]:
    alpha, beta = alpha or EchoRuntime("alpha"), EchoRuntime("beta")
    disabled = EchoRuntime("gamma", enabled=False)
    now = [1_700_000_000.0]
    store = MemorySessionStore(clock=lambda: now[0])
    auditor = RecordingAuditor()
    observer = RecordingObserver()
    counter = itertools.count(1)
    issued: list[str] = []

    def new_session_id() -> str:
        session_id = f"sess-{next(counter)}-0123456789abcdef"
        issued.append(session_id)
        return session_id

    services = McpServices(
        tenants=Directory(alpha, beta, disabled),
        authenticator=TokenAuthenticator(
            {
                ALPHA_TOKEN: ("alpha", "alice"),
                ALPHA_OTHER_TOKEN: ("alpha", "mallory"),
                SUSPENDED_TOKEN: ("alpha", "suspended"),
                BETA_TOKEN: ("beta", "bob"),
            }
        ),
        sessions=store,
        auditor=auditor,
        observer=observer,
        clock=lambda: now[0],
        new_session_id=new_session_id,
    )
    app = make_app(services, settings)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = Config()
    # Hypercorn adopts (and closes) the listening socket: no port race between bind and serve.
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 2.0
    config.accesslog = None
    config.errorlog = "-"
    shutdown = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=shutdown.wait))
    box = BoxUnderTest(
        base_url=f"http://127.0.0.1:{port}",
        alpha=alpha,
        beta=beta,
        sessions=store,
        auditor=auditor,
        observer=observer,
        settings=settings,
        session_ids=issued,
        now=now,
        transport=app.extensions["smcp_box.mcp"],
    )
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(200):
                try:
                    await probe.get(f"{box.base_url}/healthz-probe")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
        yield box
    finally:
        await app.extensions["smcp_box.mcp"].aclose()
        shutdown.set()
        await asyncio.wait_for(server, 10)


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
