"""A homelab box moves up: a populated single box on SQLite is stopped, ``smcp-box store
migrate --to DSN`` copies its database into PostgreSQL, and three boxes on that database (with
the same data key) serve the same clients: the old API key works through the balancer and the
notes written before the move are there."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from smcp_box.cli import build_parser
from tests.e2e.clients import modern_headers, modern_request, parse_single_response
from tests.fleet.support import echo_many, failures, needs_fleet
from tests.support.fleet import FleetBox, fresh_database, running_fleet, write_data_key

DATA_KEY = bytes(range(32))


def has_store_migrate() -> bool:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction) and "store" in action.choices:
            store = action.choices["store"]
            return any(
                isinstance(sub, argparse._SubParsersAction) and "migrate" in sub.choices
                for sub in store._actions
            )
    return False


pytestmark = [
    pytest.mark.slow,
    *needs_fleet,
    pytest.mark.skipif(not has_store_migrate(), reason="smcp-box store migrate not built"),
]


def notes_call(http: httpx.Client, url: str, key: str, tool: str, args: dict[str, object]) -> dict:
    body = modern_request(1, "tools/call", {"name": tool, "arguments": args})
    response = http.post(url, json=body, headers=modern_headers(key, "tools/call", tool))
    assert response.status_code == 200, response.text
    result = parse_single_response(response)["result"]
    assert not result.get("isError"), result
    return dict(result)


async def test_a_migrated_box_serves_its_clients_from_the_fleet(
    fleet_postgres: str, fleet_tenants: Path, fleet_cache: Path
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="smcp-home-", dir="/tmp"))
    try:
        write_data_key(workdir / "state" / "data.key", DATA_KEY)
        home = FleetBox(
            workdir=workdir,
            tenants_dir=fleet_tenants,
            extra_env={"SMCP_BOX_CACHE_DIR": str(fleet_cache)},
        )
        home.start()
        try:
            utils_key = home.create_key("utils")
            notes_key = home.create_key("notes")
            with httpx.Client(timeout=30) as http:
                for number in range(3):
                    notes_call(
                        http,
                        home.url("notes"),
                        notes_key,
                        "note_create",
                        {"title": f"before the move {number}", "body": "kept"},
                    )
            assert failures(await echo_many(home.url("utils"), utils_key, 5, concurrency=1)) == []
        finally:
            assert home.stop() == 0, home.log()

        dsn = fresh_database(fleet_postgres)
        moved = home.cli("store", "migrate", "--to", dsn, check=False)
        assert moved.returncode == 0, moved.stdout + moved.stderr

        with running_fleet(
            fleet_tenants, dsn=dsn, cache_dir=fleet_cache, data_key=DATA_KEY
        ) as fleet:
            assert failures(await echo_many(fleet.url("utils"), utils_key, 9, concurrency=3)) == []
            with httpx.Client(timeout=30) as http:
                for box in fleet.boxes.values():
                    listed = notes_call(http, box.url("notes"), notes_key, "note_list", {})
                    text = json.dumps(listed)
                    assert all(f"before the move {n}" in text for n in range(3)), text
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
