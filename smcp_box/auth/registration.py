"""Dynamic client registration (RFC 7591) through authlib's endpoint, with the box's rules.

Open registration (no initial access token), as MCP clients expect; ``[oauth]
dynamic_registration = false`` turns the endpoint off (the web layer answers 403 before this
runs). Every registered client is public: the box substitutes ``token_endpoint_auth_method``
"none" for whatever was asked (RFC 7591 section 3.2.1 lets the server replace requested values;
the response says what was registered) and issues no secret. Redirect URIs must pass
:func:`~smcp_box.auth.clients.redirect_uri_problem`. The number of dynamic clients is capped so
that an anonymous caller cannot fill the database.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oauth2.rfc7591 import (
    ClientRegistrationEndpoint,
    InvalidClientMetadataError,
    InvalidRedirectURIError,
)

from smcp_box.auth.clients import GRANT_TYPES, redirect_uri_problem
from smcp_box.auth.grants import describe, server_of
from smcp_box.store.oauth import ClientRecord

if TYPE_CHECKING:
    from authlib.oauth2.rfc6749 import JsonRequest

#: Dynamic clients the box keeps at most; past it registration is refused (remove stale ones
#: with ``smcp-box oauth client remove``).
MAX_DYNAMIC_CLIENTS: Final = 5_000
_MAX_NAME: Final = 200


class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]  # authlib is untyped
    def authenticate_token(self, request: JsonRequest) -> bool:
        return True  # open registration; the switch is checked before this runs

    def get_server_metadata(self) -> dict[str, Any]:
        server = server_of(self)
        return server.metadata(server.current_issuer())

    def extract_client_metadata(self, request: JsonRequest) -> dict[str, Any]:
        # Redirect URIs first, so that a bad one is named as such (RFC 7591 invalid_redirect_uri)
        # rather than as generic metadata by authlib's URL check.
        uris = request.payload.data.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise InvalidRedirectURIError("redirect_uris is required: a list of redirect URIs")
        for uri in uris:
            problem = redirect_uri_problem(uri) if isinstance(uri, str) else "not a string"
            if problem is not None:
                raise InvalidRedirectURIError(describe(problem))
        metadata: dict[str, Any] = super().extract_client_metadata(request)
        grant_types = metadata.get("grant_types") or ["authorization_code"]
        if not set(grant_types) <= set(GRANT_TYPES):
            raise InvalidClientMetadataError(f"grant_types may only be {' and '.join(GRANT_TYPES)}")
        metadata["grant_types"] = grant_types
        metadata["response_types"] = ["code"]
        return metadata

    def generate_client_info(self, request: JsonRequest) -> dict[str, Any]:
        return {
            "client_id": f"dyn_{server_of(self).new_secret()}",
            "client_id_issued_at": int(time.time()),
        }

    def save_client(
        self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: JsonRequest
    ) -> ClientRecord:
        server = server_of(self)
        if server.run(server.records.count_clients("dynamic")) >= MAX_DYNAMIC_CLIENTS:
            raise AccessDeniedError(
                f"this box already has {MAX_DYNAMIC_CLIENTS} dynamically registered clients; "
                "ask its admin to remove unused ones or pre-register this client"
            )
        name = str(client_metadata.get("client_name") or "unnamed client")[:_MAX_NAME]
        record = ClientRecord(
            client_id=client_info["client_id"],
            kind="dynamic",
            client_name=name,
            redirect_uris=tuple(client_metadata["redirect_uris"]),
            created_at=server.clock(),
            client_uri=client_metadata.get("client_uri"),
            logo_uri=client_metadata.get("logo_uri"),
            grant_types=tuple(client_metadata["grant_types"]),
        )
        server.run(server.records.add_client(record))
        server.audit(
            "oauth.register",
            user="",
            tenant=None,
            outcome="ok",
            detail={"client_id": record.client_id, "client_name": name},
        )
        return record
