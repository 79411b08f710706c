"""The benchmark harness keeps working: tiny runs, no timing assertions.

The figures themselves are the business of ``python -m bench`` on a quiet machine; these tests
only check that every part runs end to end and that its results have the expected shape, so
that the suite cannot rot between measurements.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import loadgen, report, targets
from bench.mcpclient import Endpoint, call_echo
from bench.peers.payload import call_body, call_headers
from bench.procs import ServerProcess, free_port, python_argv
from bench.suites import sandbox, store
from bench.suites.context import Sizes

REPO = Path(__file__).resolve().parents[2]


def _rows(box_rps: float) -> list[dict[str, object]]:
    rows = []
    for peer, rps in (("floor", 1000.0), ("sdk", 500.0), ("box", box_rps)):
        for conc in (1, 32):
            rows.append(
                {
                    "peer": peer,
                    "era": "any" if peer == "floor" else "modern",
                    "protocol": "http1",
                    "concurrency": conc,
                    "rps": rps,
                    "p50_ms": 1.0,
                    "p99_ms": 2.0,
                    "errors": 0,
                    "requests": 100,
                }
            )
    return rows


def _results(box_rps: float) -> dict[str, object]:
    rows = _rows(box_rps)
    from bench.suites.http import ratios

    return {
        "created": "now",
        "machine": {"cores": 2},
        "suites": {
            "http": {"rows": rows, "ratios": ratios(rows), "generator": {}},
            "store": {
                "events_per_s_encrypted": 900.0,
                "events_per_s_plain": 1000.0,
                "encryption_cost_pct": 10.0,
            },
        },
    }


def test_targets_and_regressions_from_synthetic_results() -> None:
    good, bad = _results(900.0), _results(600.0)
    checks = {c.name: c for c in targets.checks(good)}
    assert checks["box req/s at c=32 vs SDK server (modern, HTTP/1.1)"].met is True
    assert checks["box req/s at c=32 vs bare Quart (modern, HTTP/1.1)"].met is True
    assert checks["encryption's cost in persisted events/s"].met is True
    p99 = "box p99 at c=32 over the SDK server's (modern, HTTP/1.1)"
    assert checks[p99].met is True
    slow_tail = _results(900.0)
    for row in slow_tail["suites"]["http"]["rows"]:  # type: ignore[index]
        if row["peer"] == "box":
            row["p99_ms"] = 2.5
    assert {c.name: c for c in targets.checks(slow_tail)}[p99].met is False
    worse = {r.key for r in targets.regressions(bad, good)}
    assert "http.box.modern.http1.c32.rps" in worse
    assert not targets.regressions(good, good)
    text = report.render(good, markdown=False, regressions=[])
    assert "box/sdk" in text
    assert "met" in text
    assert "| target |" in report.render(bad, markdown=True)


def test_parsers_of_the_owned_scripts() -> None:
    parsed = sandbox.parse(
        "call, raw path (Instance.call, 200 B in/out)   11.5 µs  target\n"
        "fresh instance of a precompiled module   27.6 µs\n"
    )
    assert parsed["raw_call_us_median"] == 11.5
    assert parsed["instantiate_us_median"] == 27.6
    rates = store.parse("encrypted: 9,000 events/s\nplain: 10,000 events/s\n")
    assert rates["encryption_cost_pct"] == 10.0


def test_quick_sizes_are_small() -> None:
    quick = Sizes.quick()
    assert quick.streams <= 100
    assert quick.density_tenants <= 50
    assert quick.duration_s <= 1


@pytest.mark.parametrize("generator", ["python", "native"])
def test_load_generator_drives_the_floor_peer(tmp_path: Path, generator: str) -> None:
    if generator == "native" and not all(loadgen.available_tools().values()):
        pytest.skip("wrk/h2load not installed (apt-get install wrk nghttp2-client)")
    port = free_port()
    floor = ServerProcess(
        "floor", python_argv("bench.peers.quart_floor", "--port", str(port)), tmp_path
    )
    floor.port = port
    with floor:
        floor.start()
        import httpx

        with httpx.Client(timeout=10) as client:
            call_echo(client, Endpoint(f"http://127.0.0.1:{port}/mcp", "modern"))
        target = loadgen.Target(
            f"http://127.0.0.1:{port}/mcp", call_headers("modern"), call_body("modern")
        )
        for protocol in ("http1", "http2"):
            result = loadgen.run_load(
                target,
                protocol=protocol,
                concurrency=2,
                duration_s=0.3,
                warmup_s=0.1,
                generator=generator,
            )
            assert result.requests > 0
            assert result.errors == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_of_every_part(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--quiet", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    results = json.loads(out.read_text()) if out.exists() else {}
    errors = {
        name: suite.get("error")
        for name, suite in results.get("suites", {}).items()
        if suite.get("error")
    }
    assert not errors, f"{errors}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    suites = results["suites"]
    assert set(suites) == {"sandbox", "store", "http", "coldstart", "density", "streams", "noisy"}
    assert suites["noisy"]["quiet_flooded"]["failures"] == {}
    assert any(row["peer"] == "box" for row in suites["http"]["rows"])
    if loadgen.available_tools()["h2load"]:
        # The handshake era over h2c: h2load sends one fixed body, so each of its connections
        # is a session of its own (bench/loadgen.py); every answer must be a good one.
        legacy_h2 = [
            row
            for row in suites["http"]["rows"]
            if row["era"] == "legacy" and row["protocol"] == "http2"
        ]
        assert {row["peer"] for row in legacy_h2} == {"box", "sdk"}
        assert all(row["errors"] == 0 and row["requests"] > 0 for row in legacy_h2)
        assert not suites["http"]["skipped"]
    assert suites["streams"]["held"] > 0
    assert results["targets"]


async def test_durability_bench_measures_both_modes(tmp_path: Path) -> None:
    from bench import durability_bench

    rounds = await durability_bench.measure(tmp_path, sets=20, rounds=2, block=5)
    assert [sorted(r) for r in rounds] == [["FULL", "NORMAL"]] * 2
    assert all(rate > 0 for r in rounds for rate in r.values())
    lines = durability_bench.report(rounds, 20, 5)
    assert lines[1].startswith("synchronous=NORMAL:")
    assert lines[2].startswith("synchronous=FULL  :")
    assert lines[3].startswith("ratio FULL/NORMAL")


def test_instances_bench_prints_a_row_per_measure_for_each_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench import instances_bench

    # The committed Go example stands in for a build (the Python one needs componentize-py).
    stdio = REPO / "tenants" / "tasks" / "tasks.wasm"
    args = ["--kinds", "core,stdio", "--stdio", str(stdio), "--instances", "2"]
    assert instances_bench.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| measure | core (notes, C) | stdio (tasks, Go) |" in lines
    rows = [line for line in lines if line.startswith("| ") and "measure" not in line]
    assert len(rows) == 6
    rss = next(line for line in rows if line.startswith("| RSS per warm instance"))
    assert rss.endswith("| n/a |")  # stdio keeps no warm guests
    with pytest.raises(SystemExit):
        instances_bench.main(["--kinds", "wasi-http"])


def test_noisy_neighbour_quiet_tenant_keeps_succeeding(tmp_path: Path) -> None:
    """The short noisy-neighbour run: a real box, tenant A flooding (spins, memory bombs, kv
    floods, request floods) while tenant B is called; every call of B must succeed. Latency is
    reported by ``python -m bench.noisy_neighbour``, not asserted here."""
    from bench import noisy_neighbour

    result = noisy_neighbour.run(duration_s=2.0, rate=10.0, workdir=tmp_path)
    flooded = result["quiet_flooded"]
    assert flooded["calls"] == 20
    assert flooded["failures"] == {}
    assert result["quiet_alone"]["failures"] == {}
    noisy = result["noisy_outcomes"]
    # A really flooded: its spins and bombs were stopped by their limits.
    assert any(kind.startswith("spin:rpc-") for kind in noisy), noisy
    assert any(kind.startswith("bomb:rpc-") for kind in noisy), noisy
    assert result["box_log_tail"] == ""  # no traceback in the box's log
