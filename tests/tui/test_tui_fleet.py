"""The Fleet screen (key 7) with the fixed-data API: three boxes up, then one of them gone
(its last beat too old), the database's health above them, a box's details on enter."""

from __future__ import annotations

from textual.widgets import Static

from smcp_box.tui.app import AdminTui
from smcp_box.tui.modals import DetailsModal
from tests.tui.fixed_api import NOW, FixedApi
from tests.tui.support import SIZE, cell_texts, details_text, until


def summary(app: AdminTui) -> str:
    return str(app.query_one("#fleet-summary", Static).render())


async def test_three_boxes_then_two_up_and_one_gone() -> None:
    api = FixedApi()
    app = AdminTui(api, clock=lambda: NOW, poll_interval_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await until(pilot, lambda: len(cell_texts(app, "fleet")) == 3)
        assert cell_texts(app, "fleet") == ["* box_a", "  box_b", "  box_c"]
        assert cell_texts(app, "fleet", 2) == ["up", "up", "up"]
        assert cell_texts(app, "fleet", 4) == ["1", "3", "0"]
        assert "postgres postgresql://smcp@db.lan/smcp" in summary(app)
        assert "reachable, 0.4 ms" in summary(app)
        assert "3 up, 0 draining, 0 gone" in summary(app)

        # box_c stops beating: the box reports it gone.
        api.fleet_rows[2] = {**api.fleet_rows[2], "status": "gone", "beat_age_s": 25.0}
        await until(pilot, lambda: cell_texts(app, "fleet", 2) == ["up", "up", "gone"])
        assert cell_texts(app, "fleet", 3)[2] == "25s ago"
        assert "2 up, 0 draining, 1 gone" in summary(app)

        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        shown = details_text(app)
        assert "10.0.0.13:8765" in shown
        assert "gone" in shown


async def test_an_unreachable_database_and_a_draining_box_are_named() -> None:
    api = FixedApi()
    body = await api.status()

    class Troubled(FixedApi):
        async def status(self) -> dict[str, object]:
            return {
                **body,
                "box": {**body["box"], "draining": True},
                "database": {**body["database"], "reachable": False, "error": "timed out"},
            }

    app = AdminTui(Troubled(), clock=lambda: NOW, poll_interval_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await until(pilot, lambda: "UNREACHABLE" in summary(app))
        assert "UNREACHABLE: timed out" in summary(app)
        assert "DRAINING" in summary(app)
