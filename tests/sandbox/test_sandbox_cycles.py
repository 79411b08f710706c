"""A failed call leaves nothing for the cyclic garbage collector.

A tenant whose calls fail in a loop (fuel, memory, traps: what a hostile module does) once left
about 60 objects per failed call in reference cycles: the exception's traceback held the frame
of ``Sandbox.call``, whose job held the exception, and with them the worker's frames and the
discarded instance; and every ``ctypes.cast`` of a pointer tied the pointer to itself. The
collector then ran more often, each time pausing the event loop that serves every tenant.
"""

from __future__ import annotations

import ctypes

import pytest

from smcp_box.errors import BoxError
from smcp_box.sandbox import Limits, Sandbox, native
from tests.support.cycles import garbage_left

from .support import RecordingHost, wasm

CALLS = 20

FAILING = {
    "fuel": ("infinite_loop", Limits(fuel=2_000_000)),
    "memory": ("memory_bomb", Limits(memory_mib=16)),
    "trap": ("unreachable", Limits()),
}


@pytest.mark.parametrize("kind", sorted(FAILING))
async def test_failed_calls_leave_no_cycles(sandbox: Sandbox, kind: str) -> None:
    fixture, limits = FAILING[kind]
    module = sandbox.load(kind, wasm(fixture), limits)
    for _ in range(2):  # warm: the pool, the compiled module, one-off types
        with pytest.raises(BoxError):
            await sandbox.call(module, "[]", RecordingHost())
    with garbage_left() as garbage:
        for _ in range(CALLS):
            with pytest.raises(BoxError):
                await sandbox.call(module, "[]", RecordingHost())
    # Not one object per call: the cycles fixed here left about 60 each.
    assert sum(garbage.values()) < CALLS, garbage.most_common(12)
    assert sandbox.stats(kind).instances_discarded == CALLS + 2


def test_address_reads_a_pointer_without_tying_it_to_itself() -> None:
    target = ctypes.c_int(7)
    pointer = ctypes.pointer(target)
    assert native.address(pointer) == ctypes.addressof(target)
    assert native.address(native.TrapPtr()) == 0
    with garbage_left() as garbage:
        for _ in range(10):
            native.address(ctypes.pointer(ctypes.c_int(1)))
    assert not garbage
