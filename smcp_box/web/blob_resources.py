"""``notifications/resources/updated`` for blob resources (tenancy/blob_resources.py).

The box follows the store's committed blob changes of tenants that serve their blobs as
resources (``[blobs] resources = true``) and hands each here, which publishes the update of
its ``blob:`` URI to the tenant's subscribers like a module's own resources/updated: 2026-07-28
listen streams that asked for the URI, and handshake-era sessions subscribed to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from smcp_box.protocol.jsonrpc import JSONRPC_VERSION
from smcp_box.protocol.subscriptions import RESOURCE_UPDATED
from smcp_box.tenancy.blob_resources import FollowBlobs, blob_uri
from smcp_box.web.tenant_events import TenantEvents


def follow_blob_changes(follow: FollowBlobs | None, events: TenantEvents) -> Callable[[], None]:
    """Publish blob changes as resource updates until the returned function is called."""
    if follow is None:
        return lambda: None
    pending: set[asyncio.Task[None]] = set()

    def changed(tenant: str, name: str) -> None:
        message = {
            "jsonrpc": JSONRPC_VERSION,
            "method": RESOURCE_UPDATED,
            "params": {"uri": blob_uri(name)},
        }
        # Called inside the store's coroutine, on the loop: deliver without holding it up.
        task = asyncio.get_running_loop().create_task(events.publish(tenant, message))
        pending.add(task)
        task.add_done_callback(pending.discard)

    return follow(changed)
