"""``smcp-box audit export`` and ``smcp-box audit verify`` as a subprocess, on a real database
that the tests then tamper with through raw sqlite3, as someone with file access would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from smcp_box.store import AuditEntry, Store, load_data_key

COLUMNS = (
    "box, seq, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
)


class Cli:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state = workdir / "state"
        self.database = self.state / "smcp-box.db"

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
        env.update(
            SMCP_BOX_STATE_DIR=str(self.state),
            SMCP_BOX_CACHE_DIR=str(self.workdir / "cache"),
            SMCP_BOX_RUNTIME_DIR=str(self.workdir / "run"),
            SMCP_BOX_TENANTS_DIR=str(self.workdir / "tenants"),
        )
        return subprocess.run(
            [sys.executable, "-m", "smcp_box.cli", *args],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )


@pytest.fixture
async def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path)
    runner.state.mkdir(mode=0o700)
    store = await Store.open(runner.database, load_data_key(runner.state, None))
    try:
        await store.append_audit_many(
            [
                AuditEntry(
                    "tool.call" if i % 2 else "auth.success",
                    "acme" if i % 3 else "globex",
                    f"key:k{i}",
                    "192.0.2.9",
                    "ok",
                    {"i": i, "receipt": {"fuel": 100 + i}},
                    ts=1_750_000_000.0 + i,
                )
                for i in range(1, 11)
            ]
        )
    finally:
        await store.close()
    return runner


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_export_as_json_lines(cli: Cli) -> None:
    out = cli.run("audit", "export", check=True).stdout
    rows = lines(out)
    assert [r["id"] for r in rows] == list(range(1, 11))
    first = rows[0]
    assert first == {
        "id": 1,
        "box": "box",
        "seq": 1,
        "time": "2025-06-15T15:06:41.000+00:00",
        "ts": 1_750_000_001.0,
        "kind": "event",
        "event": "tool.call",
        "tenant": "acme",
        "actor": "key:k1",
        "source_ip": "192.0.2.9",
        "outcome": "ok",
        "detail": {"i": 1, "receipt": {"fuel": 101}},
    }
    filtered = lines(cli.run("audit", "export", "--tenant", "globex", check=True).stdout)
    assert [r["id"] for r in filtered] == [3, 6, 9]
    later = lines(cli.run("audit", "export", "--since-id", "8", check=True).stdout)
    assert [r["id"] for r in later] == [9, 10]
    events = lines(cli.run("audit", "export", "--event", "tool.call", check=True).stdout)
    assert {r["event"] for r in events} == {"tool.call"}


def test_export_to_a_private_file(cli: Cli) -> None:
    target = cli.workdir / "audit.jsonl"
    done = cli.run("audit", "export", "--output", str(target), check=True)
    assert "wrote 10 audit row(s)" in done.stderr
    assert len(lines(target.read_text())) == 10
    assert target.stat().st_mode & 0o777 == 0o600


def test_verify_an_intact_log(cli: Cli) -> None:
    done = cli.run("audit", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "OK: every audit chain is intact (1 chain(s), 10 row(s) checked).",
        "  box box: 10 row(s), head 10: intact",
    ]


def tamper(cli: Cli, *statements: str) -> None:
    with sqlite3.connect(cli.database) as raw:
        for sql in statements:
            raw.execute(sql)


def test_verify_reports_every_edited_inserted_and_deleted_row(cli: Cli) -> None:
    tamper(
        cli,
        "UPDATE audit SET outcome = 'denied' WHERE id = 2",
        "UPDATE audit SET detail = '{\"i\":5}' WHERE id = 5",
        "DELETE FROM audit WHERE id = 7",
    )
    done = cli.run("audit", "verify")
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL: the audit chain of box box is broken.\n")
    assert "box box: 9 row(s), head 10: BROKEN at row 2 (edited): Audit row 2" in done.stdout
    assert "edited   row 2:" in done.stdout
    assert "edited   row 5:" in done.stdout
    assert "deleted  row 7: Audit rows 7..7 are missing (deleted)." in done.stdout
    report = json.loads(cli.run("audit", "verify", "--json").stdout)
    assert report["ok"] is False
    assert [(f["id"], f["problem"]) for f in report["findings"]] == [
        (2, "edited"),
        (5, "edited"),
        (7, "deleted"),
    ]


def test_verify_reports_an_inserted_row(cli: Cli) -> None:
    with sqlite3.connect(cli.database) as raw:
        (last,) = raw.execute("SELECT hash FROM audit WHERE id = 10").fetchone()
        raw.execute(
            f"INSERT INTO audit ({COLUMNS}) VALUES ('box', 11, 1.0, 'event', 'admin.key.create',"
            " 'acme', 'admin:mallory@socket', NULL, 'ok', '{}', ?, randomblob(32), NULL)",
            (last,),
        )
    done = cli.run("audit", "verify", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["problem"] == "inserted"
    assert [(f["id"], f["problem"]) for f in report["findings"]] == [(11, "inserted")]


def test_verify_reports_rows_deleted_and_renumbered(cli: Cli) -> None:
    tamper(
        cli, "DELETE FROM audit WHERE id IN (4, 5)", "UPDATE audit SET seq = seq - 2 WHERE seq > 5"
    )
    report = json.loads(cli.run("audit", "verify", "--json").stdout)
    assert report["problem"] == "deleted"
    assert [(f["id"], f["problem"]) for f in report["findings"]] == [(4, "deleted")]
    assert "2 row(s) were deleted" in report["findings"][0]["message"]


def test_missing_database_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    runner = Cli(tmp_path)
    done = runner.run("audit", "verify")
    assert done.returncode == 1
    assert "no database at" in done.stderr
    assert not runner.database.exists()
    assert not (runner.state / "data.key").exists()


async def test_two_boxes_chains_are_verified_each_and_exported_merged_by_time(cli: Cli) -> None:
    key = load_data_key(cli.state, None)
    for box, offsets in (("b2", (0.5, 2.0, 3.5)), ("b3", (2.0, 4.0))):
        store = await Store.open(cli.database, key, box_id=box)
        try:
            entries = [
                AuditEntry("tool.call", "acme", box, None, "ok", {"n": n}, ts=1_750_000_000.0 + t)
                for n, t in enumerate(offsets)
            ]
            await store.append_audit_many(entries)
        finally:
            await store.close()
    rows = lines(cli.run("audit", "export", check=True).stdout)
    assert len(rows) == 15
    order = [(r["ts"], r["box"], r["seq"]) for r in rows]
    assert order == sorted(order)  # merged by time, ties by box then place in its chain
    assert order[:4] == [
        (1_750_000_000.5, "b2", 1),
        (1_750_000_001.0, "box", 1),
        (1_750_000_002.0, "b2", 2),
        (1_750_000_002.0, "b3", 1),
    ]
    done = cli.run("audit", "verify")
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == [
        "OK: every audit chain is intact (3 chain(s), 15 row(s) checked).",
        "  box b2: 3 row(s), head 3: intact",
        "  box b3: 2 row(s), head 2: intact",
        "  box box: 10 row(s), head 10: intact",
    ]

    tamper(cli, "UPDATE audit SET actor = 'mallory' WHERE box = 'b2' AND seq = 2")
    done = cli.run("audit", "verify", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    verdicts = {c["box"]: (c["ok"], c["first_bad_id"], c["problem"]) for c in report["chains"]}
    assert verdicts == {
        "b2": (False, 2, "edited"),
        "b3": (True, None, None),
        "box": (True, None, None),
    }
    assert [(f["box"], f["id"], f["problem"]) for f in report["findings"]] == [("b2", 2, "edited")]
    assert "The audit chain of box b2" in report["message"]
