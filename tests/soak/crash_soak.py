"""The long crash test: a box under concurrent note writes SIGKILLed many times, each restart
checked (every acknowledged write present, no id handed out twice, integrity_check ok).

    python -m tests.soak.crash_soak [--rounds 20] [--clients 8] [--seed N] [--max-seconds 600]

Run from the repository root (the box runs with this interpreter, as ``python -m
smcp_box.cli``). Stops by itself after --rounds kills or --max-seconds, whichever comes first,
prints one line per round and the totals, and exits 1 at the first failed check.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.e2e.crashload import Ledger, integrity_check, run_round, verify


async def soak(rounds: int, clients: int, seed: int, max_seconds: float, workdir: Path) -> int:
    rng = random.Random(seed)
    box = BoxProcess(workdir=workdir, tenants_dir=copy_tenants(workdir / "tenants", ["notes"]))
    # One more call slot than clients, so that no call is refused busy.
    manifest = box.tenants_dir / "notes" / "tenant.toml"
    manifest.write_text(
        manifest.read_text().replace(
            "[limits]\n", f"[limits]\nmax_concurrent_calls = {clients + 1}\n"
        )
    )
    started = time.monotonic()
    box.start()
    ledger = Ledger()
    done = 0
    try:
        key = box.create_key("notes")
        while done < rounds and time.monotonic() - started < max_seconds:
            kill_after = rng.randint(20, 400)
            outcome = await run_round(box, key, ledger, rng, clients, kill_after)
            verdict = integrity_check(box)
            if verdict != "ok":
                print(f"round {done + 1}: integrity_check: {verdict}", file=sys.stderr)
                return 1
            box.start()
            checked = await verify(box, key, ledger)
            done += 1
            print(
                f"round {done}: killed after {outcome.acknowledged} acknowledged writes; "
                f"{checked} notes checked, integrity ok"
            )
    except AssertionError as exc:
        print(f"round {done + 1}: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        box.stop()
    print(
        f"{done} kills in {time.monotonic() - started:.0f} s: {ledger.creates} creates and "
        f"{ledger.updates} updates acknowledged, all present; {ledger.unacknowledged} calls "
        "cut off by a kill; no id handed out twice"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20260728)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smcp-crash-soak-") as tmp:
        return asyncio.run(soak(args.rounds, args.clients, args.seed, args.max_seconds, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
