"""Losing nothing (issue 13): a subprocess box under concurrent note creates and updates from
several 2026-07-28 clients is SIGKILLed at seeded random moments, three times; after each
restart every acknowledged write is there, no two creates share an id, and the database passes
integrity_check. The long version is tests/soak/crash_soak.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.e2e.crashload import Ledger, integrity_check, run_round, verify

pytest.importorskip("ziglang")

SEED = 20260728
ROUNDS = 3
CLIENTS = 6
#: Calls at once stay under the tenant's default cap of 8: none is refused busy.
assert CLIENTS <= 8


@pytest.mark.slow
async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    box = BoxProcess(workdir=tmp_path, tenants_dir=copy_tenants(tmp_path / "tenants", ["notes"]))
    box.start()
    try:
        key = box.create_key("notes")
        ledger = Ledger()
        for _ in range(ROUNDS):
            outcome = await run_round(
                box, key, ledger, rng, clients=CLIENTS, kill_after=rng.randint(15, 60)
            )
            assert outcome.acknowledged >= outcome.kill_after
            assert integrity_check(box) == "ok"
            box.start()
            checked = await verify(box, key, ledger)
            assert checked == ledger.creates > 0
        assert ledger.updates > 0
    finally:
        box.stop()
