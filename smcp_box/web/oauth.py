"""The authorization server's HTTP face: metadata, /oauth/authorize with its sign-in and consent
pages, /oauth/token, /oauth/revoke and /oauth/register.

The browser side:
- One cookie, ``smcp_login`` (HttpOnly, SameSite=Lax, Secure on https, path /oauth), holds a
  random id. Signed in means the store has a login session for it; a new id is issued at sign-in
  (no session fixation). Lax, not Strict: the first request comes from the client app's link,
  a cross-site navigation on which a Strict cookie would be missing and the user asked to sign
  in every time.
- Every form carries a CSRF token derived from the cookie (``OAuthRecords.login_csrf``); a POST
  without the right one is refused with a page, never acted on.
- Errors about the client or its redirect URI are shown as a page; only once both are known to
  be valid does an error go back to the client (with ``iss`` and ``state``). No open redirect.
- OAuth needs https: a box reached over plain http by a non-loopback name refuses the endpoints
  with a message saying how to fix it (authlib's rule, applied once here).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from typing import Any, Final

from authlib.common.security import is_secure_transport
from quart import Blueprint, Response, request

from smcp_box.auth.passwords import hash_password, verify_password
from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.auth.server import AsResponse, ConsentRequest, HttpInput, OAuthRefusal
from smcp_box.auth.urls import (
    AS_METADATA_PATH,
    AUTHORIZE_PATH,
    OIDC_METADATA_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
)
from smcp_box.web import oauth_pages as pages
from smcp_box.web.services import OAuthServices

logger = logging.getLogger("smcp_box.oauth")

COOKIE: Final = "smcp_login"
_HTML: Final = "text/html; charset=utf-8"
#: Pages must not be framed (clickjacking the Allow button) nor cached.
_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # No form-action: browsers apply it to the redirect that follows a form post too, and the
    # consent form's answer is a redirect to the client, on another origin.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class _Dummy:
    """A hash to verify against when the user does not exist, so that a wrong user name costs
    the same argon2 work as a wrong password and the timing says nothing."""

    hash: str | None = None

    @classmethod
    def get(cls) -> str:
        if cls.hash is None:
            cls.hash = hash_password(secrets.token_urlsafe(16))
        return cls.hash


def create_oauth_blueprint(services: OAuthServices) -> Blueprint:
    bp = Blueprint("oauth", __name__)
    server = services.server
    records = server.records

    def issuer() -> str:
        return server.issuer(request.scheme, request.headers.get("Host", ""))

    def http_input(form: list[tuple[str, str]] | None = None) -> HttpInput:
        query = request.query_string.decode()
        return HttpInput(
            method=request.method,
            uri=issuer() + request.path + (f"?{query}" if query else ""),
            headers=dict(request.headers),
            query=list(request.args.items(multi=True)),
            form=form or [],
        )

    def answer(result: AsResponse) -> Response:
        body = result.body
        text = json.dumps(body) if isinstance(body, dict) else body
        response = Response(text, status=result.status)
        for key, value in result.headers:
            response.headers[key] = value
        if isinstance(body, dict):
            response.headers["Content-Type"] = "application/json"
        return response

    def html(text: str, status: int = 200, cookie: str | None = None) -> Response:
        response = Response(text, status=status, content_type=_HTML, headers=_PAGE_HEADERS)
        if cookie is not None:
            response.set_cookie(
                COOKIE,
                cookie,
                httponly=True,
                samesite="Lax",
                secure=issuer().startswith("https://"),
                path="/oauth",
            )
        return response

    @bp.before_request
    async def require_https() -> Any:
        if not is_secure_transport(issuer()):
            message = (
                f"OAuth needs https, and this box is reached as {issuer()}. Serve it over TLS "
                "(smcp-box cert; [server] tls_cert and tls_key), or set [oauth] issuer to the "
                "https URL a proxy serves it at. Loopback addresses may use http."
            )
            return Response(
                json.dumps({"error": "insecure_transport", "error_description": message}),
                status=400,
                content_type="application/json",
            )
        return None

    @bp.get(AS_METADATA_PATH)
    @bp.get(OIDC_METADATA_PATH)
    async def metadata() -> Any:
        response = Response(json.dumps(server.metadata(issuer())), content_type="application/json")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @bp.post(TOKEN_PATH)
    async def token() -> Any:
        form = await request.form
        result = await server.token(
            http_input(list(form.items(multi=True))), issuer(), request.remote_addr
        )
        return answer(result)

    @bp.post(REVOKE_PATH)
    async def revoke() -> Any:
        form = await request.form
        result = await server.revoke(
            http_input(list(form.items(multi=True))), issuer(), request.remote_addr
        )
        return answer(result)

    @bp.post(REGISTER_PATH)
    async def register() -> Any:
        if not server.settings.dynamic_registration:
            return answer(
                AsResponse(
                    403,
                    {
                        "error": "access_denied",
                        "error_description": "dynamic client registration is off on this box "
                        "([oauth] dynamic_registration = false); ask its admin to pre-register "
                        "the client (smcp-box oauth client add) or use a client metadata URL",
                    },
                )
            )
        body = await request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return answer(
                AsResponse(
                    400,
                    {
                        "error": "invalid_client_metadata",
                        "error_description": "the body must be a JSON object of client metadata",
                    },
                )
            )
        return answer(await server.register(http_input(), body, issuer(), request.remote_addr))

    # --- the pages ------------------------------------------------------------------------

    @bp.route(AUTHORIZE_PATH, methods=["GET", "POST"])
    async def authorize() -> Any:
        cookie = request.cookies.get(COOKIE, "")
        new_cookie = None
        if not cookie:
            cookie = new_cookie = secrets.token_urlsafe(32)
        try:
            consent = await server.consent_request(http_input(), issuer(), request.remote_addr)
        except OAuthRefusal as refusal:
            return refused(refusal)
        form: dict[str, str] = {}
        if request.method == "POST":
            posted = await request.form
            form = {key: posted.get(key, "") for key in ("csrf", "step", "username", "password")}
            if not hmac.compare_digest(form["csrf"], records.login_csrf(cookie)) or new_cookie:
                return html(
                    pages.error_page(
                        "Form expired",
                        "This form's security token is missing or does not match your browser "
                        "session, so nothing was done. Start the sign-in again from your app.",
                    ),
                    status=403,
                    cookie=new_cookie,
                )
        username = await records.login_session_user(cookie)
        step = form.get("step")
        if step == "login":
            # User names are lowercase (store/users.py); what is typed is taken as meant.
            name = form["username"].strip().lower()
            return await sign_in(consent, cookie, name, form["password"])
        if step == "logout":
            await records.end_login_session(cookie)
            return show_login(consent, secrets.token_urlsafe(32))
        if username is None:
            return show_login(consent, cookie, new_cookie=new_cookie)
        return await decide(consent, cookie, username, step)

    def refused(refusal: OAuthRefusal) -> Response:
        if refusal.response.location is not None:
            return answer(refusal.response)
        return html(
            pages.error_page(
                "This sign-in request cannot be used",
                f"{refusal.description} ({refusal.error}). Nothing was sent back to the app; "
                "start the sign-in again from it.",
            ),
            status=400,
        )

    def show_login(
        consent: ConsentRequest,
        cookie: str,
        *,
        error: str | None = None,
        username: str = "",
        status: int = 200,
        new_cookie: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        response = html(
            pages.login_page(
                action=request.full_path.rstrip("?"),
                csrf=records.login_csrf(cookie),
                client_name=consent.client.client_name,
                redirect_host=consent.redirect_host,
                source=consent.client.source,
                tenant=consent.tenant,
                error=error,
                username=username,
            ),
            status=status,
            cookie=new_cookie if new_cookie is not None else cookie,
        )
        response.headers.update(headers or {})
        return response

    async def sign_in(
        consent: ConsentRequest, cookie: str, username: str, password: str
    ) -> Response:
        ip = request.remote_addr
        wait = services.throttle.retry_after(username, ip)
        if wait is not None:
            await audit_login(username, "throttled", consent)
            return show_login(
                consent,
                cookie,
                error=f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.",
                username=username,
                status=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        user = await server.users.get_user(username) if username else None
        stored = user.password_hash if user is not None else _Dummy.get()
        matches = await asyncio.to_thread(verify_password, stored, password)
        if user is None or user.disabled or not matches:
            services.throttle.failed(username, ip)
            await audit_login(username, "failed", consent)
            return show_login(
                consent,
                cookie,
                error="Wrong user name or password.",
                username=username,
                status=401,
            )
        services.throttle.succeeded(username, ip)
        await audit_login(username, "ok", consent)
        fresh = secrets.token_urlsafe(32)
        await records.create_login_session(fresh, username, server.settings.login_session_s)
        await records.end_login_session(cookie)
        # Back to the same authorization URL by GET: a reload shows the consent page, not a
        # re-sent password.
        response = html("", status=303, cookie=fresh)
        response.headers["Location"] = request.full_path.rstrip("?")
        return response

    async def audit_login(username: str, outcome: str, consent: ConsentRequest) -> None:
        await server.auditor.record(
            "oauth.login",
            tenant=consent.tenant,
            actor=f"user:{username}" if username else "anonymous",
            source_ip=request.remote_addr,
            outcome=outcome,
            detail={"client_id": consent.client.client_id},
        )

    async def decide(
        consent: ConsentRequest, cookie: str, username: str, step: str | None
    ) -> Response:
        grantee = await server.grantee_for(username, consent)
        csrf = records.login_csrf(cookie)
        action = request.full_path.rstrip("?")
        if step == "deny" or (step == "approve" and grantee is None):
            await audit_consent(username, consent, "denied", frozenset())
            return await finish(consent, None)
        if grantee is None:
            return html(
                pages.no_access_page(
                    action=action,
                    csrf=csrf,
                    username=username,
                    tenant=consent.tenant,
                    client_name=consent.client.client_name,
                ),
                status=403,
            )
        approved = await records.consent(username, consent.client.client_id, consent.tenant)
        if step == "approve" or (approved and grantee.scopes <= approved):
            if step == "approve":
                scope = " ".join(sorted(grantee.scopes | approved))
                await records.save_consent(
                    username, consent.client.client_id, consent.tenant, scope
                )
            await audit_consent(username, consent, "ok", grantee.scopes)
            return await finish(consent, grantee)
        return html(
            pages.consent_page(
                action=action,
                csrf=csrf,
                username=username,
                client_name=consent.client.client_name,
                redirect_host=consent.redirect_host,
                source=consent.client.source,
                tenant=consent.tenant,
                scopes=[s for s in ALL_SCOPES if s in grantee.scopes],
            )
        )

    async def finish(consent: ConsentRequest, grantee: Any) -> Response:
        try:
            result = await server.authorize(http_input(), grantee, issuer(), request.remote_addr)
        except OAuthRefusal as refusal:
            return refused(refusal)
        return answer(result)

    async def audit_consent(
        username: str, consent: ConsentRequest, outcome: str, scopes: frozenset[str]
    ) -> None:
        await server.auditor.record(
            "oauth.consent",
            tenant=consent.tenant,
            actor=f"user:{username}",
            source_ip=request.remote_addr,
            outcome=outcome,
            detail={"client_id": consent.client.client_id, "scope": " ".join(sorted(scopes))},
        )

    return bp
