"""A tenant's blobs as MCP resources (tenant.toml ``[blobs] resources = true``), answered by
the box itself, never by the module.

URIs are ``blob:`` followed by the blob's name (``blob:reports/2026-12.pdf``); names are
already safe paths (store/blobs.py), so nothing needs escaping. For such a tenant:

* ``resources/list`` is the module's own list (an empty one if it serves no resources)
  followed, after its last page, by the tenant's blobs in pages of :data:`PAGE_SIZE` (the
  box's own ``nextCursor``s start with :data:`CURSOR_PREFIX`);
* ``resources/read`` of a ``blob:`` URI is answered from the store: ``text`` for textual
  content types that are valid UTF-8, else base64 ``blob``. MCP pages only its list methods
  (``resources/list``, ``resources/templates/list``, ``prompts/list``, ``tools/list``, by
  ``cursor``/``nextCursor``); ``resources/read`` takes a ``uri`` alone and its result has no
  cursor, so one reply carries the whole content. Blobs over the tenant's
  ``blob_resource_max_bytes`` quota (8 MiB by default) are refused with an error naming both
  sizes; tools and the admin CLI stream any size;
* ``resources/subscribe`` / ``unsubscribe`` of a ``blob:`` URI are accepted by the box (the
  transport records the subscription as for any resource), and the box publishes
  ``notifications/resources/updated`` when such a blob changes (web/blob_resources.py);
* the tenant's capabilities gain ``resources: {subscribe: true}``.

Everything else goes to the module unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from smcp_box.config import QuotaSettings
from smcp_box.errors import BlobNotFound, InvalidBlobName
from smcp_box.protocol.jsonrpc import JSONRPC_VERSION
from smcp_box.seams import JsonObject, ModuleDescription
from smcp_box.store.blobs import BlobInfo, Blobs, check_blob_name
from smcp_box.tenancy.manifest import TenantManifest

SCHEME: Final = "blob:"
#: Blobs per resources/list page; more come behind a ``nextCursor`` of the box's own.
PAGE_SIZE: Final = 500
CURSOR_PREFIX: Final = "smcp-box/blobs:"
#: Largest blob resources/read returns (before base64) unless the tenant's quota
#: ``blob_resource_max_bytes`` says otherwise; larger ones are refused by size.
MAX_READ_BYTES: Final = QuotaSettings.blob_resource_max_bytes
_METHOD_NOT_FOUND: Final = -32601
_INVALID_PARAMS: Final = -32602
_TEXT_TYPES: Final = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-ndjson",
    "application/yaml",
    "application/toml",
)

CallModule = Callable[[JsonObject], Awaitable[JsonObject | None]]
#: Call a listener with (tenant, blob name) after each change of a blob served as a resource;
#: returns the function that stops the calls.
FollowBlobs = Callable[[Callable[[str, str], None]], Callable[[], None]]


class _Manifests(Protocol):
    def get(self, name: str) -> _HasManifest | None: ...


class _HasManifest(Protocol):
    @property
    def manifest(self) -> TenantManifest: ...


def follow_blob_resources(blobs: Blobs, tenants: _Manifests) -> FollowBlobs:
    """The store's blob listener, narrowed to tenants with ``[blobs] resources = true``."""

    def follow(listener: Callable[[str, str], None]) -> Callable[[], None]:
        def changed(tenant: str, name: str) -> None:
            runtime = tenants.get(tenant)
            if runtime is not None and runtime.manifest.blob_resources:
                listener(tenant, name)

        return blobs.add_listener(changed)

    return follow


def blob_uri(name: str) -> str:
    return SCHEME + name


def blob_name(uri: str) -> str | None:
    """The blob name of a ``blob:`` URI (None for any other URI)."""
    return uri[len(SCHEME) :] if uri.startswith(SCHEME) else None


def resource_json(info: BlobInfo) -> JsonObject:
    return {
        "uri": blob_uri(info.name),
        "name": info.name,
        "mimeType": info.content_type,
        "size": info.size,
    }


def with_blob_capability(description: ModuleDescription) -> ModuleDescription:
    """``description`` with ``resources.subscribe`` declared (the box serves blob resources
    and their updates whatever the module declares)."""
    capabilities = dict(description.capabilities)
    resources = capabilities.get("resources")
    merged = dict(resources) if isinstance(resources, dict) else {}
    merged["subscribe"] = True
    capabilities["resources"] = merged
    return dataclasses.replace(description, capabilities=capabilities)


def is_textual(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return (
        base.startswith("text/")
        or base in _TEXT_TYPES
        or base.endswith("+json")
        or base.endswith("+xml")
    )


async def answer(
    blobs: Blobs,
    tenant: str,
    message: JsonObject,
    call_module: CallModule,
    *,
    max_read_bytes: int = MAX_READ_BYTES,
) -> JsonObject | None:
    """The reply to ``message``: the box's own for blob resources, else the module's.
    ``max_read_bytes``: the largest blob ``resources/read`` returns."""
    method = message.get("method")
    params = message.get("params")
    params = params if isinstance(params, dict) else {}
    if method == "resources/list":
        return await _list(blobs, tenant, message, params, call_module)
    uri = params.get("uri")
    name = blob_name(uri) if isinstance(uri, str) else None
    if name is None or method not in (
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
    ):
        return await call_module(message)
    request_id = message.get("id")
    if method != "resources/read":
        return _result(request_id, {})
    try:
        info = await blobs.require(tenant, check_blob_name(name))
    except (BlobNotFound, InvalidBlobName):
        return _error(request_id, _INVALID_PARAMS, f"Resource not found: {uri}", {"uri": uri})
    if info.size > max_read_bytes:
        return _error(
            request_id,
            _INVALID_PARAMS,
            f"The blob {uri} is {info.size} bytes; resources/read returns at most "
            f"{max_read_bytes} (quota blob_resource_max_bytes; MCP has no partial read). A "
            "tool of the tenant, or an admin (smcp-box blob get), can read it in pieces.",
            {"uri": uri, "size": info.size, "max_bytes": max_read_bytes},
        )
    data = b"".join([piece async for piece in blobs.read(tenant, info)])
    content: JsonObject = {"uri": uri, "mimeType": info.content_type}
    text = _text_of(data) if is_textual(info.content_type) else None
    if text is not None:
        content["text"] = text
    else:
        content["blob"] = base64.b64encode(data).decode("ascii")
    return _result(request_id, {"contents": [content]})


async def _list(
    blobs: Blobs, tenant: str, message: JsonObject, params: JsonObject, call_module: CallModule
) -> JsonObject | None:
    request_id = message.get("id")
    cursor = params.get("cursor")
    if isinstance(cursor, str) and cursor.startswith(CURSOR_PREFIX):
        # A page of blobs: the module's own pages are all done.
        offset = cursor[len(CURSOR_PREFIX) :]
        if not offset.isdigit():
            return _error(request_id, _INVALID_PARAMS, f"Invalid cursor: {cursor}", {})
        return _result(request_id, await _blob_page(blobs, tenant, int(offset), []))
    reply = await call_module(message)
    if reply is not None and "error" in reply:
        error = reply["error"]
        if not (isinstance(error, dict) and error.get("code") == _METHOD_NOT_FOUND):
            return reply
        reply = _result(request_id, {"resources": []})
    if reply is None or not isinstance(reply.get("result"), dict):
        return reply
    result = reply["result"]
    if result.get("nextCursor") is None:
        # The module's last page: the blobs follow it.
        own = result.get("resources")
        page = await _blob_page(blobs, tenant, 0, list(own) if isinstance(own, list) else [])
        result.update(page)
    return reply


async def _blob_page(blobs: Blobs, tenant: str, offset: int, before: list[Any]) -> JsonObject:
    """``before`` and the blobs from ``offset`` on, at most :data:`PAGE_SIZE` of them, with a
    ``nextCursor`` when more follow."""
    infos = await blobs.listing(tenant)
    end = offset + PAGE_SIZE
    page: JsonObject = {"resources": before + [resource_json(i) for i in infos[offset:end]]}
    if end < len(infos):
        page["nextCursor"] = f"{CURSOR_PREFIX}{end}"
    return page


def _text_of(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _result(request_id: object, result: JsonObject) -> JsonObject:
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": result}


def _error(request_id: object, code: int, message: str, data: JsonObject) -> JsonObject:
    return {
        "jsonrpc": JSONRPC_VERSION,
        "id": request_id,
        "error": {"code": code, "message": message, "data": data},
    }
