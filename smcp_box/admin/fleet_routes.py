"""Admin routes and status parts for the fleet: every box's heartbeat, the database's health,
and draining this box (docs/scale-out.md, "Box identity and drain")."""

from __future__ import annotations

from quart import Blueprint, Response

from smcp_box.admin.context import AdminContext, json_response
from smcp_box.box import Box, advertised_address
from smcp_box.errors import BoxError
from smcp_box.seams import JsonObject
from smcp_box.store import Store


async def fleet_status(
    store: Store, *, dead_after_s: float, box_id: str, instance: str
) -> tuple[list[JsonObject], JsonObject]:
    """Every box from ``store``'s heartbeats (``this_box`` marks the asking one: ``box_id``
    run by ``instance``), and the database's health. An unreachable database gives no boxes
    and says why; this never raises for it."""
    health = await store.database_health()
    error = health.error
    boxes: list[JsonObject] = []
    if health.reachable:
        try:
            records = await store.fleet.boxes(dead_after_s=dead_after_s)
        except BoxError as exc:
            error, records = exc.message, []
        boxes = [
            {
                "box_id": r.box_id,
                "address": r.address,
                "status": r.status,
                "last_beat": r.last_beat,
                "beat_age_s": round(r.beat_age_s, 3),
                "started_at": r.started_at,
                "sessions": r.sessions,
                "version": r.version,
                "this_box": r.box_id == box_id and r.instance == instance,
            }
            for r in records
        ]
    database: JsonObject = {
        "backend": health.backend,
        "location": health.location,
        "reachable": health.reachable and error is None,
        "latency_ms": health.latency_ms,
        "error": error,
    }
    return boxes, database


async def fleet_json(box: Box) -> JsonObject:
    """The status payload's fleet part: this box, every box from the heartbeats, and the
    database's health."""
    boxes, database = await fleet_status(
        box.store,
        dead_after_s=box.settings.cluster.dead_after_s,
        box_id=box.box_id,
        instance=box.instance,
    )
    return {
        "box": {
            "box_id": box.box_id,
            "address": advertised_address(box.settings),
            "draining": box.drain_switch.draining,
            "draining_since": box.drain_switch.since,
        },
        "fleet": boxes,
        "database": database,
    }


def fleet_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_fleet", __name__, url_prefix="/v1")
    box = ctx.box

    @bp.get("/fleet")
    async def fleet() -> Response:
        return json_response(await fleet_json(box))

    async def set_draining(draining: bool) -> Response:
        ctx.begin("admin.drain" if draining else "admin.drain.undo", None, box_id=box.box_id)
        changed = await box.set_draining(draining)
        await ctx.audit(changed=changed)
        return json_response(
            {
                "box_id": box.box_id,
                "draining": box.drain_switch.draining,
                "changed": changed,
                "open_sessions": await box.store.count_open_sessions(),
            }
        )

    @bp.post("/drain")
    async def drain() -> Response:
        return await set_draining(True)

    @bp.delete("/drain")
    async def undo_drain() -> Response:
        return await set_draining(False)

    return bp
