"""Client registration as the authorization server sees it: Client ID Metadata Documents (fetched
from a real loopback server; a private address refused) and dynamic registration (RFC 7591)."""

from __future__ import annotations

import json

import httpx

from smcp_box.auth.cimd import CimdFetcher
from smcp_box.config import OAuthSettings
from tests.support.loopback_http import LoopbackHttp, Route
from tests.web.oauth_box import (
    REDIRECT,
    authorize_url,
    redirect_params,
    run_oauth_box,
    sign_in_and_consent,
)


async def resolve_to_private(host: str, port: int) -> list[str]:
    return ["10.0.0.7"]  # what a DNS name pointed at the LAN would answer


async def test_metadata_document_client_signs_in_and_gets_a_code() -> None:
    routes: dict[str, Route] = {}
    async with LoopbackHttp(routes) as docs:
        client_id = f"http://127.0.0.1:{docs.port}/client.json"
        routes["/client.json"] = Route(
            body=json.dumps(
                {
                    "client_id": client_id,
                    "client_name": "Doc Client",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                }
            ).encode()
        )
        settings = OAuthSettings(cimd_allowed_hosts=("127.0.0.1",))
        async with run_oauth_box(settings, cimd=CimdFetcher) as box, httpx.AsyncClient() as http:
            meta = (await http.get(f"{box.base_url}/.well-known/oauth-authorization-server")).json()
            assert meta["client_id_metadata_document_supported"] is True
            url, _ = authorize_url(box, client_id=client_id)
            page = await http.get(url)
            assert "Doc Client" in page.text
            answer = await sign_in_and_consent(http, url)
            assert answer.status_code == 302
            assert "code" in redirect_params(answer)


async def test_metadata_document_at_a_private_address_is_refused_with_a_page() -> None:
    settings = OAuthSettings(cimd_allowed_hosts=("*",))

    def fetcher(oauth: OAuthSettings) -> CimdFetcher:
        return CimdFetcher(oauth, resolve=resolve_to_private)

    async with run_oauth_box(settings, cimd=fetcher) as box, httpx.AsyncClient() as http:
        url, _ = authorize_url(box, client_id="https://clients.example/app.json")
        page = await http.get(url)
        assert page.status_code == 400
        assert "location" not in page.headers
        assert "invalid_client" in page.text
        assert "non-public address" in page.text


async def test_dynamic_registration_registers_a_public_client() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        response = await http.post(
            f"{box.base_url}/oauth/register",
            json={
                "client_name": "Dyn",
                "redirect_uris": ["http://127.0.0.1:9/cb"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_basic",  # replaced: public only
            },
        )
        assert response.status_code == 201, response.text
        client = response.json()
        assert client["token_endpoint_auth_method"] == "none"
        assert "client_secret" not in client or client["client_secret"] is None
        url, _ = authorize_url(
            box, client_id=client["client_id"], redirect_uri="http://127.0.0.1:5555/cb"
        )
        page = await http.get(url)
        assert "Dyn" in page.text
        assert "registered itself" in page.text  # the page says the name is unverified
        rows = await box.audit("oauth.register")
        assert [row.detail["client_id"] for row in rows] == [client["client_id"]]


async def test_dynamic_registration_refuses_unsafe_redirects() -> None:
    async with run_oauth_box() as box, httpx.AsyncClient() as http:
        for uris in (
            ["http://evil.example/cb"],
            ["javascript:alert(1)"],
            ["https://ok.example/cb#frag"],
            [],
        ):
            response = await http.post(
                f"{box.base_url}/oauth/register", json={"client_name": "x", "redirect_uris": uris}
            )
            assert response.status_code == 400, uris
            assert response.json()["error"] == "invalid_redirect_uri"


async def test_dynamic_registration_can_be_switched_off() -> None:
    settings = OAuthSettings(dynamic_registration=False)
    async with run_oauth_box(settings) as box, httpx.AsyncClient() as http:
        meta = (await http.get(f"{box.base_url}/.well-known/oauth-authorization-server")).json()
        assert "registration_endpoint" not in meta
        response = await http.post(
            f"{box.base_url}/oauth/register", json={"redirect_uris": ["http://127.0.0.1/cb"]}
        )
        assert response.status_code == 403
        assert "dynamic_registration" in response.json()["error_description"]
