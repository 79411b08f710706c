"""One tenant as the catalog shows it: what it is, who vouches for it, what it offers.

The same entry serves ``GET /catalog`` on the LAN port (a credential holder sees the tenants
it may use) and the admin API's ``/v1/catalog`` (an admin sees all): only the endpoint URL is
worked out by the caller, who knows how the box is reached.
"""

from __future__ import annotations

import logging
from typing import Final

from smcp_box.errors import BoxError
from smcp_box.seams import JsonObject
from smcp_box.tenancy.runtime import WasmTenant

logger = logging.getLogger("smcp_box.catalog")

#: The fields of a tool definition the catalog shows (its schemas are for ``tools/list``).
_TOOL_FIELDS: Final = ("name", "title", "description", "annotations")
#: tenant.toml ``auth`` -> how a client may authenticate.
_AUTH_MODES: Final = {
    "api_key": ["api_key"],
    "oauth": ["oauth"],
    "both": ["api_key", "oauth"],
    "none": ["none"],
}


async def catalog_entry(tenant: WasmTenant, url: str) -> JsonObject:
    """The tenant's catalog entry; ``url`` is its MCP endpoint as the reader reaches the box."""
    manifest = tenant.manifest
    report = tenant.vet_report
    signature = tenant.signature
    pending = tenant.definitions_pending
    try:
        tools: list[JsonObject] | None = [
            {key: tool[key] for key in _TOOL_FIELDS if key in tool}
            for tool in (await tenant.describe()).tools or ()
        ]
    except BoxError as exc:
        # A tenant whose module cannot describe itself now is still listed, saying so.
        logger.warning("catalog: tenant %s could not list its tools: %s", tenant.name, exc.message)
        tools = None
    return {
        "name": tenant.name,
        "description": manifest.description,
        "kind": manifest.kind,
        "url": url,
        "auth": _AUTH_MODES.get(manifest.auth, [manifest.auth]),
        "publisher": signature.publisher if signature is not None else None,
        "module_sha256": manifest.sha256,
        "vetting": {
            # Served tenants passed vetting; "pinned" means an admin also fixed their tools.
            # "changed": the module's definitions await approval; the approved ones are listed.
            "status": "changed"
            if pending is not None
            else "pinned"
            if report is not None and report.pin_status == "match"
            else ("unpinned"),
            "signature": signature.status if signature is not None else "unchecked",
            # Kinds the module declares that approvals cannot hold (docs/vetting.md).
            "not_covered": list(report.not_covered) if report is not None else [],
            "tools_sha256": pending.approved_sha256
            if pending is not None
            else report.fingerprint
            if report is not None
            else None,
            "findings": [f.to_json() for f in (report.findings if report is not None else ())],
        },
        "tools": tools,
    }


__all__ = ["catalog_entry"]
