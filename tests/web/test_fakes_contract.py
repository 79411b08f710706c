"""Each scripted seam tests/web keeps, run side by side with its real counterpart on the contract
the web tests rely on: if a fake drifts from the real part, these fail rather than the web tests
passing against behaviour the box does not have.

* tenants: the scripted runtimes vs :class:`WasmTenant` over a real wasm module;
* the authenticator: fixed tokens vs :class:`ApiKeyAuthenticator` over real keys in the store;
* the observer: the recording one vs :class:`LiveMetrics`.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smcp_box.auth.apikeys import ApiKeyAuthenticator
from smcp_box.auth.resource import TenantAuthenticator
from smcp_box.auth.tokens import TokenService
from smcp_box.config import OAuthSettings, SandboxSettings
from smcp_box.errors import AuthError, BadModuleReply
from smcp_box.metrics import LiveMetrics
from smcp_box.sandbox import Sandbox
from smcp_box.seams import (
    Authenticator,
    CallContext,
    JsonObject,
    RequestObserver,
    TenantRuntime,
)
from smcp_box.store import Store
from smcp_box.tenancy.manifest import load_manifest, resolve_limits
from smcp_box.tenancy.runtime import WasmTenant
from tests.tenancy.pager import build_pager
from tests.tenancy.test_runtime_describe import MemoryKv
from tests.web.fakes import EchoRuntime, RecordingObserver, TokenAuthenticator
from tests.web.fakes_interactive import InteractiveRuntime

# --- tenants -------------------------------------------------------------------------------


@dataclass
class RuntimeCase:
    runtime: TenantRuntime
    #: A runtime whose module answers ``wrong_request`` with another id (the real module needs
    #: a broken build for that; the scripted ones have a tool for it).
    wrong: TenantRuntime
    wrong_request: JsonObject
    notified: list[JsonObject] = field(default_factory=list)

    def ctx(self) -> CallContext:
        async def sink(message: JsonObject) -> None:
            self.notified.append(message)

        return CallContext(tenant=self.runtime.name, protocol_version="2025-11-25", notify=sink)


WRONG_ID_TOOL = {
    "jsonrpc": "2.0",
    "id": 5,
    "method": "tools/call",
    "params": {"name": "wrong_id", "arguments": {}},
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


def wasm_tenant(sandbox: Sandbox, manifest_path: Path) -> WasmTenant:
    manifest = load_manifest(manifest_path)
    limits = resolve_limits(SandboxSettings(), manifest.limit_overrides)
    module = sandbox.load(manifest.name, manifest.read_module(), limits)
    return WasmTenant(manifest, module, sandbox=sandbox, kv=MemoryKv(), clock=time.time)


@pytest.fixture(params=["echo", "interactive", "wasm"])
def case(request: pytest.FixtureRequest, tmp_path: Path, sandbox: Sandbox) -> RuntimeCase:
    if request.param == "echo":
        echo = EchoRuntime("alpha")
        return RuntimeCase(echo, echo, WRONG_ID_TOOL)
    if request.param == "interactive":
        interactive = InteractiveRuntime()
        return RuntimeCase(interactive, interactive, WRONG_ID_TOOL)
    good = wasm_tenant(sandbox, build_pager(tmp_path / "good", pages=2))
    # A second build of the same module that answers every request with another id.
    wrong = wasm_tenant(sandbox, build_pager(tmp_path / "wrong", pages=1, broken=3, name="wrong"))
    tools_list = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}
    return RuntimeCase(good, wrong, tools_list)


async def test_runtime_description_lists_what_tools_list_lists(case: RuntimeCase) -> None:
    described = await case.runtime.describe()
    assert isinstance(described.server_info.get("name"), str)
    assert isinstance(described.capabilities.get("tools"), dict)
    assert await case.runtime.describe() == described
    listed = await case.runtime.call(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}, case.ctx()
    )
    assert listed is not None
    # The web tests read schemas from the description; the box may also re-list (first page).
    first_page = listed["result"]["tools"]
    assert described.tools is not None
    assert list(described.tools[: len(first_page)]) == first_page


async def test_runtime_replies_answer_the_request(case: RuntimeCase) -> None:
    for request_id in ("r-1", 7):
        reply = await case.runtime.call(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": {}},
            case.ctx(),
        )
        assert reply is not None
        assert reply["jsonrpc"] == "2.0"
        assert reply["id"] == request_id
        assert ("result" in reply) != ("error" in reply)


async def test_runtime_unknown_method_is_an_error_reply(case: RuntimeCase) -> None:
    reply = await case.runtime.call(
        {"jsonrpc": "2.0", "id": 3, "method": "made/up", "params": {}}, case.ctx()
    )
    assert reply is not None
    assert reply["error"]["code"] == -32601
    assert reply["id"] == 3


async def test_runtime_notifications_get_no_reply(case: RuntimeCase) -> None:
    message = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert await case.runtime.call(message, case.ctx()) is None
    # What a runtime emits meanwhile reaches ctx.notify as complete notifications.
    for emitted in case.notified:
        assert emitted["jsonrpc"] == "2.0"
        assert isinstance(emitted["method"], str)
        assert "id" not in emitted


async def test_runtime_reply_with_another_id_is_a_module_fault(case: RuntimeCase) -> None:
    with pytest.raises(BadModuleReply, match="different request id"):
        await case.wrong.call(case.wrong_request, case.ctx())


# --- the authenticator --------------------------------------------------------------------


@dataclass
class AuthCase:
    authenticator: Authenticator
    #: A valid key of each tenant.
    keys: dict[str, str]


@pytest.fixture(params=["tokens", "api_keys"])
async def auth(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthCase]:
    if request.param == "tokens":
        yield AuthCase(
            TokenAuthenticator({"alpha-key-0123": ("alpha", "a"), "beta-key-0123": ("beta", "b")}),
            {"alpha": "alpha-key-0123", "beta": "beta-key-0123"},
        )
        return
    store = await Store.open(tmp_path / "keys.db", secrets.token_bytes(32))
    try:
        _, alpha_key = await store.create_api_key("alpha", "contract")
        _, beta_key = await store.create_api_key("beta", "contract")
        # What the box runs: the per-mode authenticator over real API keys and tokens.
        tokens = TokenService(store, OAuthSettings())
        await tokens.start()
        real = TenantAuthenticator(ApiKeyAuthenticator(store), tokens)
        yield AuthCase(real, {"alpha": alpha_key, "beta": beta_key})
    finally:
        await store.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_auth_a_tenants_key_gives_its_principal(auth: AuthCase) -> None:
    principal = await auth.authenticator.authenticate(
        EchoRuntime("alpha"), bearer(auth.keys["alpha"]), "127.0.0.1"
    )
    assert principal.tenant == "alpha"
    assert principal.method == "api_key"
    assert principal.key_id
    assert principal.subject


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer "},
        bearer("smcp_not-a-key"),
    ],
)
async def test_auth_no_valid_key_is_an_auth_error(auth: AuthCase, headers: dict[str, str]) -> None:
    with pytest.raises(AuthError):
        await auth.authenticator.authenticate(EchoRuntime("alpha"), headers, None)


async def test_auth_another_tenants_key_is_refused(auth: AuthCase) -> None:
    with pytest.raises(AuthError):
        await auth.authenticator.authenticate(EchoRuntime("alpha"), bearer(auth.keys["beta"]), None)


async def test_auth_public_tenants_need_no_key(auth: AuthCase) -> None:
    public = EchoRuntime("open", auth_mode="none")
    principal = await auth.authenticator.authenticate(public, {}, None)
    assert (principal.tenant, principal.subject, principal.method) == ("open", "anonymous", "none")


# --- the observer -------------------------------------------------------------------------


@dataclass
class ObserverCase:
    observer: RequestObserver
    requests: Callable[[], int]
    errors: Callable[[], dict[str, int]]
    open_streams: Callable[[], int]


@pytest.fixture(params=["recording", "live"])
def observed(request: pytest.FixtureRequest) -> ObserverCase:
    if request.param == "recording":
        recording = RecordingObserver()
        return ObserverCase(
            recording,
            requests=lambda: sum(1 for o in recording.observations if o[0] == "alpha"),
            errors=lambda: dict(
                Counter(o[3] for o in recording.observations if o[0] == "alpha" and o[3])
            ),
            open_streams=lambda: recording.open_streams,
        )
    live = LiveMetrics(clock=lambda: 1_700_000_000.0)
    return ObserverCase(
        live,
        requests=lambda: int(live.snapshot("alpha")["requests"]),
        errors=lambda: dict(live.snapshot("alpha")["errors"]),
        open_streams=lambda: int(live.snapshot("alpha")["open_streams"]),
    )


def test_observer_counts_exchanges_and_error_kinds(observed: ObserverCase) -> None:
    observer = observed.observer
    observer.observe("alpha", "ping", 0.001, None)
    observer.observe("alpha", "tools/call", 0.2, "fuel")
    observer.observe("alpha", "other", 0.0, "rpc_error")
    observer.observe("alpha", "tools/call", 12.0, "fuel")
    assert observed.requests() == 4
    assert observed.errors() == {"fuel": 2, "rpc_error": 1}


def test_observer_open_streams_never_go_negative(observed: ObserverCase) -> None:
    observer = observed.observer
    observer.stream_opened("alpha")
    observer.stream_opened("alpha")
    assert observed.open_streams() == 2
    observer.stream_closed("alpha")
    observer.stream_closed("alpha")
    assert observed.open_streams() == 0
    observer.stream_closed("alpha")  # a close the box could not pair: never below zero
    assert observed.open_streams() == 0
