"""The resource server on a real box (in this process, served by Hypercorn on loopback, real
wasm tenants): protected resource metadata, challenges, and which credential each ``auth``
mode takes. Access tokens are minted with the box's own TokenService; the sign-in flow that
normally issues them is the authorization server's (tests/auth of the oauth blueprint).

Tenants: ``notes`` (api_key), ``notes-oauth`` (oauth), ``notes-both`` (both), ``utils``
(oauth, served by its host name ``utils.box.test``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.auth.tokens import TokenService
from smcp_box.box import Box
from tests.admin.support import (
    RunningBox,
    box_settings,
    running_box,
    serving_mcp,
    short_runtime_dir,
)
from tests.e2e.clients import (
    LEGACY,
    MODERN,
    connect,
    legacy_headers,
    modern_call_tool,
    modern_headers,
    modern_request,
)

UTILS_HOST = "utils.box.test"
ALL = " ".join(ALL_SCOPES)


def _copy_notes(tenants: Path, name: str, auth: str) -> None:
    shutil.copytree(tenants / "notes", tenants / name)
    manifest = tenants / name / "tenant.toml"
    text = manifest.read_text().replace('name = "notes"', f'name = "{name}"')
    manifest.write_text(re.sub(r'(?m)^auth = ".*"$', f'auth = "{auth}"', text))


def _tenants(tenants: Path) -> None:
    _copy_notes(tenants, "notes-oauth", "oauth")
    _copy_notes(tenants, "notes-both", "both")
    manifest = tenants / "utils" / "tenant.toml"
    text = re.sub(r'(?m)^auth = ".*"$', 'auth = "oauth"', manifest.read_text())
    manifest.write_text(text.replace('name = "utils"', f'name = "utils"\nhosts = ["{UTILS_HOST}"]'))


@dataclass
class Served:
    rb: RunningBox
    base: str
    http: httpx.AsyncClient

    @property
    def tokens(self) -> TokenService:
        return self.rb.box.tokens

    @property
    def host(self) -> str:
        return self.base.removeprefix("http://")

    def url(self, tenant: str) -> str:
        return f"{self.base}/t/{tenant}/mcp"

    def mint(self, tenant: str, **overrides: Any) -> str:
        args: dict[str, Any] = {
            "issuer": self.base,
            "subject": "alice",
            "tenant": tenant,
            "audience": self.url(tenant),
            "client_id": "https://client.test/metadata.json",
            "scopes": frozenset(ALL_SCOPES),
        }
        args.update(overrides)
        token, _ = self.tokens.issue_access_token(**args)
        return token

    async def modern_list(self, url: str, credential: str | None, **headers: str) -> httpx.Response:
        sent = modern_headers(credential or "", "tools/list")
        if credential is None:
            del sent["Authorization"]
        sent.update(headers)
        return await self.http.post(url, json=modern_request(1, "tools/list", {}), headers=sent)


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
async def served(tmp_path: Path, module_cache: Path) -> AsyncIterator[Served]:
    async with (
        running_box(tmp_path, module_cache, before_start=_tenants) as rb,
        serving_mcp(rb) as base,
        httpx.AsyncClient(timeout=15) as http,
    ):
        yield Served(rb, base, http)


def challenge(response: httpx.Response) -> dict[str, str]:
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', value))


# --- metadata ------------------------------------------------------------------------------


async def test_protected_resource_metadata_per_tenant(served: Served) -> None:
    for tenant in ("notes-oauth", "notes-both"):
        response = await served.http.get(
            f"{served.base}/.well-known/oauth-protected-resource/t/{tenant}/mcp"
        )
        assert response.status_code == 200
        assert response.json() == {
            "resource": served.url(tenant),
            "authorization_servers": [served.base],
            "scopes_supported": list(ALL_SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": tenant,
        }
        assert response.headers["access-control-allow-origin"] == "*"
    for tenant in ("notes", "nobody", "utils"):
        # api_key tenants have no metadata; utils is served by its host name only.
        missing = await served.http.get(
            f"{served.base}/.well-known/oauth-protected-resource/t/{tenant}/mcp"
        )
        assert missing.status_code == (200 if tenant == "utils" else 404), tenant


async def test_host_routed_tenant_metadata_in_host_and_root_form(served: Served) -> None:
    port = served.host.rsplit(":", 1)[1]
    host = {"Host": f"{UTILS_HOST}:{port}"}
    expected_resource = f"http://{UTILS_HOST}:{port}/mcp"
    for path in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ):
        response = await served.http.get(served.base + path, headers=host)
        assert response.status_code == 200, path
        assert response.json()["resource"] == expected_resource
        assert response.json()["authorization_servers"] == [f"http://{UTILS_HOST}:{port}"]
    root = await served.http.get(f"{served.base}/.well-known/oauth-protected-resource")
    assert root.status_code == 404
    assert "/.well-known/oauth-protected-resource/t/<tenant>/mcp" in root.json()["message"]


async def test_jwks_publishes_the_public_signing_keys(served: Served) -> None:
    response = await served.http.get(f"{served.base}/oauth/jwks")
    assert response.status_code == 200
    body = response.json()
    assert body == served.tokens.jwks()
    assert len(body["keys"]) == 1
    assert all("d" not in key for key in body["keys"])


# --- challenges ----------------------------------------------------------------------------


async def test_oauth_challenge_leads_to_the_tenants_metadata(served: Served) -> None:
    for tenant in ("notes-oauth", "notes-both"):
        response = await served.modern_list(served.url(tenant), None)
        assert response.status_code == 401
        params = challenge(response)
        assert "error" not in params  # no credential was sent (RFC 6750 §3.1)
        assert params["scope"] == ALL
        metadata = await served.http.get(params["resource_metadata"])
        assert metadata.status_code == 200
        # The discovery loop closes: the metadata names the URL the client called.
        assert metadata.json()["resource"] == served.url(tenant)
    # An api_key tenant's challenge sends no client off to sign in.
    plain = challenge(await served.modern_list(served.url("notes"), None))
    assert "resource_metadata" not in plain
    assert "scope" not in plain


async def test_invalid_tokens_are_401_invalid_token_naming_the_reason(served: Served) -> None:
    url = served.url("notes-oauth")
    past = TokenService(served.rb.box.store, served.rb.settings.oauth, clock=lambda: 1e9)
    await past.refresh()
    expired, _ = past.issue_access_token(
        issuer=served.base,
        subject="alice",
        tenant="notes-oauth",
        audience=url,
        client_id="c",
        scopes=frozenset(ALL_SCOPES),
    )
    good = served.mint("notes-oauth")
    head, _, signature = good.rpartition(".")
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    cases = [
        ("expired", expired, "expired"),
        (
            "wrong audience",
            served.mint("notes-oauth", audience="https://elsewhere.test/t/notes-oauth/mcp"),
            "another resource",
        ),
        ("tampered signature", tampered, "signature does not verify"),
        ("tenant A's token on tenant B", served.mint("notes-both"), "another resource"),
        # Audience right, tenant claim wrong: only a confused issuer makes these; refused.
        ("tenant claim", served.mint("notes-both", audience=url), "not valid for tenant"),
    ]
    for label, token, fragment in cases:
        response = await served.modern_list(url, token)
        assert response.status_code == 401, label
        params = challenge(response)
        assert params["error"] == "invalid_token", label
        assert fragment in params["error_description"], (label, params)
        assert params["scope"] == ALL
        assert params["resource_metadata"].endswith("/t/notes-oauth/mcp")
    assert (await served.modern_list(url, good)).status_code == 200


async def test_a_revoked_token_is_refused(served: Served) -> None:
    token = served.mint("notes-oauth")
    url = served.url("notes-oauth")
    assert (await served.modern_list(url, token)).status_code == 200
    assert await served.tokens.revoke_access_token(token)
    response = await served.modern_list(url, token)
    assert response.status_code == 401
    assert "revoked" in challenge(response)["error_description"]


async def test_tokens_come_only_from_the_authorization_header(served: Served) -> None:
    token = served.mint("notes-oauth")
    url = served.url("notes-oauth")
    response = await served.modern_list(f"{url}?access_token={token}", None)
    assert response.status_code == 401
    assert "error" not in challenge(response)  # as if no credential was sent at all


# --- which credentials each mode takes -----------------------------------------------------


async def test_each_mode_takes_its_credentials(served: Served) -> None:
    store = served.rb.box.store
    keys = {
        t: (await store.create_api_key(t, "rs test"))[1]
        for t in ("notes", "notes-oauth", "notes-both")
    }
    tokens = {t: served.mint(t) for t in ("notes", "notes-oauth", "notes-both")}

    async def status(tenant: str, credential: str) -> tuple[int, str]:
        response = await served.modern_list(served.url(tenant), credential)
        reason = (
            challenge(response).get("error_description", "") if response.status_code == 401 else ""
        )
        return response.status_code, reason

    code, reason = await status("notes", tokens["notes"])
    assert code == 401
    assert "accepts API keys only" in reason
    assert (await status("notes", keys["notes"]))[0] == 200
    code, reason = await status("notes-oauth", keys["notes-oauth"])
    assert code == 401
    assert "accepts OAuth access tokens only" in reason
    assert (await status("notes-oauth", tokens["notes-oauth"]))[0] == 200
    assert (await status("notes-both", keys["notes-both"]))[0] == 200
    assert (await status("notes-both", tokens["notes-both"]))[0] == 200


async def test_a_host_routed_tenants_token_names_its_host(served: Served) -> None:
    port = served.host.rsplit(":", 1)[1]
    resource = f"http://{UTILS_HOST}:{port}/mcp"
    token = served.mint("utils", audience=resource)
    routed = await served.modern_list(f"{served.base}/mcp", token, Host=f"{UTILS_HOST}:{port}")
    assert routed.status_code == 200, routed.text
    # The same tenant by path is another resource URL: that token is not for it.
    by_path = await served.modern_list(served.url("utils"), token)
    assert by_path.status_code == 401
    assert "another resource" in challenge(by_path)["error_description"]
    anonymous = await served.modern_list(f"{served.base}/mcp", None, Host=f"{UTILS_HOST}:{port}")
    assert challenge(anonymous)["resource_metadata"] == (
        f"http://{UTILS_HOST}:{port}/.well-known/oauth-protected-resource/mcp"
    )


# --- MCP with a token, both eras -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_the_sdk_client_works_with_an_access_token(served: Served, mode: str) -> None:
    token = served.mint("notes-oauth")
    async with connect(served.url("notes-oauth"), token, mode) as client:
        assert client.protocol_version == (LEGACY if mode == "legacy" else MODERN)
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "note_create" in tools
        created = await client.call_tool("note_create", {"title": f"by token {mode}", "body": "x"})
        assert not created.is_error
    await served.rb.box.auditor.flush()
    rows = await served.rb.box.store.audit_page(event="auth.success", tenant="notes-oauth")
    assert rows
    assert {row.actor for row in rows} == {"user:alice"}
    assert {row.detail["method"] for row in rows} == {"oauth"}


async def test_a_tokens_scopes_are_enforced_in_both_eras(served: Served) -> None:
    token = served.mint("notes-oauth", scopes=frozenset({"mcp:prompts"}))
    url = served.url("notes-oauth")
    modern = await served.http.post(
        url,
        json=modern_request(1, "tools/call", {"name": "note_list", "arguments": {}}),
        headers=modern_headers(token, "tools/call", "note_list"),
    )
    assert modern.status_code == 403
    assert challenge(modern)["error"] == "insufficient_scope"
    assert challenge(modern)["scope"] == "mcp:tools"
    assert challenge(modern)["resource_metadata"].endswith("/t/notes-oauth/mcp")
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    response = await served.http.post(url, json=init, headers=legacy_headers(token))
    assert response.status_code == 200  # initialize needs no scope
    session = response.headers["mcp-session-id"]
    listed = await served.http.post(
        url,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        headers=legacy_headers(token, session),
    )
    assert listed.status_code == 403
    assert challenge(listed)["scope"] == "mcp:tools"
    full = served.mint("notes-oauth")
    reply = await modern_call_tool(served.http, url, full, "note_list", {})
    assert "result" in reply, reply


# --- the box's key rotation ----------------------------------------------------------------


async def test_the_box_rotates_its_signing_key_on_its_clock(
    tmp_path: Path, module_cache: Path
) -> None:
    now = [1_800_000_000.0]
    runtime = short_runtime_dir()
    settings = box_settings(tmp_path, module_cache, runtime)
    settings = replace(settings, oauth=replace(settings.oauth, signing_key_rotation_days=2))
    box = await Box.start(settings, clock=lambda: now[0])
    try:
        (first,) = box.tokens.jwks()["keys"]
        now[0] += 2 * 86_400 - 1
        assert not await box.rotate_signing_keys()
        now[0] += 1
        assert await box.rotate_signing_keys()
        kids = [key["kid"] for key in box.tokens.jwks()["keys"]]
        assert len(kids) == 2
        assert kids[0] == first["kid"]  # published until its tokens have expired
        now[0] += settings.oauth.access_token_ttl_s + 1
        assert not await box.rotate_signing_keys()
        (second,) = box.tokens.jwks()["keys"]
        assert second["kid"] != first["kid"]
    finally:
        await box.stop()
        shutil.rmtree(runtime, ignore_errors=True)
