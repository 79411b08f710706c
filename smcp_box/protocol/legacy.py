"""The handshake era (2024-11-05 … 2025-11-25): ``initialize``, session state, header rules.

Rules the transport applies with these helpers:

* ``initialize`` opens a session: the box negotiates the version (the requested one if it speaks
  it through the handshake, else 2025-11-25) and answers from the module's cached description.
* Every later request names its session in ``Mcp-Session-Id``. Its ``MCP-Protocol-Version``, when
  present, is a handshake version (unknown ones are -32022 before the session is looked at) and
  governs that request; when absent, the negotiated version applies (the spec lets a server that
  knows the version from the handshake use it; the 2025-03-26 default only matters when nothing
  else identifies the version).
* Session state is a small JSON object (see :class:`SessionState`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from smcp_box.errors import InvalidParams, InvalidRequest
from smcp_box.protocol.loglevels import parse_level
from smcp_box.protocol.modern import with_logging_capability
from smcp_box.protocol.versions import HANDSHAKE_VERSIONS, negotiate_handshake
from smcp_box.seams import JsonObject

SESSION_ID_HEADER: Final = "mcp-session-id"
LAST_EVENT_ID_HEADER: Final = "last-event-id"


@dataclass(frozen=True)
class InitializeParams:
    requested_version: str
    capabilities: JsonObject
    client_info: JsonObject

    @property
    def negotiated_version(self) -> str:
        return negotiate_handshake(self.requested_version)


def parse_initialize(params: JsonObject | None) -> InitializeParams:
    """Validate ``initialize`` params (all three members are required by every revision)."""
    params = params or {}
    version = params.get("protocolVersion")
    if not isinstance(version, str) or not version:
        raise InvalidParams("Invalid params: initialize needs a protocolVersion string")
    capabilities = params.get("capabilities")
    if not isinstance(capabilities, dict):
        raise InvalidParams("Invalid params: initialize needs a capabilities object")
    client_info = params.get("clientInfo")
    if not isinstance(client_info, dict) or not isinstance(client_info.get("name"), str):
        raise InvalidParams("Invalid params: initialize needs a clientInfo object with a name")
    return InitializeParams(
        requested_version=version, capabilities=capabilities, client_info=client_info
    )


def initialize_result(
    negotiated_version: str,
    server_info: JsonObject,
    capabilities: JsonObject,
    instructions: str | None,
) -> JsonObject:
    result: JsonObject = {
        "protocolVersion": negotiated_version,
        "capabilities": with_logging_capability(capabilities),
        "serverInfo": dict(server_info),
    }
    if instructions is not None:
        result["instructions"] = instructions
    return result


def request_version(header_version: str | None, negotiated_version: str) -> str:
    """The version one session request speaks.

    The header, when present, governs the request (the spec: the header lets the server "respond
    based on the MCP protocol version"; it only SHOULD equal the negotiated one, and only an
    *invalid or unsupported* value is a 400 — era selection already answered those with -32022).
    The official conformance suite relies on this: it negotiates 2025-11-25 and then sends
    ``MCP-Protocol-Version: 2025-03-26``. Without the header, the negotiated version applies.
    """
    if header_version is None:
        return negotiated_version
    if header_version not in HANDSHAKE_VERSIONS:
        raise InvalidRequest(
            f"Bad request: MCP-Protocol-Version {header_version!r} cannot be used in a session "
            f"(negotiated {negotiated_version!r})"
        )
    return header_version


def parse_set_level(params: JsonObject | None) -> str:
    return parse_level((params or {}).get("level"), where="params.level")


def cancelled_request_id(params: JsonObject | None) -> Any:
    """The ``requestId`` a ``notifications/cancelled`` names (None when absent)."""
    return (params or {}).get("requestId")


#: Resource subscriptions one session may hold; each is kept in its state and checked on every
#: resources/updated, so the list is bounded.
MAX_SUBSCRIPTIONS: Final = 256


@dataclass(frozen=True)
class SessionState:
    """The transport's per-session state, kept in the store as a small JSON object.

    ``owner`` binds a session to the principal that opened it: a request naming the session with
    another credential is answered as if the session did not exist. ``client_capabilities`` is
    what the client declared in ``initialize`` (None for sessions stored before the box kept
    it: unknown); ``subscriptions`` the resource URIs it subscribed to, oldest first.
    """

    owner: str
    initialized: bool = False
    log_level: str | None = None
    client_capabilities: JsonObject | None = None
    subscriptions: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        state: JsonObject = {
            "owner": self.owner,
            "initialized": self.initialized,
            "log_level": self.log_level,
            "subscriptions": list(self.subscriptions),
        }
        if self.client_capabilities is not None:
            state["client_capabilities"] = self.client_capabilities
        return state

    @classmethod
    def from_json(cls, state: JsonObject) -> SessionState:
        owner = state.get("owner")
        level = state.get("log_level")
        capabilities = state.get("client_capabilities")
        subscriptions = state.get("subscriptions")
        return cls(
            owner=owner if isinstance(owner, str) else "",
            initialized=bool(state.get("initialized", False)),
            log_level=level if isinstance(level, str) else None,
            client_capabilities=capabilities if isinstance(capabilities, dict) else None,
            subscriptions=tuple(
                uri
                for uri in (subscriptions if isinstance(subscriptions, list) else [])
                if isinstance(uri, str)
            ),
        )

    def subscribed(self, uri: str) -> SessionState:
        """With ``uri`` subscribed (InvalidParams when the session holds too many already)."""
        if uri in self.subscriptions:
            return self
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise InvalidParams(
                f"Invalid params: a session may subscribe to at most {MAX_SUBSCRIPTIONS} "
                "resources; unsubscribe from some first"
            )
        return replace(self, subscriptions=(*self.subscriptions, uri))

    def unsubscribed(self, uri: str) -> SessionState:
        return replace(self, subscriptions=tuple(u for u in self.subscriptions if u != uri))
