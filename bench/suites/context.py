"""What every part of a run shares: scratch space, sizes, the echo module, progress output."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.peers.box import BoxServer
from bench.tenants import build


@dataclass
class Sizes:
    """Counts and durations of one run. ``quick()`` is the smoke-test size."""

    duration_s: float = 2.0
    warmup_s: float = 1.0
    #: Passes over the whole HTTP plan; each row reports its median pass.
    rounds: int = 1
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    legacy_concurrency: tuple[int, ...] = (1, 8, 32, 64)
    protocols: tuple[str, ...] = ("http1", "http2")
    eras: tuple[str, ...] = ("modern", "legacy")
    cold_tenants: int = 10
    warm_calls: int = 20
    density_tenants: int = 1000
    density_warm: int = 100
    density_cold_calls: int = 200
    streams: int = 10_000
    peer_streams: int = 2_000
    stream_hold_s: float = 3.0
    #: Arguments for bench/store_bench.py (its defaults when empty).
    store_args: tuple[str, ...] = ()
    #: Seconds of each noisy-neighbour phase (B alone, B under A's flood).
    noisy_duration_s: float = 10.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            duration_s=0.5,
            warmup_s=0.2,
            concurrency=(1, 8),
            legacy_concurrency=(1,),
            cold_tenants=2,
            warm_calls=5,
            density_tenants=12,
            density_warm=4,
            density_cold_calls=4,
            streams=20,
            stream_hold_s=0.3,
            store_args=("--events", "200", "--rounds", "1"),
            noisy_duration_s=1.5,
        )


#: What every bench box runs with: no per-tenant request quota, whose default (200/s per tenant)
#: would turn a throughput measurement into a count of 429s.
BENCH_BOX_SETTINGS: dict[str, str] = {"SMCP_BOX_QUOTAS_REQUESTS_PER_S": "0"}


@dataclass
class Context:
    workdir: Path
    sizes: Sizes = field(default_factory=Sizes)
    generator: str = "auto"
    #: SMCP_BOX_* settings given to every box the run starts (e.g. store encryption off).
    box_settings: dict[str, str] = field(default_factory=lambda: dict(BENCH_BOX_SETTINGS))
    verbose: bool = True
    #: How the SDK peer's uvicorn is installed (bench/peers/sdk_server.py): "plain" or "standard".
    sdk_uvicorn: str = "plain"
    _echo: bytes | None = None
    _sdk_process: dict[str, float] | None = None
    _started: float = field(default_factory=time.monotonic)

    def log(self, message: str) -> None:
        if self.verbose:
            elapsed = time.monotonic() - self._started
            print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    @property
    def echo_wasm(self) -> bytes:
        if self._echo is None:
            self._echo = build.build_echo()
        return self._echo

    def sdk_process(self) -> dict[str, float]:
        """The SDK peer's process start and RSS (measured once per run, shared by parts)."""
        if self._sdk_process is None:
            from bench.suites import sdk_process

            self._sdk_process = sdk_process.measure(self)
        return self._sdk_process

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def box(self, name: str, tenants_dir: Path, **settings: str) -> BoxServer:
        """A box (not yet started) with its own state and cache under ``workdir/name``."""
        return BoxServer(
            self.scratch(name), tenants_dir, {**self.box_settings, **settings}, name=name
        )
