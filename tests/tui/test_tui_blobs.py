"""A tenant's blobs in the TUI against a real box: usage against the quotas in the details
(``enter``), the list dialog (``b``), and delete after a confirm dialog."""

from __future__ import annotations

import io

from smcp_box.tui.modals import ConfirmModal, DetailsModal
from smcp_box.tui.views.blobs import BlobsModal
from tests.admin.support import RunningBox
from tests.tui.support import SIZE, details_text, make_app, screen_text, table, until
from tests.tui.test_tui_actions import modal_text


def blob_rows(app: object) -> list[list[str]]:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, BlobsModal)
    t = screen.table
    return [[str(cell) for cell in t.get_row_at(i)] for i in range(t.row_count)]


async def _put(rb: RunningBox, tenant: str, name: str, data: bytes, content_type: str) -> None:
    await rb.client.put_blob(tenant, name, io.BytesIO(data), content_type)


async def test_details_show_blob_usage_against_the_quotas(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        tenant = app.current_tenant
        assert tenant is not None
        await _put(rb, tenant, "charts/a.svg", b"<svg/>" * 500, "image/svg+xml")
        await _put(rb, tenant, "notes.md", b"# notes\n", "text/markdown")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        text = details_text(app)
        assert "2 of at most 10k" in text  # the box's default blob_max_count
        assert "2.9K of at most 1.0G" in text  # 3008 bytes of the 1 GiB default
        assert "largest allowed       64M" in text
        assert "press b on the tenant" in text


async def test_blobs_listed_and_deleted_after_confirming(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        tenant = app.current_tenant
        assert tenant is not None
        await _put(rb, tenant, "a/first.txt", b"x" * 2048, "text/plain")
        await _put(rb, tenant, "b.bin", b"\x00", "application/octet-stream")
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BlobsModal))
        await until(pilot, lambda: len(blob_rows(app)) == 2)
        assert f"Blobs of tenant {tenant}" in modal_text(app, "#list-title")
        assert [row[:3] for row in blob_rows(app)] == [
            ["a/first.txt", "2.0K", "text/plain"],
            ["b.bin", "1B", "application/octet…"],  # shortened to its column
        ]
        assert "2 of at most 10k blobs, 2.0K of at most 1.0G" in screen_text(app)

        await pilot.press("n")  # put is the CLI's: the command is named
        await until(pilot, lambda: any("blob put" in str(n.message) for n in app._notifications))

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert f"Delete blob a/first.txt of {tenant}?" in modal_text(app, "#confirm-title")
        await pilot.press("enter")  # Cancel has the focus
        await until(pilot, lambda: isinstance(app.screen, BlobsModal))
        assert len(await rb.box.store.blobs.listing(tenant)) == 2
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, BlobsModal))
        await until(pilot, lambda: [row[0] for row in blob_rows(app)] == ["b.bin"])
    assert [i.name for i in await rb.box.store.blobs.listing(tenant)] == ["b.bin"]


async def test_read_only_refuses_deleting_a_blob(rb: RunningBox) -> None:
    app = make_app(rb, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        tenant = app.current_tenant
        assert tenant is not None
        await _put(rb, tenant, "kept.txt", b"kept", "text/plain")
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BlobsModal))
        await until(pilot, lambda: len(blob_rows(app)) == 1)
        assert "read-only" in screen_text(app)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, BlobsModal)
    assert [i.name for i in await rb.box.store.blobs.listing(tenant)] == ["kept.txt"]
