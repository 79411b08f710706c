"""The box's session cleaner (idle and absolute lifetimes) and the reload of the session and
per-address connection settings, on a real box over an injected clock."""

from __future__ import annotations

from pathlib import Path

from smcp_box.box import Box
from smcp_box.ops.reload import apply_settings
from tests.ops.support import box_settings
from tests.ops.test_reload import with_changes

CLIENT = {"name": "t", "version": "0"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_cleaner_deletes_by_idle_time_and_by_age_and_reload_changes_both(
    tmp_path: Path,
) -> None:
    (tmp_path / "tenants").mkdir()
    settings = box_settings(
        tmp_path,
        tmp_path / "tenants",
        tmp_path / "cache",
        **{"sessions.idle_timeout_s": 100.0, "sessions.max_age_s": 1_000.0},
    )
    clock = Clock()
    box = await Box.start(settings, clock=clock)
    try:
        store = box.store
        await store.create_session("t", "busy", "2025-06-18", CLIENT)
        await store.create_session("t", "idle", "2025-06-18", CLIENT)
        for _ in range(4):  # 4 x 60 s, "busy" in use throughout
            clock.now += 60
            await store.update_session_state("t", "busy", {})
        assert await box.expire_sessions() == 1
        assert [s.session_id for s in await store.list_sessions("t")] == ["busy"]

        # A reload shortens the absolute lifetime: "busy" (240 s old) is past it at once.
        new = with_changes(
            settings,
            sessions={"max_age_s": 200.0},
            store={"max_events_per_session": 5},
            server={"max_connections_per_address": 7, "max_sse_streams_per_address": 3},
        )
        applied, restart = apply_settings(box, new, None)
        assert applied == [
            "server.max_connections_per_address",
            "server.max_sse_streams_per_address",
            "sessions.max_age_s",
            "store.max_events_per_session",
        ]
        assert restart == []
        assert await store.get_session("t", "busy") is None
        assert await box.expire_sessions() == 1
        assert box.connections.settings.max_connections_per_address == 7
        assert box.connections.settings.max_sse_streams_per_address == 3
    finally:
        await box.stop()
