"""The authorization server over real HTTP: metadata, the sign-in and consent pages, code and
refresh grants, revocation, and the negative matrix (each refusal with its RFC's error)."""

from __future__ import annotations

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9207 import AuthorizationServerMetadata as IssMetadata

from smcp_box.config import OAuthSettings
from smcp_box.errors import AuthError
from tests.web.oauth_box import (
    CLIENT_ID,
    PASSWORD,
    REDIRECT,
    authorize_url,
    exchange,
    form_of,
    get_tokens,
    redirect_params,
    run_oauth_box,
    sign_in_and_consent,
)


async def test_metadata_at_both_discovery_paths() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        for path in ("oauth-authorization-server", "openid-configuration"):
            response = await http.get(f"{box.base_url}/.well-known/{path}")
            assert response.status_code == 200
            meta = response.json()
            AuthorizationServerMetadata(meta).validate(metadata_classes=[IssMetadata])
            assert meta["issuer"] == box.base_url
            assert meta["code_challenge_methods_supported"] == ["S256"]
            assert meta["authorization_response_iss_parameter_supported"] is True
            assert meta["client_id_metadata_document_supported"] is False  # no fetcher here
            assert meta["registration_endpoint"] == f"{box.base_url}/oauth/register"
            assert meta["scopes_supported"] == ["mcp:tools", "mcp:resources", "mcp:prompts"]


async def test_full_code_flow_refresh_rotation_and_revocation() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, verifier = authorize_url(box)
        answer = await sign_in_and_consent(http, url)
        assert answer.status_code == 302
        params = redirect_params(answer)
        assert answer.headers["location"].startswith(REDIRECT + "?")
        assert params["state"] == "st-123"
        assert params["iss"] == box.base_url
        response = await exchange(box, http, params["code"], verifier)
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert response.headers["cache-control"] == "no-store"
        assert tokens["token_type"] == "Bearer"
        assert tokens["scope"] == "mcp:tools mcp:prompts"
        claims = box.tokens.verify_access_token(tokens["access_token"], audience=box.resource)
        assert (claims.subject, claims.tenant, claims.client_id) == ("alice", "alpha", CLIENT_ID)

        refreshed = await http.post(
            f"{box.base_url}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": CLIENT_ID,
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        second = refreshed.json()
        assert second["refresh_token"] != tokens["refresh_token"]

        revoked = await http.post(
            f"{box.base_url}/oauth/revoke",
            data={"token": second["refresh_token"], "client_id": CLIENT_ID},
        )
        assert revoked.status_code == 200
        again = await http.post(
            f"{box.base_url}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": second["refresh_token"],
                "client_id": CLIENT_ID,
            },
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"

        access_revoked = await http.post(
            f"{box.base_url}/oauth/revoke",
            data={"token": second["access_token"], "client_id": CLIENT_ID},
        )
        assert access_revoked.status_code == 200
        with pytest.raises(AuthError, match="revoked"):
            box.tokens.verify_access_token(second["access_token"], audience=box.resource)

        logins = await box.audit("oauth.login")
        assert [(row.actor, row.outcome) for row in logins] == [("user:alice", "ok")]
        consents = await box.audit("oauth.consent")
        assert [row.outcome for row in consents] == ["ok"]
        token_rows = [
            (r.outcome, r.detail.get("grant", r.detail.get("what")))
            for r in await box.audit("oauth.token")
        ]
        assert token_rows == [
            ("ok", "issue"),
            ("ok", "refresh"),
            ("revoke", "refresh token"),
            ("revoke", "access token"),
        ]


async def test_reused_refresh_token_revokes_its_family() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        first = await get_tokens(box, http)
        data = {"grant_type": "refresh_token", "client_id": CLIENT_ID}
        second = await http.post(
            f"{box.base_url}/oauth/token", data={**data, "refresh_token": first["refresh_token"]}
        )
        assert second.status_code == 200
        # The stolen first token, presented again: refused, and the legitimate successor dies.
        reuse = await http.post(
            f"{box.base_url}/oauth/token", data={**data, "refresh_token": first["refresh_token"]}
        )
        assert reuse.status_code == 400
        assert reuse.json()["error"] == "invalid_grant"
        successor = await http.post(
            f"{box.base_url}/oauth/token",
            data={**data, "refresh_token": second.json()["refresh_token"]},
        )
        assert successor.json()["error"] == "invalid_grant"
        assert [row.outcome for row in await box.audit("oauth.token")][-1] == "reuse"


async def test_reused_code_is_refused_and_revokes_what_it_issued() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, verifier = authorize_url(box)
        code = redirect_params(await sign_in_and_consent(http, url))["code"]
        first = await exchange(box, http, code, verifier)
        assert first.status_code == 200
        second = await exchange(box, http, code, verifier)
        assert second.status_code == 400
        assert second.json()["error"] == "invalid_grant"
        refresh = await http.post(
            f"{box.base_url}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.json()["refresh_token"],
                "client_id": CLIENT_ID,
            },
        )
        assert refresh.json()["error"] == "invalid_grant"


async def test_wrong_pkce_verifier_is_invalid_grant() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, _verifier = authorize_url(box)
        code = redirect_params(await sign_in_and_consent(http, url))["code"]
        response = await exchange(box, http, code, "W" * 64)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


async def test_missing_or_plain_challenge_goes_back_as_invalid_request_with_iss() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        for overrides in (
            {"code_challenge": None, "code_challenge_method": None},
            {"code_challenge_method": "plain"},
            {"code_challenge_method": None},
        ):
            url, _ = authorize_url(box, **overrides)
            response = await http.get(url)
            assert response.status_code == 302, overrides
            params = redirect_params(response)
            assert params["error"] == "invalid_request"
            assert params["iss"] == box.base_url
            assert params["state"] == "st-123"


async def test_resource_must_name_an_oauth_tenant() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        for resource in (
            None,
            f"{box.base_url}/t/beta/mcp",  # api_key only
            f"{box.base_url}/t/nope/mcp",
            "https://elsewhere.example/t/alpha/mcp",
        ):
            url, _ = authorize_url(box, resource=resource)
            response = await http.get(url)
            assert response.status_code == 302, resource
            params = redirect_params(response)
            assert params["error"] == "invalid_target"
            assert params["iss"] == box.base_url


async def test_unregistered_redirect_or_unknown_client_is_a_page_never_a_redirect() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        for overrides in (
            {"redirect_uri": "https://evil.example/steal"},
            {"redirect_uri": "http://127.0.0.1:33333/other-path"},
            {"redirect_uri": None},
            {"client_id": "nobody"},
            {"client_id": None},
        ):
            url, _ = authorize_url(box, **overrides)
            response = await http.get(url)
            assert response.status_code == 400, overrides
            assert "location" not in response.headers
            assert "cannot be used" in response.text
        # RFC 8252: a loopback redirect may come back on any port.
        url, _ = authorize_url(box, redirect_uri="http://127.0.0.1:4444/callback")
        assert "Sign in" in (await http.get(url)).text


async def test_scopes_are_limited_to_the_users_grant() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, verifier = authorize_url(box, scope="mcp:tools mcp:resources")
        code = redirect_params(await sign_in_and_consent(http, url))["code"]
        tokens = (await exchange(box, http, code, verifier)).json()
        assert tokens["scope"] == "mcp:tools"  # alice has no mcp:resources on alpha
        url, _ = authorize_url(box, scope="mcp:everything")
        assert redirect_params(await http.get(url))["error"] == "invalid_scope"


async def test_user_without_a_grant_gets_no_code() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, _ = authorize_url(box)
        page = await sign_in_and_consent(http, url, username="bob")
        assert page.status_code == 403
        assert "No access" in page.text
        action, hidden = form_of(page.text)
        denied = await http.post(box.base_url + action, data={**hidden, "step": "deny"})
        assert redirect_params(denied)["error"] == "access_denied"


async def test_deny_sends_access_denied_with_iss() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, _ = authorize_url(box)
        answer = await sign_in_and_consent(http, url, approve="deny")
        params = redirect_params(answer)
        assert params["error"] == "access_denied"
        assert params["iss"] == box.base_url


async def test_post_without_csrf_token_is_refused() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, _ = authorize_url(box)
        page = await http.get(url)
        action, hidden = form_of(page.text)
        for csrf in (None, "0" * 64):
            data = {**hidden, "username": "alice", "password": PASSWORD}
            if csrf is None:
                del data["csrf"]
            else:
                data["csrf"] = csrf
            response = await http.post(box.base_url + action, data=data)
            assert response.status_code == 403
            assert "Form expired" in response.text
        assert await box.audit("oauth.login") == []  # the password was never even checked
        # Another browser (no cookie) with a copied token is refused too.
        async with httpx.AsyncClient() as other:
            response = await other.post(
                box.base_url + action, data={**hidden, "username": "alice", "password": PASSWORD}
            )
            assert response.status_code == 403


async def test_login_brute_force_is_throttled() -> None:
    settings = OAuthSettings(login_max_failures_per_user=3)
    async with run_oauth_box(settings) as box, httpx.AsyncClient() as http:
        url, _ = authorize_url(box)
        for _ in range(3):
            wrong = await sign_in_and_consent(http, url, password="guess")
            assert wrong.status_code == 401
            assert "Wrong user name or password" in wrong.text
        throttled = await sign_in_and_consent(http, url)  # even the right password now
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        outcomes = [row.outcome for row in await box.audit("oauth.login")]
        assert outcomes == ["failed", "failed", "failed", "throttled"]


async def test_cookie_is_httponly_samesite_and_pages_are_unframeable() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        url, _ = authorize_url(box)
        page = await http.get(url)
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/oauth" in cookie
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "<script" not in page.text.lower()


async def test_plain_http_on_a_lan_name_is_refused_with_how_to_fix() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        for path in ("/.well-known/oauth-authorization-server", "/oauth/authorize"):
            response = await http.get(box.base_url + path, headers={"Host": "box.lan:8765"})
            assert response.status_code == 400
            body = response.json()
            assert body["error"] == "insecure_transport"
            assert "smcp-box cert" in body["error_description"]
    settings = OAuthSettings(issuer="https://box.example")
    async with run_oauth_box(settings) as box, httpx.AsyncClient() as http:
        # Behind a TLS proxy: the configured https issuer is what counts.
        meta = await http.get(f"{box.base_url}/.well-known/oauth-authorization-server")
        assert meta.json()["issuer"] == "https://box.example"
