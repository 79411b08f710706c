"""Where a peer's time goes under load: ``python -m bench.profile [box|sdk|floor]``.

Starts the peer, drives it with the suite's load generator (tools/call of echo), samples it with
py-spy (``pip install py-spy``; it reads the process from outside, so the peer runs unmodified)
and prints a summary: CPU samples by thread, by package of the innermost frame (where the CPU
is spent), by smcp_box module anywhere on the stack (what the box's own code costs, callees
included), and the hottest functions. The raw collapsed stacks are written beside the summary
in bench/results/profiles/ (flamegraph.pl or speedscope read them).
"""

from __future__ import annotations

import argparse
import functools
import linecache
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench import loadgen
from bench.peers import payload
from bench.procs import REPO
from bench.report import RESULTS_DIR
from bench.suites import http
from bench.suites.context import Context, Sizes

PROFILES = RESULTS_DIR / "profiles"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
#: A thread whose innermost Python frame is on one of these source lines is parked (a pool
#: worker in ``queue.get()``, a lock or condition wait), which py-spy's idle detection misses
#: for waits entered from C. Such samples are counted apart, not as CPU. A thread inside a C
#: function that does work (sqlite3, wasmtime) is on a call line such as ``function()``.
_WAITING_LINE = re.compile(r"\.get\(|\bwait\(|\.acquire\(|_wait_for_tstate_lock")


@functools.cache
def _source_line(path: str, line: int) -> str:
    """The text of ``path:line``; py-spy shortens paths, so search sys.path for it."""
    candidates = [Path(path)] + [Path(root) / path for root in sys.path if root]
    for candidate in candidates:
        if candidate.is_file():
            return linecache.getline(str(candidate), line)
    return ""


def _is_waiting(frame: dict[str, str]) -> bool:
    if not frame.get("line"):
        return False
    return bool(_WAITING_LINE.search(_source_line(frame["file"], int(frame["line"]))))


def _short(path: str) -> str:
    """A path as an import would name it: below site-packages, the stdlib or the repo."""
    parts = path.split("/")
    if "site-packages" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("site-packages") :])
    for i, part in enumerate(parts):
        if re.fullmatch(r"python\d+\.\d+", part) and i + 1 < len(parts):
            return "/".join(parts[i + 1 :])
    repo = str(REPO) + "/"
    return path[len(repo) :] if path.startswith(repo) else path


def _package(path: str) -> str:
    parts = _short(path).split("/")
    if parts[0] == "smcp_box":
        return "smcp_box." + parts[1].removesuffix(".py") if len(parts) > 1 else "smcp_box"
    head = parts[0]
    return head if head.startswith("<") else head.removesuffix(".py")


def summarise(raw: str, top: int = 15) -> str:
    by_thread: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_box: Counter[str] = Counter()
    self_func: Counter[str] = Counter()
    total = busy = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        frames = frames[1:] if thread.startswith("thread ") else frames
        total += count
        parsed = [m.groupdict() for f in frames if (m := _FRAME.match(f))]
        if not parsed:
            continue
        leaf = parsed[-1]
        if _is_waiting(leaf):
            waiting += count
            continue
        busy += count
        by_thread[re.sub(r"^thread \(\w+\):\s*", "", thread).strip() or "?"] += count
        self_pkg[_package(leaf["file"])] += count
        self_func[f"{leaf['func']} ({_short(leaf['file'])})"] += count
        # smcp_box.cli is the entry point under every main-thread stack: not informative.
        on_stack = {_package(p["file"]) for p in parsed if "smcp_box" in p["file"]}
        for module in on_stack - {"smcp_box.cli"}:
            incl_box[module] += count
    if not busy:
        return "no samples"

    def block(title: str, counter: Counter[str], limit: int) -> list[str]:
        lines = [title]
        for name, count in counter.most_common(limit):
            lines.append(f"  {count / busy * 100:5.1f}%  {name}")
        return lines

    out = [
        f"{total} samples, {waiting} of them threads parked waiting (left out); "
        f"shares below are of the {busy} busy samples"
    ]
    out += block("by thread:", by_thread, 8)
    out += block("self time by package (innermost frame):", self_pkg, 15)
    out += block("smcp_box modules on the stack (callees included):", incl_box, 15)
    out += block("hottest functions (self):", self_func, top)
    return "\n".join(out)


def profile(
    peer: str,
    seconds: float,
    concurrency: int,
    era: str,
    protocol: str,
    workload: str = "call",
    rate: int = 200,
    gil: bool = False,
) -> str:
    if not shutil.which("py-spy"):
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="smcp-profile-") as tmp, ExitStack() as stack:
        sizes = Sizes(eras=(era,), protocols=(protocol,))
        ctx = Context(Path(tmp), sizes)
        running = http._start_peers(ctx, stack, (peer,))
        peer_run = running[f"sdk-{protocol}" if peer == "sdk" else peer]
        endpoint = peer_run.endpoints.get("any") or peer_run.endpoints[era]
        target = endpoint.target()
        if workload == "initialize":
            # Each request opens a new legacy-era session (what the streams part does 10,000
            # times before it opens the streams).
            headers = payload.call_headers("legacy", None, endpoint.key)
            target = loadgen.Target(endpoint.url, headers, payload.initialize_body())
        result: dict[str, loadgen.LoadResult] = {}

        def load() -> None:
            result["load"] = loadgen.run_load(
                target,
                protocol=protocol,
                concurrency=concurrency,
                duration_s=seconds + 2,
                warmup_s=0.5,
            )

        driver = threading.Thread(target=load)
        driver.start()
        PROFILES.mkdir(parents=True, exist_ok=True)
        name = f"{peer}-{era}-{protocol}-c{concurrency}"
        name += ("-initialize" if workload == "initialize" else "") + ("-gil" if gil else "")
        raw_path = PROFILES / f"{name}.txt"
        subprocess.run(
            [
                "py-spy",
                "record",
                "--pid",
                str(peer_run.server.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--threads",
                "--full-filenames",
                *(["--gil"] if gil else []),
                "-o",
                str(raw_path),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        driver.join()
    load_result = result.get("load")
    head = (
        f"{peer}, {workload}, {era} era, {protocol}, c={concurrency}: "
        f"{load_result.rps:.0f} req/s, p50 {load_result.p50_ms:.2f} ms while sampled"
        if load_result
        else f"{peer}: load failed"
    )
    summary = head + "\n" + summarise(raw_path.read_text())
    raw_path.with_suffix(".summary.txt").write_text(summary + "\n")
    return summary + f"\n\nraw stacks: {raw_path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", nargs="?", default="box", choices=("box", "sdk", "floor"))
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--era", default="modern", choices=("modern", "legacy"))
    parser.add_argument("--protocol", default="http1", choices=("http1", "http2"))
    parser.add_argument(
        "--workload",
        default="call",
        choices=("call", "initialize"),
        help="tools/call of echo, or legacy-era initialize (a new session per request)",
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL (where the interpreter's time goes)",
    )
    parser.add_argument("--summarise", type=Path, help="only summarise a raw py-spy file")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise.read_text()))
        return
    print(
        profile(args.peer, args.seconds, args.concurrency, args.era, args.protocol, args.workload)
    )


if __name__ == "__main__":
    sys.exit(main())
