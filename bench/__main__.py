"""``python -m bench``: run the benchmark suite (all of it, or the named parts).

    python -m bench                       # everything, a few minutes on 2 cores
    python -m bench http streams          # only these parts (merged into latest.json)
    python -m bench --quick               # tiny counts: checks that the harness works
    python -m bench --report              # print the table of bench/results/latest.json
    python -m bench --save-baseline       # after a run: make it the committed baseline
    python -m bench --update-docs         # after a run: refresh docs/benchmarks.md's table

The load generators are wrk (HTTP/1.1) and h2load (HTTP/2): ``apt-get install wrk
nghttp2-client``. Without them the suite falls back to a Python httpx client and says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import report, targets
from bench.suites import coldstart, density, http, noisy, sandbox, store, streams
from bench.suites.context import BENCH_BOX_SETTINGS, Context, Sizes

PARTS = {
    # Cheap parts first, so that a run that fails late still has them.
    "sandbox": sandbox.run,
    "store": store.run,
    "http": http.run,
    "coldstart": coldstart.run,
    "density": density.run,
    "streams": streams.run,
    "noisy": noisy.run,
}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _strs(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"parts to run: {', '.join(PARTS)} (default all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny counts and durations (a smoke test; nothing is recorded unless --out is given)",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "native", "python"),
        default="auto",
        help="load generator: wrk/h2load when installed (auto), or python",
    )
    parser.add_argument("--duration", type=float, help="seconds per load run (default 2)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each load run")
    parser.add_argument(
        "--rounds",
        type=int,
        help="passes over the HTTP plan; each row reports the median pass (default 1)",
    )
    parser.add_argument("--concurrency", type=_ints, help="e.g. 1,8,32,64")
    parser.add_argument(
        "--legacy-concurrency",
        type=_ints,
        help="concurrency levels for the legacy era (default 1,8,32,64)",
    )
    parser.add_argument("--protocols", type=_strs, help="http1,http2")
    parser.add_argument("--eras", type=_strs, help="modern,legacy")
    parser.add_argument("--peers", type=_strs, help="http peers: floor,sdk,box")
    parser.add_argument(
        "--sdk-uvicorn",
        choices=("plain", "standard"),
        default="plain",
        help="the SDK server's uvicorn as `pip install mcp` installs it (h11, asyncio; the "
        "default) or as uvicorn[standard] (httptools, uvloop)",
    )
    parser.add_argument("--streams", type=int, help="idle SSE streams to open (default 10000)")
    parser.add_argument("--tenants", type=int, help="registered tenants for density (1000)")
    parser.add_argument("--cold-tenants", type=int, help="tenants measured for cold start (10)")
    parser.add_argument(
        "--no-encrypt",
        action="store_true",
        help="run the boxes with store encryption off (for comparison)",
    )
    parser.add_argument("--out", type=Path, help=f"results file (default {report.LATEST})")
    parser.add_argument("--baseline", type=Path, default=report.BASELINE)
    parser.add_argument(
        "--save-baseline",
        action="store_true",
        help="copy the results to the baseline file after the run",
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="rewrite the generated table in docs/benchmarks.md",
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 3 when a metric is more than 20%% worse than the baseline",
    )
    parser.add_argument(
        "--report", action="store_true", help="run nothing; print the table of the results file"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the scratch folder (servers' logs, databases)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts) - {*PARTS, "all"})
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}, all")
    return args


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.quick() if args.quick else Sizes()
    overrides = {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "legacy_concurrency": args.legacy_concurrency,
        "protocols": args.protocols,
        "eras": args.eras,
        "streams": args.streams,
        "density_tenants": args.tenants,
        "cold_tenants": args.cold_tenants,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(sizes, name, value)
    if args.tenants is not None:
        sizes.density_warm = min(sizes.density_warm, args.tenants // 2)
        sizes.density_cold_calls = min(sizes.density_cold_calls, args.tenants - sizes.density_warm)
    return sizes


def run_parts(
    ctx: Context, parts: list[str], peers: tuple[str, ...] | None
) -> tuple[dict[str, object], list[str]]:
    suites: dict[str, object] = {}
    failed: list[str] = []
    for part in parts:
        started = time.monotonic()
        try:
            result = http.run(ctx, peers=peers) if part == "http" and peers else PARTS[part](ctx)
        except Exception as exc:  # one broken part must not lose the others' figures
            failed.append(part)
            ctx.log(f"{part}: FAILED: {exc}")
            result = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=6),
            }
        result["measured_at"] = report.now_utc()
        result["seconds"] = round(time.monotonic() - started, 1)
        suites[part] = result
    return suites, failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or (None if args.quick else report.LATEST)
    baseline = report.load(args.baseline)
    baseline_note = f" ({baseline.get('created')}, {args.baseline.name})" if baseline else ""

    if args.report:
        results = report.load(args.out or report.LATEST)
        if results is None:
            print(f"no results at {args.out or report.LATEST}", file=sys.stderr)
            return 1
        regs = targets.regressions(results, baseline) if baseline else None
        print(report.render(results, args.markdown, regs, baseline_note))
        return 0

    parts = (
        list(PARTS) if not args.parts or "all" in args.parts else list(dict.fromkeys(args.parts))
    )
    workdir = Path(tempfile.mkdtemp(prefix="smcp-bench-"))
    settings = dict(BENCH_BOX_SETTINGS)
    if args.no_encrypt:
        settings["SMCP_BOX_STORE_ENCRYPT"] = "false"
    ctx = Context(
        workdir,
        sizes_from(args),
        args.generator,
        settings,
        verbose=not args.quiet,
        sdk_uvicorn=args.sdk_uvicorn,
    )
    machine = report.machine()
    ctx.log(f"bench: parts {', '.join(parts)}; scratch {workdir}")
    try:
        suites, failed = run_parts(ctx, parts, args.peers)
    finally:
        if args.keep_workdir:
            ctx.log(f"bench: scratch kept at {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_end"] = os.getloadavg()[0]
    run = {
        "schema": 1,
        "created": report.now_utc(),
        "quick": args.quick,
        "machine": machine,
        "box_settings": settings,
        "suites": suites,
    }
    previous = report.load(out) if out else None
    results = report.merge(previous if not args.quick else None, run)
    regs = None
    if baseline and not args.quick:
        ran = tuple(f"{part}." for part in parts)
        regs = targets.regressions(results, baseline, only=lambda key: key.startswith(ran))
        results["regressions"] = [r.to_json() for r in regs]
    if out:
        report.write(out, results)
        ctx.log(f"bench: results written to {out}")
    print(report.render(results, args.markdown, regs, baseline_note))
    if args.save_baseline and out:
        # The baseline is the figures themselves, not how they compared with the old one.
        report.write(args.baseline, {k: v for k, v in results.items() if k != "regressions"})
        print(f"\nbaseline saved to {args.baseline}")
    if args.update_docs:
        if report.update_docs(results):
            print(f"\n{report.DOCS} updated")
        else:
            print(f"\n{report.DOCS} has no table markers; not updated", file=sys.stderr)
    if failed:
        print(f"\nparts that failed: {', '.join(failed)} (see the results file)", file=sys.stderr)
        return 2
    if args.fail_on_regression and regs:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
