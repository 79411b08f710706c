"""The one exception tree of smcp-box.

Every error the box raises on purpose derives from :class:`BoxError` and knows two things: the
HTTP status it maps to when it ends a request at the transport level, and the JSON-RPC error code
it maps to when it becomes a JSON-RPC error object. One function,
:func:`smcp_box.protocol.error_replies.error_reply`, turns any of them (and any unexpected
exception) into the status and body the MCP endpoint sends, for an era and a dispatch stage; so
messages here must say what was wrong and, where possible, what to do about it.

Errors about the HTTP exchange itself (transport, credential, admission, a session that is gone)
set ``about_exchange``: they keep their HTTP status even when raised after a message was
dispatched. Every other error raised after dispatch becomes a JSON-RPC error whose status the
era's table gives.

JSON-RPC codes: the JSON-RPC 2.0 standard codes (-32700 … -32603), the MCP codes (-32000 connection
closed, -32001 request timeout, -32020 header mismatch, -32021 missing client capability, -32022
unsupported protocol version) and, in the implementation-defined server range, the box's own
codes from -32050 down, one per limit, so that a client can tell *which* limit it hit.
"""

from __future__ import annotations

from typing import Any, ClassVar

# JSON-RPC 2.0 standard codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# MCP codes.
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
# smcp-box codes (implementation-defined server error range).
MODULE_TRAPPED = -32050
FUEL_EXHAUSTED = -32051
CALL_TIMEOUT = -32052
MEMORY_LIMIT = -32053
BAD_MODULE_REPLY = -32054
MODULE_UNAVAILABLE = -32055
TENANT_BUSY = -32056
CALL_CANCELLED = -32057
BOX_DRAINING = -32058
STORAGE_FULL = -32060
STORAGE_FAILURE = -32061
KV_QUOTA = -32062
QUOTA_EXCEEDED = -32063


class BoxError(Exception):
    """Base of every deliberate smcp-box error."""

    http_status: ClassVar[int] = 500
    jsonrpc_code: ClassVar[int] = INTERNAL_ERROR
    #: Short machine-readable kind, used for metrics labels and audit rows.
    kind: ClassVar[str] = "internal"
    #: True for errors about the HTTP exchange rather than the JSON-RPC request it carries:
    #: they keep ``http_status`` at every dispatch stage (see the module docstring).
    about_exchange: ClassVar[bool] = False

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_jsonrpc_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.jsonrpc_code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# --- configuration -------------------------------------------------------------------------


class ConfigError(BoxError):
    """A setting, tenant.toml or command-line flag is wrong; the message names it.

    Raised at start-up it is the operator's to fix (the CLI prints it, no status involved).
    When it reaches an HTTP response, the configuration came in the request (an admin uploads
    a tenant.toml or changes a limit), so the caller's input was wrong: 400.
    """

    http_status = 400
    kind = "invalid"


# --- JSON-RPC and MCP protocol -------------------------------------------------------------


class ProtocolError(BoxError):
    http_status = 400
    jsonrpc_code = INVALID_REQUEST
    kind = "protocol"


class ParseError(ProtocolError):
    jsonrpc_code = PARSE_ERROR


class InvalidRequest(ProtocolError):
    jsonrpc_code = INVALID_REQUEST


class MethodNotFound(ProtocolError):
    http_status = 404
    jsonrpc_code = METHOD_NOT_FOUND


class InvalidParams(ProtocolError):
    jsonrpc_code = INVALID_PARAMS


class MissingClientCapability(ProtocolError):
    """The request needs a client capability or extension the client did not declare
    (-32021 with ``data.requiredCapabilities``; the tasks extension, docs/tasks.md)."""

    jsonrpc_code = MISSING_CLIENT_CAPABILITY


class HeaderMismatch(ProtocolError):
    jsonrpc_code = HEADER_MISMATCH


class UnsupportedProtocolVersion(ProtocolError):
    jsonrpc_code = UNSUPPORTED_PROTOCOL_VERSION


class InputRoundFailed(BoxError):
    """An InputRequiredResult round for a handshake-era client could not be completed: the
    client lacks the capability, refused, did not answer in time, or the rounds ran out.

    -32603: the handshake revisions have no error code for a missing client capability.
    """

    kind = "input"


# --- HTTP transport --------------------------------------------------------------------------


class TransportError(BoxError):
    http_status = 400
    jsonrpc_code = INVALID_REQUEST
    kind = "transport"
    about_exchange = True


class NotAcceptable(TransportError):
    http_status = 406


class UnsupportedMediaType(TransportError):
    http_status = 415


class PayloadTooLarge(TransportError):
    http_status = 413


class MethodNotAllowed(TransportError):
    http_status = 405


class OriginNotAllowed(TransportError):
    http_status = 403


class AddressNotAllowed(TransportError):
    """The client's address is outside the tenant's ``allowed_networks``."""

    http_status = 403
    kind = "address_not_allowed"


class InvalidHost(TransportError):
    """The ``Host`` header (or ``:authority``) is not a host name (RFC 9112 §3.2: 400)."""

    http_status = 400


class SessionRequired(TransportError):
    http_status = 400


class StreamConflict(TransportError):
    """A legacy session already has its standalone GET stream open."""

    http_status = 409


class BodyTimeout(TransportError):
    """The client did not finish sending its request body in time."""

    http_status = 408


class TenantNotFound(TransportError):
    http_status = 404


class TenantDisabled(TransportError):
    http_status = 503
    jsonrpc_code = MODULE_UNAVAILABLE


class BoxDraining(TransportError):
    """The box is draining (``smcp-box drain``): it finishes what it has but opens no new
    session. HTTP 503 with ``Retry-After``, so a load balancer or client tries another box."""

    http_status = 503
    jsonrpc_code = BOX_DRAINING
    kind = "draining"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, data={"retryAfterSeconds": retry_after})
        self.retry_after = retry_after


# --- authentication ----------------------------------------------------------------------


class AuthError(BoxError):
    """No credential, or one that is unknown, revoked, expired or for another tenant."""

    http_status = 401
    jsonrpc_code = INVALID_REQUEST
    kind = "auth"
    about_exchange = True


class Forbidden(AuthError):
    http_status = 403


class InsufficientScope(Forbidden):
    """A valid credential whose scopes do not cover this method (RFC 6750 ``insufficient_scope``;
    the challenge names ``scope``)."""

    def __init__(self, message: str, *, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


# --- quotas --------------------------------------------------------------------------------


class QuotaExceeded(BoxError):
    """A tenant's quota (tenant.toml ``[quotas]``, box defaults in ``[quotas]``) or a
    per-address limit refused the request. HTTP 429, with ``Retry-After`` when waiting helps;
    as a JSON-RPC error its data names the quota."""

    http_status = 429
    jsonrpc_code = QUOTA_EXCEEDED
    kind = "quota"
    about_exchange = True

    def __init__(self, message: str, *, quota: str, retry_after: float | None = None) -> None:
        data: dict[str, Any] = {"quota": quota}
        if retry_after is not None:
            data["retryAfterSeconds"] = retry_after
        super().__init__(message, data=data)
        self.quota = quota
        self.retry_after = retry_after


class RateLimited(QuotaExceeded):
    kind = "rate_limited"


class SessionQuotaExceeded(QuotaExceeded):
    kind = "quota_sessions"


class StreamQuotaExceeded(QuotaExceeded):
    kind = "quota_streams"


class FuelQuotaExceeded(QuotaExceeded):
    kind = "quota_fuel"


class TaskQuotaExceeded(QuotaExceeded):
    """The tenant already has ``max_open_tasks`` tasks working or waiting for input."""

    kind = "quota_tasks"


class RequestTooLarge(QuotaExceeded):
    """A request body over the tenant's ``[limits] max_message_bytes``: 413, audited like
    every quota refusal. (A body over the box's ``[server] max_body_bytes`` is a plain
    PayloadTooLarge: no tenant's quota, the box's own limit.)"""

    http_status = 413
    kind = "quota_request_size"


class KvWriteRefused(QuotaExceeded):
    """A module's kv write refused by a kv quota. Not raised: the module gets the ABI's -1 and
    its call goes on; the transport counts and audits the refusal (``CallContext.refusals``)."""

    kind = "quota_kv"


class BlobQuotaExceeded(QuotaExceeded):
    """A blob write would pass one of the tenant's blob quotas (``blob_max_bytes``,
    ``blob_max_total_bytes``, ``blob_max_count``); nothing was written. HTTP 507: waiting does
    not help, deleting blobs or raising the quota does."""

    http_status = 507
    kind = "quota_blobs"


class AddressLockedOut(QuotaExceeded):
    """Too many failed authentications from one client address."""

    kind = "auth_lockout"


# --- sandbox -------------------------------------------------------------------------------


class SandboxError(BoxError):
    """A tenant module failed; the box and other tenants are unaffected."""

    http_status = 500
    jsonrpc_code = MODULE_TRAPPED
    kind = "trap"


class ModuleTrapped(SandboxError):
    jsonrpc_code = MODULE_TRAPPED
    kind = "trap"


class FuelExhausted(SandboxError):
    jsonrpc_code = FUEL_EXHAUSTED
    kind = "fuel"


class CallTimeout(SandboxError):
    jsonrpc_code = CALL_TIMEOUT
    kind = "timeout"


class MemoryLimitExceeded(SandboxError):
    jsonrpc_code = MEMORY_LIMIT
    kind = "memory"


class BadModuleReply(SandboxError):
    jsonrpc_code = BAD_MODULE_REPLY
    kind = "bad_reply"


class ModuleRejected(SandboxError):
    """A module failed to compile, or failed the box's checks (hash, imports, exports)."""

    http_status = 503
    jsonrpc_code = MODULE_UNAVAILABLE
    kind = "rejected"


class ToolNotApproved(BoxError):
    """A tools/call of a tool (or a prompts/get of a prompt) outside the approved definitions a
    tenant is held to while its module's changed definitions await approval (``smcp-box tenant
    approve``). MCP answers an unknown tool or prompt with invalid params, and to the client it
    does not exist."""

    http_status = 400
    jsonrpc_code = INVALID_PARAMS
    kind = "not_approved"


class ToolBlocked(BoxError):
    """A tools/call of a tool blocked by its behaviour baseline (``baseline = "block"``) until an
    admin runs ``smcp-box tenant baseline-reset``."""

    http_status = 503
    jsonrpc_code = MODULE_UNAVAILABLE
    kind = "baseline_blocked"


class TenantBusy(SandboxError):
    http_status = 503
    jsonrpc_code = TENANT_BUSY
    kind = "busy"


class CallCancelled(SandboxError):
    """The call was stopped because its client cancelled the request; nobody gets this error
    (no reply is owed to a cancelled request), it is what the sandbox counts."""

    jsonrpc_code = CALL_CANCELLED
    kind = "cancelled"


# --- store ---------------------------------------------------------------------------------


class StoreError(BoxError):
    http_status = 500
    jsonrpc_code = STORAGE_FAILURE
    kind = "store"


class StorageFull(StoreError):
    """The disk or a quota is full. Nothing was half-written: the transaction rolled back."""

    http_status = 507
    jsonrpc_code = STORAGE_FULL


class SessionNotFound(StoreError):
    """The session is unknown, has ended, or belongs to another tenant or principal (one answer
    for all, on purpose: a session id is not a credential). Legacy clients read 404 as "session
    gone, initialize again", so it keeps that status at every stage."""

    http_status = 404
    jsonrpc_code = INVALID_REQUEST
    kind = "session_not_found"
    about_exchange = True


class SessionMoved(StoreError):
    """A session state write was refused because another box took the session over since the
    writer read it (its owner and epoch changed; docs/scale-out.md, "Sessions that move"). The
    writer re-reads; reaching a client it means "send the request again"."""

    http_status = 409
    jsonrpc_code = INVALID_REQUEST
    kind = "session_moved"
    about_exchange = True


class KvQuotaExceeded(StoreError):
    http_status = 507
    jsonrpc_code = KV_QUOTA


class KvNotAnInteger(BoxError):
    """kv_incr found a value that is not a decimal i64, or the sum would overflow i64; nothing
    was written. Not a StoreError: the store works, the tenant's data does not fit the call."""

    http_status = 409
    jsonrpc_code = INVALID_PARAMS
    kind = "kv_not_integer"


class DecryptionFailed(StoreError):
    """A stored value failed authentication: wrong data key, or the row was tampered with."""


class BlobNotFound(StoreError):
    """No blob by that name for that tenant (or it was replaced while being read)."""

    http_status = 404
    jsonrpc_code = INVALID_PARAMS
    kind = "blob_not_found"


class InvalidBlobName(BoxError):
    """A blob name or content type is not of the allowed form; the message says which."""

    http_status = 400
    jsonrpc_code = INVALID_PARAMS
    kind = "invalid_blob"


class BlobHandleError(BoxError):
    """A module used a blob handle that is not open, or for the other direction, or opened too
    many; the module sees status -5."""

    http_status = 400
    jsonrpc_code = INVALID_PARAMS
    kind = "blob_handle"


class KeyFileError(StoreError):
    pass


class AlreadyExists(StoreError):
    """A record with that name exists already (a user account, say); the message names it."""

    http_status = 409
    kind = "conflict"


# --- OAuth client registration -------------------------------------------------------------


class ClientMetadataError(BoxError):
    """A client's Client ID Metadata Document could not be used: its URL is not allowed, the
    fetch failed, or the document is not valid client metadata. The message names which."""

    http_status = 400
    jsonrpc_code = INVALID_REQUEST
    kind = "client_metadata"


# --- admin API -----------------------------------------------------------------------------


class AdminError(BoxError):
    """The admin request itself was wrong (a missing field, a value of the wrong type)."""

    http_status = 400
    kind = "bad_request"


class BadRequest(AdminError):
    pass


class NotFound(AdminError):
    """The named tenant, key or session does not exist."""

    http_status = 404
    kind = "not_found"


class Conflict(AdminError):
    """The request clashes with the current state (a tenant of that name already exists)."""

    http_status = 409
    kind = "conflict"


class AdminUnauthorized(AdminError):
    """A TCP admin request without the admin token (the socket needs none)."""

    http_status = 401
    kind = "auth"


class AdminUnavailable(BoxError):
    """Client side: nothing answers on the admin socket, so the box is not running there."""

    kind = "unavailable"


class AdminRequestFailed(BoxError):
    """Client side: the box answered with an error; ``status`` and ``error_kind`` say which."""

    kind = "admin"

    def __init__(self, status: int, error_kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_kind = error_kind
