"""Admin routes and status parts for the fleet: every box's heartbeat, the database's health,
and draining this box (docs/scale-out.md, "Box identity and drain")."""

from __future__ import annotations

from quart import Blueprint, Response

from smcp_box.admin.context import AdminContext, json_response
from smcp_box.box import Box, advertised_address
from smcp_box.errors import BoxError
from smcp_box.seams import JsonObject


async def fleet_json(box: Box) -> JsonObject:
    """The status payload's fleet part: this box, every box from the heartbeats (an empty
    list when the database cannot be read), and the database's health."""
    health = await box.store.database_health()
    boxes: list[JsonObject] = []
    if health.reachable:
        try:
            records = await box.store.fleet.boxes(dead_after_s=box.settings.cluster.dead_after_s)
        except BoxError as exc:
            health_error: str | None = exc.message
            records = []
        else:
            health_error = None
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
                "this_box": r.box_id == box.box_id and r.instance == box.instance,
            }
            for r in records
        ]
    else:
        health_error = health.error
    return {
        "box": {
            "box_id": box.box_id,
            "address": advertised_address(box.settings),
            "draining": box.drain_switch.draining,
            "draining_since": box.drain_switch.since,
        },
        "fleet": boxes,
        "database": {
            "backend": health.backend,
            "location": health.location,
            "reachable": health.reachable,
            "latency_ms": health.latency_ms,
            "error": health_error,
        },
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
