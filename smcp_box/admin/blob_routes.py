"""Admin routes for tenants' blobs: usage, list, stat, download, upload in parts, delete.

Downloads stream a chunk at a time (the response waits for the socket). Uploads come in parts
of at most :data:`PART_BYTES`, one request each, into a store writer kept between requests:
the web framework reads a request body as fast as it arrives, whatever the handler does with
it, so one big request would sit in the box's memory whole. A part is acknowledged once it is
in the store, so the client sends the next one only then; that is also what its progress shows.
An upload left idle for :data:`UPLOAD_IDLE_S` is aborted (its chunks deleted).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from quart import Blueprint, Response, request

from smcp_box.admin.context import AdminContext, body_object, json_response, query_str
from smcp_box.box import Box
from smcp_box.errors import BadRequest, Conflict, NotFound
from smcp_box.store.blobs import DEFAULT_CONTENT_TYPE, BlobInfo, BlobWriter, check_blob_name
from smcp_box.tenancy.manifest import TENANT_NAME_PATTERN
from smcp_box.tenancy.quotas import blob_quotas, resolve_quotas

#: Largest part of an upload (one request body).
PART_BYTES: Final = 1024 * 1024
UPLOAD_IDLE_S: Final = 600.0
MAX_UPLOADS: Final = 16
#: Response headers of a download, besides Content-Type and Content-Length.
SHA256_HEADER: Final = "x-blob-sha256"


@dataclass
class _Upload:
    writer: BlobWriter
    touched: float


def blob_info_json(tenant: str, info: BlobInfo) -> dict[str, object]:
    return {"tenant": tenant, **info.as_json()}


def blob_quotas_json(box: Box, tenant: str) -> dict[str, int]:
    """The tenant's blob quotas (tenant.toml over the box's defaults; the defaults for a
    tenant not loaded now)."""
    runtime = box.tenants.get(tenant)
    quotas = (
        runtime.policy.quotas if runtime is not None else resolve_quotas(box.settings.quotas, {})
    )
    return {
        "blob_max_bytes": quotas.blob_max_bytes,
        "blob_max_total_bytes": quotas.blob_max_total_bytes,
        "blob_max_count": quotas.blob_max_count,
    }


def blob_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_blobs", __name__, url_prefix="/v1")
    box = ctx.box
    blobs = box.store.blobs
    uploads: dict[str, _Upload] = {}

    def check_tenant(tenant: str) -> None:
        if not TENANT_NAME_PATTERN.fullmatch(tenant):
            raise BadRequest(f"{tenant!r} is not a valid tenant name (a-z, 0-9 and '-')")

    def quotas_of(tenant: str) -> dict[str, int]:
        return blob_quotas_json(box, tenant)

    async def sweep() -> None:
        now = time.monotonic()
        for upload_id, upload in list(uploads.items()):
            if now - upload.touched > UPLOAD_IDLE_S:
                del uploads[upload_id]
                await upload.writer.abort()

    def upload_of(upload_id: str) -> _Upload:
        upload = uploads.get(upload_id)
        if upload is None:
            raise NotFound(
                f"no blob upload {upload_id!r}: it was committed, aborted, or idle for more "
                f"than {UPLOAD_IDLE_S:g} s; start again"
            )
        return upload

    @bp.get("/blobs")
    async def usage() -> Response:
        used = await blobs.all_usage()
        names = sorted(set(box.tenants.names()) | set(used))
        return json_response(
            {
                "tenants": [
                    {
                        "tenant": name,
                        "blobs": used[name].blobs if name in used else 0,
                        "bytes": used[name].bytes if name in used else 0,
                        "quotas": quotas_of(name),
                    }
                    for name in names
                ]
            }
        )

    @bp.get("/blobs/<tenant>")
    async def listing(tenant: str) -> Response:
        check_tenant(tenant)
        infos = await blobs.listing(tenant, query_str("prefix") or "")
        used = await blobs.usage(tenant)
        return json_response(
            {
                "tenant": tenant,
                "blobs": [info.as_json() for info in infos],
                "usage": {"blobs": used.blobs, "bytes": used.bytes},
                "quotas": quotas_of(tenant),
            }
        )

    @bp.get("/blobs/<tenant>/<path:name>")
    async def download(tenant: str, name: str) -> Response:
        check_tenant(tenant)
        info = await blobs.require(tenant, check_blob_name(name))
        if query_str("stat"):
            return json_response(blob_info_json(tenant, info))

        async def body() -> AsyncIterator[bytes]:
            async for piece in blobs.read(tenant, info):
                yield piece

        response = Response(body(), content_type=info.content_type)
        response.headers["content-length"] = str(info.size)
        response.headers[SHA256_HEADER] = info.sha256
        response.timeout = None  # a large blob to a slow reader may take long; it streams
        return response

    @bp.delete("/blobs/<tenant>/<path:name>")
    async def delete(tenant: str, name: str) -> Response:
        check_tenant(tenant)
        ctx.begin("admin.blob.delete", tenant, name=name)
        if not await blobs.delete(tenant, check_blob_name(name)):
            raise NotFound(
                f"tenant {tenant!r} has no blob {name!r} (list them: smcp-box blob list {tenant})"
            )
        await ctx.audit()
        return json_response({"tenant": tenant, "name": name, "deleted": True})

    @bp.post("/blob-uploads")
    async def start_upload() -> Response:
        body = await body_object()
        tenant, name = body.get("tenant"), body.get("name")
        content_type = body.get("content_type") or DEFAULT_CONTENT_TYPE
        if not isinstance(tenant, str) or not isinstance(name, str):
            raise BadRequest("send {'tenant': ..., 'name': ..., 'content_type': ...}")
        check_tenant(tenant)
        runtime = box.tenants.get(tenant)
        if runtime is None:
            raise NotFound(f"no tenant named {tenant!r} is loaded (see smcp-box tenant list)")
        await sweep()
        if len(uploads) >= MAX_UPLOADS:
            raise Conflict(f"{MAX_UPLOADS} blob uploads are in progress; finish one first")
        writer = await blobs.writer(
            tenant, name, str(content_type), blob_quotas(runtime.policy.quotas)
        )
        upload_id = secrets.token_hex(12)
        uploads[upload_id] = _Upload(writer, time.monotonic())
        return json_response({"upload": upload_id, "part_bytes": PART_BYTES})

    @bp.put("/blob-uploads/<upload_id>")
    async def upload_part(upload_id: str) -> Response:
        upload = upload_of(upload_id)
        request.max_content_length = PART_BYTES
        data = await request.get_data(cache=False, as_text=False)
        assert isinstance(data, bytes)
        try:
            await upload.writer.write(data)
        except BaseException:
            uploads.pop(upload_id, None)
            raise
        upload.touched = time.monotonic()
        return json_response({"upload": upload_id, "size": upload.writer.size})

    @bp.post("/blob-uploads/<upload_id>/commit")
    async def commit(upload_id: str) -> Response:
        upload = upload_of(upload_id)
        writer = upload.writer
        ctx.begin("admin.blob.put", writer.tenant, name=writer.name, size=writer.size)
        del uploads[upload_id]
        info = await writer.commit()
        await ctx.audit(sha256=info.sha256)
        return json_response(blob_info_json(writer.tenant, info))

    @bp.delete("/blob-uploads/<upload_id>")
    async def abort(upload_id: str) -> Response:
        upload = uploads.pop(upload_id, None)
        if upload is not None:
            await upload.writer.abort()
        return json_response({"upload": upload_id, "aborted": upload is not None})

    return bp
