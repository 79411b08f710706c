"""Fan-out between two boxes on one PostgreSQL database: what one box commits takes effect on
the other within a second (credentials, tenants, secrets, list changes reaching streams)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from smcp_box.errors import AuthError
from smcp_box.store.changes import TOPIC_RESYNC
from smcp_box.store.pg_notify import PgChangeFeed
from smcp_box.web.mcp import McpTransport, TransportSettings
from tests.admin.support import RunningBox, mcp_session, serving_mcp
from tests.support.waiting import wait_until
from tests.web.rawhttp import sse_events

#: The issue's promise: an admin change on one box takes effect on every box within this.
WITHIN_S = 1.0


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


async def authenticates(rb: RunningBox, tenant: str, secret: str) -> bool:
    runtime = rb.box.tenants.require(tenant)
    try:
        await rb.box.authenticator.authenticate(runtime, bearer(secret), None)
    except AuthError:
        return False
    return True


async def test_each_box_runs_a_postgres_feed_of_its_own(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    assert isinstance(box_a.box.changes, PgChangeFeed)
    assert isinstance(box_b.box.changes, PgChangeFeed)
    assert (box_a.box.changes.box_id, box_b.box.changes.box_id) == ("box_a", "box_b")


async def test_a_key_made_on_one_box_works_on_the_other_and_its_revocation_too(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    created = await box_a.client.create_key("notes")
    secret = str(created["key"])
    # A miss goes to the database: no notice is needed for a new key.
    assert await authenticates(box_b, "notes", secret)
    assert await authenticates(box_a, "notes", secret)
    assert box_b.box.authenticator.cached == 1
    await box_a.client.revoke_key(str(created["key_id"]))
    # Box A refuses it as soon as the revocation returns ...
    assert not await authenticates(box_a, "notes", secret)
    # ... and box B, which had it cached, within a second.
    await wait_until(
        lambda: _refused(box_b, "notes", secret),
        what="box_b to refuse the key box_a revoked",
        timeout=WITHIN_S,
    )


async def _refused(rb: RunningBox, tenant: str, secret: str) -> bool:
    return not await authenticates(rb, tenant, secret)


async def test_a_cached_key_check_reads_nothing_from_the_database(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    created = await box_a.client.create_key("notes")
    store = box_b.box.store
    reads: list[str] = []
    verify = store.verify_api_key

    async def counting(secret: str) -> Any:
        reads.append("verify")
        return await verify(secret)

    store.verify_api_key = counting  # type: ignore[method-assign]
    for _ in range(20):
        assert await authenticates(box_b, "notes", str(created["key"]))
    assert reads == ["verify"]


async def test_a_tenant_disabled_on_one_box_is_refused_by_the_other(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    created = await box_a.client.create_key("notes")
    async with serving_mcp(box_b) as base, httpx.AsyncClient() as http:
        url = f"{base}/t/notes/mcp"
        headers = await mcp_session(http, url, str(created["key"]))
        ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
        assert (await http.post(url, headers=headers, json=ping)).status_code == 200
        await box_a.client.set_enabled("notes", False)

        async def refused() -> bool:
            response = await http.post(url, headers=headers, json=ping)
            return response.status_code == 503

        await wait_until(
            refused, what="box_b to refuse the tenant box_a disabled", timeout=WITHIN_S
        )
        await box_a.client.set_enabled("notes", True)

        async def served() -> bool:
            response = await http.post(url, headers=headers, json=ping)
            return response.status_code == 200

        await wait_until(served, what="box_b to serve it again", timeout=WITHIN_S)


async def test_a_tenant_added_on_one_box_is_served_by_the_other(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    notes = box_a.tenants_dir / "notes"
    manifest = (notes / "tenant.toml").read_text().replace('name = "notes"', 'name = "notes2"')
    module = next(notes.rglob("*.wasm")).read_bytes()
    await box_a.client.add_tenant(manifest, module)
    await wait_until(
        lambda: box_b.box.tenants.get("notes2") is not None,
        what="box_b to serve the tenant added on box_a",
        timeout=WITHIN_S * 5,
    )
    # Its files came from the database, not from box_a's disk.
    assert (box_b.box.added_tenants_path() / "notes2" / "tenant.toml").is_file()


async def test_a_secret_set_on_one_box_reaches_the_other_boxs_tenant(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    await box_a.client.set_secret("notes", "API_TOKEN", "s3cret-value")
    await wait_until(
        lambda: (
            box_b.box.tenants.secrets.config_for("notes", {}).get("API_TOKEN") == "s3cret-value"
        ),
        what="box_b's tenant to see the secret set on box_a",
        timeout=WITHIN_S,
    )
    await box_a.client.request("DELETE", "/secrets/notes/API_TOKEN")
    await wait_until(
        lambda: "API_TOKEN" not in box_b.box.tenants.secrets.names("notes"),
        what="box_b to forget the secret deleted on box_a",
        timeout=WITHIN_S,
    )


async def test_a_list_change_on_one_box_reaches_a_get_stream_on_the_other(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    created = await box_a.client.create_key("notes")
    async with (
        serving_mcp(box_b) as base_b,
        httpx.AsyncClient(timeout=10) as http,
    ):
        url = f"{base_b}/t/notes/mcp"
        headers = await mcp_session(http, url, str(created["key"]))
        get_headers = {**headers, "accept": "text/event-stream"}
        get_headers.pop("content-type", None)
        async with http.stream("GET", url, headers=get_headers) as stream:
            assert stream.status_code == 200
            events = sse_events(stream)
            priming = await asyncio.wait_for(anext(events), 5)
            assert priming.data == ""
            # What a module's notify does on box_a: publish to box_a's transport's events.
            transport_a = McpTransport(box_a.box.mcp_services(), TransportSettings())
            try:
                await transport_a.events.publish(
                    "notes", {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
                )
            finally:
                await transport_a.aclose()
            pushed = await asyncio.wait_for(anext(events), WITHIN_S)
            assert pushed.json() == {
                "jsonrpc": "2.0",
                "method": "notifications/tools/list_changed",
            }


async def test_a_reconnected_feed_makes_its_box_reload(
    two_boxes: tuple[RunningBox, RunningBox], postgres_server: str
) -> None:
    import asyncpg

    _box_a, box_b = two_boxes
    feed = box_b.box.changes
    assert isinstance(feed, PgChangeFeed)
    resyncs: list[str] = []
    feed.subscribe(TOPIC_RESYNC, lambda change: resyncs.append(change.origin))
    assert feed._conn is not None
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", feed._conn.get_server_pid())
    finally:
        await admin.close()
    await wait_until(lambda: resyncs == ["box_b"], what="box_b's feed to reconnect and resync")
    assert feed.connected


async def test_an_access_token_revoked_on_one_box_is_refused_by_the_other(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    audience = "https://box.lan/t/notes/mcp"
    token, _claims = box_a.box.tokens.issue_access_token(
        issuer="https://box.lan",
        subject="alice",
        tenant="notes",
        audience=audience,
        client_id="c",
        scopes=frozenset(),
    )
    # Box B verifies with the signing key box A made (both read it from the database).
    box_b.box.tokens.verify_access_token(token, audience=audience)
    assert await box_a.box.tokens.revoke_access_token(token)

    def refused() -> bool:
        try:
            box_b.box.tokens.verify_access_token(token, audience=audience)
        except AuthError:
            return True
        return False

    await wait_until(refused, what="box_b to refuse the token box_a revoked", timeout=WITHIN_S)


async def test_a_tenant_removed_on_one_box_is_no_longer_served_by_the_other(
    two_boxes: tuple[RunningBox, RunningBox],
) -> None:
    box_a, box_b = two_boxes
    assert box_b.box.tenants.get("utils") is not None
    await box_a.client.request("DELETE", "/tenants/utils")
    await wait_until(
        lambda: box_b.box.tenants.get("utils") is None,
        what="box_b to stop serving the tenant removed on box_a",
        timeout=WITHIN_S,
    )
