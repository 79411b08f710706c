"""One load generator interface over wrk (HTTP/1.1), h2load (HTTP/2 h2c) and a Python fallback.

Every peer is driven by the same tool for a given protocol, so ratios compare servers, not
clients:

* HTTP/1.1: ``wrk`` (Debian ``wrk``). h2load also speaks HTTP/1.1, but its parser drops the
  status of responses without a reason phrase, which is what Hypercorn sends, so it would count
  every reply of two of the three peers as failed.
* HTTP/2: ``h2load`` (Debian ``nghttp2-client``) with prior knowledge (h2c), one stream per
  connection, so concurrency N means N connections for both protocols.
* Neither installed: an asyncio ``httpx`` client in this process. It needs more CPU per request
  than the servers it measures, and on two cores it competes with them, so its figures are lower
  bounds; the report names the generator used.

Install the C generators with ``apt-get install wrk nghttp2-client``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """What each request of a run looks like.

    ``body`` is sent as it is, unless ``id_split`` is given: then each request's body is
    ``before + <a request id never used before in this process> + after``, which a session needs
    (JSON-RPC ids must not repeat within a session; a legacy-era server matches replies to
    requests by id, so concurrent requests with one id would wait forever).
    """

    url: str
    headers: dict[str, str]
    body: bytes
    id_split: tuple[bytes, bytes] | None = None
    #: Opens ``n`` sessions and returns each one's request headers: lets a generator that sends
    #: one fixed body (h2load) drive a session, one connection per session.
    sessions: Callable[[int], list[dict[str, str]]] | None = None

    @property
    def unique_ids(self) -> bool:
        return self.id_split is not None


class Unsupported(RuntimeError):
    """The chosen generator cannot produce this load."""


#: Each run (and its warm-up) draws its own block of ids, so no id repeats within a session.
_ID_BLOCKS = itertools.count(1)
ID_BLOCK = 10**9


def next_id_block() -> int:
    return next(_ID_BLOCKS) * ID_BLOCK


@dataclass
class LoadResult:
    tool: str
    protocol: str
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    #: Server CPU (all its threads and children) per request in the measured phase, if probed.
    server_cpu_us_per_request: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def available_tools() -> dict[str, str | None]:
    return {"wrk": shutil.which("wrk"), "h2load": shutil.which("h2load")}


def describe_generator(preferred: str = "auto") -> dict[str, str]:
    """Which tool drives each protocol under ``preferred`` ("auto", "native" or "python")."""
    tools = available_tools()
    use_native = preferred != "python"
    return {
        "http1": "wrk" if use_native and tools["wrk"] else "python-httpx",
        "http2": "h2load" if use_native and tools["h2load"] else "python-httpx",
    }


def run_load(
    target: Target,
    *,
    protocol: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    generator: str = "auto",
    cpu_probe: Callable[[], float] | None = None,
) -> LoadResult:
    """Drive ``target`` with ``concurrency`` connections for ``duration_s`` after a warm-up.

    ``cpu_probe`` (the server's CPU seconds so far) is read around the measured phase only, so
    the result can say how much server CPU one request took.
    """
    meter = _Meter(cpu_probe)
    tool = describe_generator(generator)[protocol]
    if tool == "wrk":
        result = _run_wrk(target, concurrency, duration_s, warmup_s, meter)
    elif tool == "h2load":
        result = _run_h2load(target, concurrency, duration_s, warmup_s, meter)
    else:
        result = asyncio.run(
            _run_python(target, protocol, concurrency, duration_s, warmup_s, meter)
        )
    if meter.used is not None and result.requests:
        result.server_cpu_us_per_request = round(meter.used / result.requests * 1e6, 1)
    return result


class _Meter:
    def __init__(self, probe: Callable[[], float] | None) -> None:
        self.probe = probe
        self.started: float | None = None
        self.used: float | None = None

    def start(self) -> None:
        if self.probe:
            self.started = self.probe()

    def stop(self) -> None:
        if self.probe and self.started is not None:
            self.used = self.probe() - self.started


# --- wrk ----------------------------------------------------------------------------------------

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50":%d,"p99":%d,"mean":%f}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def _lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def _wrk_script(target: Target) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(target.body)}"]
    for name, value in target.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name.encode())}] = {_lua_string(value.encode())}")
    if target.id_split:
        before, after = target.id_split
        lines += [
            "local next_id = 0",
            "init = function(args) next_id = tonumber(args[1]) end",
            "request = function()",
            "  next_id = next_id + 1",
            f"  local body = {_lua_string(before)} .. string.format('%d', next_id) .. "
            f"{_lua_string(after)}",
            "  return wrk.format(nil, nil, nil, body)",
            "end",
        ]
    return "\n".join(lines) + "\n" + _WRK_DONE


def _run_wrk(
    target: Target, concurrency: int, duration_s: float, warmup_s: float, meter: _Meter
) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="smcp-bench-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_wrk_script(target))

        def wrk(seconds: float) -> dict[str, float]:
            # wrk takes whole seconds; a fraction is rounded up so a run is never empty.
            secs = max(1, round(seconds + 0.49))
            out = subprocess.run(
                [
                    "wrk",
                    "-t",
                    "1",
                    "-c",
                    str(concurrency),
                    "-d",
                    f"{secs}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    target.url,
                    "--",
                    str(next_id_block()),
                ],
                capture_output=True,
                text=True,
                timeout=secs + 30,
                check=True,
            ).stdout
            for line in out.splitlines():
                if line.startswith("WRKJSON "):
                    return json.loads(line[len("WRKJSON ") :])
            raise RuntimeError(f"wrk printed no summary:\n{out}")

        if warmup_s > 0:
            wrk(warmup_s)
        meter.start()
        data = wrk(duration_s)
        meter.stop()
    seconds = data["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        protocol="http1",
        concurrency=concurrency,
        duration_s=round(seconds, 3),
        requests=int(data["requests"]),
        errors=int(data["errors"]),
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50"] / 1000,
        p99_ms=data["p99"] / 1000,
        mean_ms=data["mean"] / 1000,
    )


# --- h2load -------------------------------------------------------------------------------------

#: Hypercorn closes a connection after ``keep_alive_max_requests`` (default 1000) requests, and
#: h2load's timed mode (-D) does not reconnect, so a connection would fall silent after 1000
#: requests. The run is made of batches instead (-n, each client at most this many requests on
#: its connection), back to back, as a client reconnecting after GOAWAY would.
H2_REQUESTS_PER_CONNECTION = 1000
_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s),")


def _h2load_runs(
    url: str, body: Path, runs: list[tuple[Path, dict[str, str], int]], per_client: int
) -> tuple[list[float], int, float]:
    """h2load processes side by side, one per (log, headers, connections); their latencies
    (ms) and errors together, and the longest elapsed seconds among them."""
    started = []
    for log, headers, connections in runs:
        log.unlink(missing_ok=True)
        cmd = ["h2load", "-c", str(connections), "-m", "1", "-t", "1"]
        cmd += ["-n", str(per_client * connections), "-d", str(body), "--log-file", str(log)]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
        started.append(
            (log, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        )
    latencies: list[float] = []
    errors = 0
    elapsed = 0.0
    for log, process in started:
        out, _ = process.communicate(timeout=120)
        lat, err, took = _h2load_result(url, out, log)
        latencies += lat
        errors += err
        elapsed = max(elapsed, took)
    return latencies, errors, elapsed


def _h2load_result(url: str, out: str, log: Path) -> tuple[list[float], int, float]:
    if "Application protocol: h2c" not in out:
        raise RuntimeError(f"h2load did not speak h2c to {url}:\n{out}")
    latencies: list[float] = []
    errors = 0
    for line in log.read_text().splitlines() if log.exists() else []:
        _start, status, micros = line.split("\t")[:3]
        latencies.append(int(micros) / 1000)
        if not 200 <= int(status) < 300:
            errors += 1
    counts = {}
    for line in out.splitlines():
        if line.startswith("requests:"):
            # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            for part in line[len("requests:") :].split(","):
                number, label = part.split()
                counts[label] = int(number)
    errors = max(errors, counts.get("failed", 0) + counts.get("timeout", 0))
    match = _FINISHED.search(out)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    elapsed = float(match[1]) * scale[match[2]] if match else 0.0
    return latencies, errors, elapsed


def _run_h2load(
    target: Target, concurrency: int, duration_s: float, warmup_s: float, meter: _Meter
) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="smcp-bench-") as tmp:
        body = Path(tmp) / "body"
        if target.id_split is None:
            body.write_bytes(target.body)
            runs = [(Path(tmp) / "requests.log", target.headers, concurrency)]
        elif target.sessions is not None:
            # h2load sends one fixed body, so a session's requests cannot each have their own
            # id: each connection gets a session of its own instead, and its h2load process
            # (one connection) sends its requests one at a time. The id repeats within the
            # session (which a client is asked not to do), but is never in flight twice; every
            # peer answers each request (the run counts any other answer as an error).
            body.write_bytes(target.id_split[0] + b"1" + target.id_split[1])
            runs = [
                (Path(tmp) / f"requests-{i}.log", headers, 1)
                for i, headers in enumerate(target.sessions(concurrency))
            ]
        else:
            raise Unsupported(
                "h2load sends one fixed body, so it cannot give each request of a "
                "session its own JSON-RPC id"
            )
        rate = 0.0  # requests per second per connection, learnt from the batches so far

        def phase(seconds: float) -> tuple[list[float], int, float]:
            nonlocal rate
            latencies: list[float] = []
            errors = 0
            elapsed = 0.0
            while elapsed < seconds:
                remaining = seconds - elapsed
                wanted = rate * remaining if rate else 50
                per_client = int(min(H2_REQUESTS_PER_CONNECTION, max(20, wanted)))
                lat, err, took = _h2load_runs(target.url, body, runs, per_client)
                latencies += lat
                errors += err
                elapsed += took
                if took > 0:
                    rate = per_client / took
                if not lat:
                    break
            return latencies, errors, elapsed

        if warmup_s > 0:
            phase(warmup_s)
        meter.start()
        latencies, errors, elapsed = phase(duration_s)
        meter.stop()
    return _summarise("h2load", "http2", concurrency, elapsed, latencies, errors)


def _summarise(
    tool: str,
    protocol: str,
    concurrency: int,
    seconds: float,
    latencies_ms: list[float],
    errors: int,
) -> LoadResult:
    ordered = sorted(latencies_ms)
    return LoadResult(
        tool=tool,
        protocol=protocol,
        concurrency=concurrency,
        duration_s=round(seconds, 3),
        requests=len(ordered),
        errors=errors,
        rps=len(ordered) / seconds if seconds else 0.0,
        p50_ms=percentile(ordered, 50),
        p99_ms=percentile(ordered, 99),
        mean_ms=statistics.fmean(ordered) if ordered else 0.0,
    )


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- Python fallback ----------------------------------------------------------------------------


async def _run_python(
    target: Target,
    protocol: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    meter: _Meter,
) -> LoadResult:
    import httpx

    http2 = protocol == "http2"
    ids = itertools.count(next_id_block())
    latencies: list[float] = []
    errors = 0
    measuring = False
    start = time.perf_counter()
    stop_at = start + warmup_s + duration_s

    async def worker() -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        # http1=False with http2=True is httpx's prior-knowledge h2c.
        async with httpx.AsyncClient(
            http1=not http2, http2=http2, limits=limits, timeout=10
        ) as client:
            while (now := time.perf_counter()) < stop_at:
                body = target.body
                if target.id_split:
                    body = b"%s%d%s" % (target.id_split[0], next(ids), target.id_split[1])
                try:
                    reply = await client.post(target.url, content=body, headers=target.headers)
                    ok = reply.status_code < 300
                except httpx.HTTPError:
                    ok = False
                if measuring:
                    latencies.append((time.perf_counter() - now) * 1000)
                    errors += not ok

    async def switch() -> None:
        nonlocal measuring
        await asyncio.sleep(warmup_s)
        meter.start()
        measuring = True

    await asyncio.gather(switch(), *(worker() for _ in range(concurrency)))
    meter.stop()
    return _summarise("python-httpx", protocol, concurrency, duration_s, latencies, errors)


def main() -> None:  # a manual probe: python -m bench.loadgen URL
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--protocol", default="http1", choices=("http1", "http2"))
    parser.add_argument("-c", type=int, default=1)
    parser.add_argument("-d", type=float, default=2.0)
    parser.add_argument("--generator", default="auto", choices=("auto", "native", "python"))
    args = parser.parse_args()
    from bench.peers.payload import call_body, call_headers

    target = Target(args.url, call_headers("modern"), call_body("modern"))
    result = run_load(
        target,
        protocol=args.protocol,
        concurrency=args.c,
        duration_s=args.d,
        warmup_s=0.5,
        generator=args.generator,
    )
    print(json.dumps(result.to_json(), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
