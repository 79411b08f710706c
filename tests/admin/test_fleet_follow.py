"""What a box does with changes other boxes announce (Box.follow_fleet), on one SQLite box:
changes are written straight to the store, as another box would, and announced on the box's
feed with another box's origin."""

from __future__ import annotations

from smcp_box.seams import Change
from smcp_box.store.changes import (
    ADMIN_APPROVALS,
    ADMIN_SECRETS,
    ADMIN_USERS,
    TOPIC_ADMIN,
    TOPIC_RESYNC,
    TOPIC_TENANT,
    LocalChangeFeed,
)
from smcp_box.store.tenant_state import TenantAdminState
from tests.admin.support import RunningBox
from tests.support.waiting import wait_until


def feed_of(rb: RunningBox) -> LocalChangeFeed:
    assert isinstance(rb.box.changes, LocalChangeFeed)
    return rb.box.changes


def runs(rb: RunningBox) -> tuple[int, int]:
    """(full reloads, secret reloads) so far."""
    everything, secrets_only = rb.box._fleet_jobs
    return everything.runs, secrets_only.runs


async def test_a_secret_another_box_set_is_loaded(rb: RunningBox) -> None:
    await rb.box.store.set_secret("notes", "API_TOKEN", "from-elsewhere")
    assert "API_TOKEN" not in rb.box.tenants.secrets.names("notes")
    feed_of(rb).deliver(Change(TOPIC_ADMIN, ADMIN_SECRETS, "box_z"))
    await wait_until(
        lambda: "API_TOKEN" in rb.box.tenants.secrets.names("notes"), what="the secret"
    )
    assert runs(rb) == (0, 1)


async def test_a_tenant_another_box_disabled_is_reloaded_disabled(rb: RunningBox) -> None:
    await rb.box.store.save_tenant_state(TenantAdminState("notes", "folder", enabled=False))
    feed_of(rb).deliver(Change(TOPIC_TENANT, "notes", "box_z"))
    await wait_until(lambda: not rb.box.tenants.require("notes").enabled, what="a reload")
    assert runs(rb) == (1, 0)


async def test_approvals_reload_everything_and_users_nothing(rb: RunningBox) -> None:
    feed_of(rb).deliver(Change(TOPIC_ADMIN, ADMIN_USERS, "box_z"))
    feed_of(rb).deliver(Change(TOPIC_ADMIN, ADMIN_APPROVALS, "box_z"))
    await wait_until(lambda: runs(rb) == (1, 0), what="one full reload")


async def test_its_own_changes_cause_no_reload_but_a_resync_does(rb: RunningBox) -> None:
    await rb.box.changes.publish(TOPIC_TENANT, "notes")
    await rb.box.changes.publish(TOPIC_ADMIN, ADMIN_SECRETS)
    # Neither job was even asked to run (a trigger starts its task at once).
    assert all(job._task is None for job in rb.box._fleet_jobs)
    feed_of(rb).deliver(Change(TOPIC_RESYNC, "", rb.box.box_id))
    await wait_until(lambda: runs(rb) == (1, 0), what="the resync's full reload")
