"""Linear memories and the process's address space: a memory grown to its tenant's limit stays
where it is, and a dropped memory's pages go back to the kernel a few at a time.

Both matter to every other tenant: moving a memory (map a bigger region, copy, unmap the old)
and unmapping a populated one hold the process's mmap lock for milliseconds, and every other
thread that maps memory meanwhile waits (docs/benchmarks.md, "Noisy neighbour").
"""

from __future__ import annotations

import ctypes
import mmap
from pathlib import Path

import pytest
import wasmtime

from smcp_box.config import SandboxSettings
from smcp_box.errors import MemoryLimitExceeded
from smcp_box.sandbox import EngineSettings, Limits, Sandbox, native
from smcp_box.sandbox.engine import DEFAULT_MEMORY_RESERVATION, build_engine, engine_fingerprint
from smcp_box.seams import MIB

from .support import RecordingHost, wasm

#: Grows its memory by the number of 64 KiB pages given, or returns -1.
GROWER = """
(module
  (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
"""
PAGE = 64 * 1024


def grown_base_moved(settings: EngineSettings, limit_bytes: int) -> bool:
    """Grow a memory to ``limit_bytes`` 1 MiB at a time; whether its base address changed."""
    engine = build_engine(settings)
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=limit_bytes, memories=1, instances=1)
    store.set_fuel(10**9)  # the box's engine consumes fuel and checks epochs
    store.set_epoch_deadline(10**9)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, GROWER), [])
    memory = instance.exports(store)["memory"]
    grow = instance.exports(store)["grow"]
    assert isinstance(memory, wasmtime.Memory)
    assert isinstance(grow, wasmtime.Func)
    before = memory.data_ptr(store)
    while memory.data_len(store) < limit_bytes:
        step = min(16, (limit_bytes - memory.data_len(store)) // PAGE)
        assert grow(store, step) != -1
    after = memory.data_ptr(store)
    return bool(before is not None and after is not None) and (
        native.address(before) != native.address(after)
    )


def test_a_memory_grown_to_the_default_limit_stays_in_place() -> None:
    limit = Limits().memory_bytes
    assert not grown_base_moved(EngineSettings.for_sandbox(SandboxSettings()), limit)


def test_a_memory_past_its_reservation_moves() -> None:
    """The contrast that makes the test above mean something: with the reservation that was the
    default before (64 MiB), the same growth moves the memory."""
    limit = Limits().memory_bytes
    assert grown_base_moved(EngineSettings(memory_reservation=64 * MIB), limit)


def test_the_reservation_covers_the_box_memory_limit() -> None:
    assert EngineSettings().memory_reservation == DEFAULT_MEMORY_RESERVATION
    assert Limits().memory_bytes == DEFAULT_MEMORY_RESERVATION
    bigger = EngineSettings.for_sandbox(SandboxSettings(memory_mib=512))
    assert bigger.memory_reservation == 512 * MIB
    # Never below the default: a smaller limit keeps the compiled modules of the default.
    assert EngineSettings.for_sandbox(SandboxSettings(memory_mib=16)) == EngineSettings()


def address_of(region: mmap.mmap) -> int:
    anchor = ctypes.c_char.from_buffer(region)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor  # or the region could not be closed


def resident_pages(start: int, pages: int) -> int:
    """How many of the ``pages`` from ``start`` are resident, from /proc/self/pagemap's present
    bit (readable without privileges; the frame numbers are what needs them)."""
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek((start // mmap.PAGESIZE) * 8)
        entries = pagemap.read(pages * 8)
    return sum(
        1 for i in range(pages) if int.from_bytes(entries[i * 8 : i * 8 + 8], "little") >> 63
    )


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="Linux only")
def test_release_pages_hands_every_page_back() -> None:
    size = 3 * native.RELEASE_STEP + 5 * mmap.PAGESIZE  # several steps and a ragged end
    pages = size // mmap.PAGESIZE
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        for offset in range(0, size, mmap.PAGESIZE):
            region[offset] = 1
        base = address_of(region)
        assert resident_pages(base, pages) == pages
        native.release_pages(base, size)
        assert resident_pages(base, pages) == 0
        # Private anonymous pages read as zeros again.
        assert region[0] == 0
        assert region[size - 1] == 0
    finally:
        region.close()


def test_a_bombed_instance_is_discarded_and_the_next_call_is_served(tmp_path: Path) -> None:
    """The pool's discard path (pages released, then the store dropped) after a memory bomb
    trapped at the limit, and for an instance whose instantiation failed (nothing exported)."""
    limits = Limits(memory_mib=32)
    with Sandbox(tmp_path / "cache") as sandbox:
        module = sandbox.load("bomb", wasm("memory_bomb"), limits)
        host = RecordingHost()
        for _ in range(3):
            with pytest.raises(MemoryLimitExceeded):
                sandbox.call_sync(module, "[1]", host)
            assert sandbox.call_sync(module, "{}", host).reply == "{}"
        stats = sandbox.stats("bomb")
        assert stats.instances_discarded >= 3


def test_every_sandbox_built_from_settings_shares_the_engine_they_imply(tmp_path: Path) -> None:
    # The box, doctor, vet and pinning all build their sandbox with from_settings: one
    # derivation, so one compiled-module cache entry per module.
    settings = SandboxSettings(memory_mib=512, tick_ms=20, cpu_slots=3)
    with Sandbox.from_settings(tmp_path, settings) as sandbox:
        assert sandbox.engine_settings == EngineSettings.for_sandbox(settings)
        assert sandbox.tick_s == 0.02
        assert sandbox.scheduler.slots == 3
    with Sandbox.from_settings(tmp_path, SandboxSettings()) as default:
        assert default.fingerprint != engine_fingerprint(EngineSettings.for_sandbox(settings))
