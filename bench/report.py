"""Results files, the machine description, and the table (plain text or Markdown)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench import targets
from bench.procs import REPO
from bench.suites.http import find

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATEST = RESULTS_DIR / "latest.json"
BASELINE = RESULTS_DIR / "baseline.json"
DOCS = REPO / "docs" / "benchmarks.md"
DOC_START = "<!-- bench:table:start (written by `python -m bench --update-docs`) -->"
DOC_END = "<!-- bench:table:end -->"
PACKAGES = (
    "wasmtime",
    "quart",
    "hypercorn",
    "h2",
    "mcp",
    "uvicorn",
    "starlette",
    "httpx",
    "aiosqlite",
    "cryptography",
)


def _tool_version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    commit = _tool_version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _tool_version(["git", "-C", str(REPO), "status", "--porcelain"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "wrk": _tool_version(["wrk", "--version"]),
        "h2load": _tool_version(["h2load", "--version"]),
        "commit": commit,
        "dirty": bool(dirty),
        "loadavg_start": os.getloadavg()[0],
    }


# --- files --------------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def merge(previous: dict[str, Any] | None, run: dict[str, Any]) -> dict[str, Any]:
    """``run``'s suites laid over the previous latest results, so a partial run keeps the rest.

    Each suite carries its own ``measured_at``; the machine block is this run's.
    """
    suites = dict((previous or {}).get("suites", {}))
    suites.update(run["suites"])
    merged = {**run, "suites": suites}
    merged["targets"] = [check.to_json() for check in targets.checks(merged)]
    return merged


def write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


# --- rendering ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def fmt(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _num(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and digits == 0:
        return f"{value:,.0f}{suffix}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value:,}{suffix}"


ERA_TITLES = {
    "modern": "2026-07-28 era (stateless POSTs)",
    "legacy": "2025-11-25 era (one session, Mcp-Session-Id)",
}


def _http_section(http: dict[str, Any], markdown: bool) -> list[str]:
    rows = http.get("rows", [])
    out = []
    gen = http.get("generator", {})
    out.append(
        f"Load: HTTP/1.1 by {gen.get('http1')}, HTTP/2 (h2c) by {gen.get('http2')}; "
        f"{http.get('duration_s')} s per run after {http.get('warmup_s')} s warm-up"
        + (f", median of {http['rounds']} rounds" if http.get("rounds", 1) > 1 else "")
        + "; "
        "concurrency = connections. The SDK server's HTTP/1.1 runs on uvicorn "
        + (
            "with httptools and uvloop (uvicorn[standard])."
            if http.get("sdk_uvicorn") == "standard"
            else "with h11 and asyncio's loop, as `pip install mcp` installs it."
        )
        + (
            " The Python client runs in the bench process and competes with the servers for"
            " the two cores: its figures are lower bounds (apt-get install wrk nghttp2-client)."
            if "python-httpx" in gen.values()
            else ""
        )
    )
    eras = [e for e in ("modern", "legacy") if any(r["era"] == e for r in rows)]
    for era in eras:
        header = [
            "proto",
            "conc",
            "floor req/s",
            "p50/p99 ms",
            "sdk req/s",
            "p50/p99 ms",
            "box req/s",
            "p50/p99 ms",
            "box/sdk",
            "box/floor",
        ]
        table = []
        combos = sorted(
            {(r["protocol"], r["concurrency"]) for r in rows if r["era"] == era},
            key=lambda c: (c[0], c[1]),
        )
        for proto, conc in combos:
            cells = ["HTTP/1.1" if proto == "http1" else "HTTP/2", str(conc)]
            found = {p: find(rows, p, era, proto, conc) for p in ("floor", "sdk", "box")}
            for peer in ("floor", "sdk", "box"):
                row = found[peer]
                if row is None:
                    cells += ["—", "—"]
                    continue
                errs = f" ({row['errors']} err)" if row["errors"] else ""
                cells += [_num(row["rps"]) + errs, f"{row['p50_ms']:.2f}/{row['p99_ms']:.2f}"]
            for peer in ("sdk", "floor"):
                box, other = found["box"], found[peer]
                cells.append(
                    f"{box['rps'] / other['rps']:.2f}x" if box and other and other["rps"] else "—"
                )
            table.append(cells)
        title = f"tools/call, {ERA_TITLES[era]}"
        out.append(f"**{title}**" if markdown else title)
        out.append(_table(header, table, markdown))
    cpu_rows = []
    for era in eras:
        combos = sorted(
            {(r["protocol"], r["concurrency"]) for r in rows if r["era"] == era},
            key=lambda c: (c[0], c[1]),
        )
        for proto, conc in combos:
            found = {p: find(rows, p, era, proto, conc) for p in ("floor", "sdk", "box")}
            cpu = {p: (r or {}).get("server_cpu_us_per_request") for p, r in found.items()}
            if not any(cpu.values()):
                continue
            extra = cpu["box"] - cpu["floor"] if cpu["box"] and cpu["floor"] else None
            ratio = cpu["box"] / cpu["floor"] if cpu["box"] and cpu["floor"] else None
            cpu_rows.append(
                [
                    era,
                    "HTTP/1.1" if proto == "http1" else "HTTP/2",
                    str(conc),
                    _num(cpu["floor"]),
                    _num(cpu["sdk"]),
                    _num(cpu["box"]),
                    _num(extra),
                    f"{ratio:.2f}x" if ratio else "—",
                ]
            )
    if cpu_rows:
        title = (
            "server CPU per request, µs (user + system, all threads; steadier than req/s on a "
            "busy machine)"
        )
        out.append(f"**{title}**" if markdown else title)
        header = ["era", "proto", "conc", "floor", "sdk", "box", "box - floor", "box/floor"]
        out.append(_table(header, cpu_rows, markdown))
    reasons = sorted({entry.split(": ", 1)[1] for entry in http.get("skipped", [])})
    if reasons:
        what = sorted(
            {" ".join(entry.split(": ", 1)[0].split()[1:3]) for entry in http.get("skipped", [])}
        )
        out.append(f"Not measured ({', '.join(what)}): {'; '.join(reasons)}.")
    return out


def _ratio(a: Any, b: Any, word_above: str, word_below: str) -> str:
    if not a or not b:
        return "—"
    r = a / b
    r, word = (r, word_above) if r >= 1 else (1 / r, word_below)
    return f"{r:.0f}x {word}" if r >= 10 else f"{r:.2f}x {word}"


def _other_sections(suites: dict[str, Any], markdown: bool) -> list[str]:
    """One table row per non-HTTP figure, each beside its peer; then the details."""
    rows: list[list[str]] = []
    notes: list[str] = []
    for name in ("sandbox", "coldstart", "density", "streams", "store"):
        s = suites.get(name)
        if s and s.get("error"):
            rows.append([f"{name}: FAILED", s["error"][:80], "", "", ""])
    if (s := suites.get("sandbox")) and not s.get("error"):
        raw, high = s.get("raw_call_us_median"), s.get("high_level_call_us_median")
        rows.append(
            [
                "sandbox call, 200 B in and out (median)",
                _num(raw, 1, " µs"),
                "wasmtime-py high-level call",
                _num(high, 1, " µs"),
                _ratio(high, raw, "faster", "slower"),
            ]
        )
        rows.append(
            [
                "fresh instance from the precompiled cache",
                _num(s.get("instantiate_us_median"), 1, " µs"),
                "",
                "",
                "",
            ]
        )
        if s.get("async_call_us_median"):
            notes.append(
                f"a sandbox call awaited from the event loop (worker-thread hop "
                f"included) costs {_num(s['async_call_us_median'], 1)} µs median"
            )
    if (s := suites.get("coldstart")) and not s.get("error"):
        peer = s.get("peer_sdk_process_start_ms")
        rows.append(
            [
                f"cold tenant, first call (median of {s['tenants']})",
                _num(s["first_call_ms_median"], 2, " ms"),
                "SDK server process, spawn to first reply",
                _num(peer, 0, " ms"),
                _ratio(peer, s["first_call_ms_median"], "faster", "slower"),
            ]
        )
        notes.append(
            f"cold start: warm calls {_num(s['warm_call_ms_median'], 2)} ms median, so "
            f"a first call costs {_num(s['extra_ms_median'], 2)} ms more (median; "
            f"max {_num(s['extra_ms_max'], 2)} ms)"
        )
    if (s := suites.get("density")) and not s.get("error"):
        peer = s.get("peer_sdk_process_rss_mib")
        total = s["registered"]
        peer_all = peer * total if peer else None
        rows.append(
            [
                f"RSS, {total:,} tenants registered, {s['warm']} warm",
                _num(s["rss_warm_mib"], 1, " MiB"),
                f"{total:,} SDK server processes ({_num(peer, 1)} MiB each)",
                _num(peer_all / 1024 if peer_all else None, 1, " GiB"),
                _ratio(peer_all, s["rss_warm_mib"], "smaller", "larger"),
            ]
        )
        rows.append(
            [
                f"call to a cold tenant among {total:,}, p99 ({s['cold_calls']} calls)",
                _num(s["cold_call_ms_p99"], 2, " ms"),
                "",
                "",
                "",
            ]
        )
        notes.append(
            f"density: cold-tenant call p50 {_num(s['cold_call_ms_p50'], 2)} ms, warm "
            f"p50 {_num(s['warm_call_ms_p50'], 2)} ms; idle RSS "
            f"{_num(s['rss_idle_mib'], 1)} MiB; box start with {total:,} tenants "
            f"{_num(s['start_s'], 1)} s with the compiled cache filled, "
            f"{_num(s['first_start_s'], 1)} s with it empty"
        )
    if (s := suites.get("streams")) and not s.get("error"):
        peer = s.get("peer_sdk") or {}
        rows.append(
            [f"idle SSE streams held (of {s['requested']:,})", f"{s['held']:,}", "", "", ""]
        )
        rows.append(
            [
                "RSS per idle stream, its session included",
                _num(s["kib_per_stream_with_session"], 1, " KiB"),
                f"SDK server ({peer.get('held', 0):,} streams)",
                _num(peer.get("kib_per_stream_with_session"), 1, " KiB"),
                _ratio(
                    peer.get("kib_per_stream_with_session"),
                    s["kib_per_stream_with_session"],
                    "smaller",
                    "larger",
                ),
            ]
        )
        rate = s["sessions"] / s["sessions_s"] if s.get("sessions_s") else None
        open_rate = s["held"] / s["open_s"] if s.get("open_s") else None
        notes.append(
            f"streams: the stream alone {_num(s['kib_per_stream_only'], 1)} KiB; box "
            f"RSS {_num(s['rss_streams_mib'], 1)} MiB holding them; sessions opened "
            f"at {_num(rate)}/s, streams at {_num(open_rate)}/s"
            + (f"; failures {s['failures']}" if s.get("failures") else "")
        )
    if (s := suites.get("store")) and not s.get("error"):
        enc, plain = s.get("events_per_s_encrypted"), s.get("events_per_s_plain")
        rows.append(
            [
                "persisted SSE events/s, encrypted",
                _num(enc, 0, "/s"),
                "the same store, encryption off",
                _num(plain, 0, "/s"),
                f"{enc / plain:.2f}x" if enc and plain else "—",
            ]
        )
    out = []
    if rows:
        out.append(
            _table(["measurement", "box", "peer", "peer figure", "box vs peer"], rows, markdown)
        )
    if notes:
        out.append("\n".join(("- " if markdown else "") + note for note in notes))
    return out


def _targets_section(results: dict[str, Any], markdown: bool) -> str:
    rows = []
    for check in targets.checks(results):
        met = {True: "met", False: "MISSED", None: "not measured"}[check.met]
        measured = "—" if check.measured is None else f"{check.measured:g} {check.unit}"
        rows.append([check.name, measured, f"{check.op} {check.threshold:g} {check.unit}", met])
    return _table(["target", "measured", "target", "result"], rows, markdown)


def render(
    results: dict[str, Any],
    markdown: bool = False,
    regressions: list[targets.Regression] | None = None,
    baseline_note: str = "",
) -> str:
    m = results.get("machine", {})
    suites = results.get("suites", {})
    parts = [
        f"Measured {results.get('created', '?')} on {m.get('cores')} cores ({m.get('cpu')}), "
        f"{m.get('memory_gib')} GiB, Linux {m.get('kernel')}, Python {m.get('python')}; "
        f"commit {m.get('commit')}{' (uncommitted changes)' if m.get('dirty') else ''}; "
        f"load average {m.get('loadavg_start', 0):.2f} at start, "
        f"{m.get('loadavg_end', 0):.2f} at end.",
    ]
    if "http" in suites:
        parts += _http_section(suites["http"], markdown)
    parts += _other_sections(suites, markdown)
    parts += ["**Targets**" if markdown else "targets", _targets_section(results, markdown)]
    if regressions is not None:
        head = f"regressions of more than 20% against the baseline{baseline_note}"
        if regressions:
            rows = [
                [r.key, f"{r.baseline:g}", f"{r.latest:g}", f"{r.change_pct:+.1f}%"]
                for r in regressions
            ]
            parts += [
                f"**{head}**" if markdown else head,
                _table(["metric", "baseline", "latest", "change"], rows, markdown),
            ]
        else:
            parts.append(f"{head}: none")
    return "\n\n".join(p for p in parts if p)


def update_docs(results: dict[str, Any]) -> bool:
    """Rewrite the generated table in docs/benchmarks.md; False when its markers are missing."""
    try:
        text = DOCS.read_text()
    except OSError:
        return False
    if DOC_START not in text or DOC_END not in text:
        return False
    head, rest = text.split(DOC_START, 1)
    _old, tail = rest.split(DOC_END, 1)
    DOCS.write_text(f"{head}{DOC_START}\n\n{render(results, markdown=True)}\n\n{DOC_END}{tail}")
    return True


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
