"""The box's own WASI preview 1 for stdio tenants: stdin, stdout and stderr, clocks, randomness.

wasmtime's WASI cannot be used as it is: a guest blocked in its ``fd_read`` of a pipe cannot be
interrupted by an epoch deadline, and Go's wasip1 runtime, seeing a blocking stdin, freezes all
its goroutines in that read, so replies come out one message late. These functions give a guest
exactly what one exchange needs and decide themselves what "no more input" means:

* stdin holds the messages of the exchange; it never reports end of file. When the guest has
  read everything and waits for more (a blocking ``fd_read``, or ``poll_oneoff`` on stdin with no
  timer to wait for), it is idle: it has done all it will ever do with this input. If it has not
  answered by then, it never will, and the exchange fails at once with a clear error instead of
  hanging until the deadline.
* stdin reports ``FDFLAG_NONBLOCK``: a guest that asks (Go does, for ``os.Stdin``) then reads it
  through its poller, gets ``EAGAIN`` when it is empty and keeps running its other goroutines.
  A guest that never asks (C, Rust, single-threaded) gets the blocking behaviour it expects.
* stdout is cut into lines as the guest writes them; the exchange (:mod:`.stdio`) acts on each
  line at once, so a progress notification reaches the client while the tool still runs.
* No preopened directories, no sockets, an empty environment, fixed arguments: every other
  function of the preview 1 API is defined and answers ``ENOSYS`` or ``EBADF``.

Every function runs on the thread running the guest and finds its call's state bound there
(:func:`.host.bind`). Like the ``smcp`` imports, it never lets a Python exception escape into
wasmtime: it records the error on the state and returns a trap.
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

import wasmtime

from smcp_box.errors import BoxError, ModuleTrapped

from . import native
from .host import CallState, current_state, leave_slot, rejoin_slot

WASI_MODULE = "wasi_snapshot_preview1"

# errno values of wasi_snapshot_preview1.
SUCCESS = 0
EAGAIN = 6
EBADF = 8
EFAULT = 21
EINVAL = 28
ENOSYS = 52

FDFLAG_NONBLOCK = 4
FILETYPE_CHARACTER_DEVICE = 2
ALL_RIGHTS = (1 << 64) - 1
EVENT_CLOCK, EVENT_FD_READ, EVENT_FD_WRITE = 0, 1, 2
SUBSCRIPTION_SIZE, EVENT_SIZE = 48, 32
CLOCK_REALTIME = 0
SUBSCRIPTION_CLOCK_ABSTIME = 1
#: Largest ``random_get`` request; Go asks for a few bytes at a time.
MAX_RANDOM_BYTES = 1 << 20
#: Longest single sleep between two looks at the call's deadline and cancel flags.
SLEEP_SLICE_S = 0.01

_SIGS = {"i": "i32", "I": "i64"}

#: Every preview 1 function but the sockets: name -> parameter types (i = i32, I = i64). All
#: return an i32 errno, except proc_exit, which returns nothing.
SIGNATURES: dict[str, str] = {
    "args_get": "ii",
    "args_sizes_get": "ii",
    "environ_get": "ii",
    "environ_sizes_get": "ii",
    "clock_res_get": "ii",
    "clock_time_get": "iIi",
    "fd_advise": "iIIi",
    "fd_allocate": "iII",
    "fd_close": "i",
    "fd_datasync": "i",
    "fd_fdstat_get": "ii",
    "fd_fdstat_set_flags": "ii",
    "fd_fdstat_set_rights": "iII",
    "fd_filestat_get": "ii",
    "fd_filestat_set_size": "iI",
    "fd_filestat_set_times": "iIIi",
    "fd_pread": "iiiIi",
    "fd_prestat_get": "ii",
    "fd_prestat_dir_name": "iii",
    "fd_pwrite": "iiiIi",
    "fd_read": "iiii",
    "fd_readdir": "iiiIi",
    "fd_renumber": "ii",
    "fd_seek": "iIii",
    "fd_sync": "i",
    "fd_tell": "ii",
    "fd_write": "iiii",
    "path_create_directory": "iii",
    "path_filestat_get": "iiiii",
    "path_filestat_set_times": "iiiiIIi",
    "path_link": "iiiiiii",
    "path_open": "iiiiiIIii",
    "path_readlink": "iiiiii",
    "path_remove_directory": "iii",
    "path_rename": "iiiiii",
    "path_symlink": "iiiii",
    "path_unlink_file": "iii",
    "poll_oneoff": "iiii",
    "proc_exit": "i",
    "proc_raise": "i",
    "sched_yield": "",
    "random_get": "ii",
}
#: The network half of preview 1. A module importing any of them is refused at load.
SOCKET_FUNCTIONS = frozenset({"sock_accept", "sock_recv", "sock_send", "sock_shutdown"})


def signature(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    params = tuple(_SIGS[c] for c in SIGNATURES[name])
    return params, (() if name == "proc_exit" else ("i32",))


class GuestStdio(Protocol):
    """What the WASI functions need of the exchange in progress (:class:`.stdio.Exchange`)."""

    #: Arguments the guest sees: its tenant's name only.
    argv: list[bytes]

    def read_stdin(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the exchange's input; b"" when it is all read."""
        ...

    def stdin_pending(self) -> int: ...

    def idle(self) -> BoxError:
        """The error to end the exchange with: the guest waits for input it will never get."""
        ...

    def write(self, fd: int, data: bytes) -> None:
        """Bytes the guest wrote to stdout (1) or stderr (2). May raise to end the exchange."""
        ...

    def exited(self, code: int) -> BoxError:
        """The guest called proc_exit: the error (or end marker) to stop it with."""
        ...

    def now_ns(self, clock_id: int) -> int: ...


class WasiState(CallState):
    """A call's state with the exchange its WASI functions serve."""

    __slots__ = ("nonblocking_seen", "stdio")

    def __init__(self, *args: Any, stdio: GuestStdio, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stdio = stdio
        #: The guest read stdin's flags and so was told that reads may return EAGAIN.
        self.nonblocking_seen = False


class _Memory:
    """Bounds-checked access to the guest's linear memory during one WASI call."""

    __slots__ = ("base", "ctx", "size")

    def __init__(self, state: CallState, ctx: int) -> None:
        self.ctx = ctx
        self.base = int(native.memory_data(ctx, state.mem_ref) or 0)
        self.size = int(native.memory_data_size(ctx, state.mem_ref))

    def check(self, ptr: int, length: int) -> int:
        ptr &= 0xFFFF_FFFF
        if length < 0 or ptr + length > self.size:
            raise _Fault()
        return self.base + ptr

    def read(self, ptr: int, length: int) -> bytes:
        return ctypes.string_at(self.check(ptr, length), length) if length else b""

    def write(self, ptr: int, data: bytes) -> None:
        if data:
            ctypes.memmove(self.check(ptr, len(data)), data, len(data))

    def u32(self, ptr: int) -> int:
        value: int = struct.unpack("<I", self.read(ptr, 4))[0]
        return value

    def put_u32(self, ptr: int, value: int) -> None:
        self.write(ptr, struct.pack("<I", value & 0xFFFF_FFFF))

    def put_u64(self, ptr: int, value: int) -> None:
        self.write(ptr, struct.pack("<Q", value & 0xFFFF_FFFF_FFFF_FFFF))

    def iovecs(self, ptr: int, count: int) -> list[tuple[int, int]]:
        raw = self.read(ptr, 8 * (count & 0xFFFF_FFFF))
        return [struct.unpack_from("<II", raw, 8 * i) for i in range(len(raw) // 8)]


class _Fault(Exception):
    """A pointer outside the guest's memory: the function answers EFAULT."""


# --- the functions ------------------------------------------------------------------------------
# Each takes (state, guest memory, raw argument/result slots) and returns an errno.

Impl = Callable[[WasiState, _Memory, Any], int]


def _put_strings(mem: _Memory, strings: list[bytes], ptrs: int, buf: int) -> int:
    for item in strings:
        mem.put_u32(ptrs, buf)
        mem.write(buf, item + b"\0")
        ptrs += 4
        buf += len(item) + 1
    return SUCCESS


def _args_sizes_get(state: WasiState, mem: _Memory, a: Any) -> int:
    argv = state.stdio.argv
    mem.put_u32(a[0].i32, len(argv))
    mem.put_u32(a[1].i32, sum(len(item) + 1 for item in argv))
    return SUCCESS


def _args_get(state: WasiState, mem: _Memory, a: Any) -> int:
    return _put_strings(mem, state.stdio.argv, a[0].i32, a[1].i32)


def _environ_sizes_get(state: WasiState, mem: _Memory, a: Any) -> int:
    mem.put_u32(a[0].i32, 0)
    mem.put_u32(a[1].i32, 0)
    return SUCCESS


def _environ_get(state: WasiState, mem: _Memory, a: Any) -> int:
    return SUCCESS


def _clock_res_get(state: WasiState, mem: _Memory, a: Any) -> int:
    mem.put_u64(a[1].i32, 1_000)
    return SUCCESS


def _clock_time_get(state: WasiState, mem: _Memory, a: Any) -> int:
    mem.put_u64(a[2].i32, state.stdio.now_ns(a[0].i32))
    return SUCCESS


def _fd_fdstat_get(state: WasiState, mem: _Memory, a: Any) -> int:
    fd = a[0].i32
    if fd not in (0, 1, 2):
        return EBADF
    flags = FDFLAG_NONBLOCK if fd == 0 else 0
    if fd == 0:
        state.nonblocking_seen = True
    mem.write(a[1].i32, struct.pack("<BxHxxxxQQ", FILETYPE_CHARACTER_DEVICE, flags, ALL_RIGHTS, 0))
    return SUCCESS


def _fd_fdstat_set_flags(state: WasiState, mem: _Memory, a: Any) -> int:
    return SUCCESS if a[0].i32 in (0, 1, 2) else EBADF


def _fd_close(state: WasiState, mem: _Memory, a: Any) -> int:
    return SUCCESS if a[0].i32 in (0, 1, 2) else EBADF


def _fd_read(state: WasiState, mem: _Memory, a: Any) -> int:
    if a[0].i32 != 0:
        return EBADF
    total = 0
    for ptr, length in mem.iovecs(a[1].i32, a[2].i32):
        data = state.stdio.read_stdin(length)
        mem.write(ptr, data)
        total += len(data)
        if len(data) < length:
            break
    if total == 0 and sum(length for _, length in mem.iovecs(a[1].i32, a[2].i32)) > 0:
        if state.nonblocking_seen:
            return EAGAIN
        raise state.stdio.idle()
    mem.put_u32(a[3].i32, total)
    return SUCCESS


def _fd_write(state: WasiState, mem: _Memory, a: Any) -> int:
    fd = a[0].i32
    if fd not in (1, 2):
        return EBADF
    chunks = [mem.read(ptr, length) for ptr, length in mem.iovecs(a[1].i32, a[2].i32)]
    data = b"".join(chunks)
    mem.put_u32(a[3].i32, len(data))
    state.stdio.write(fd, data)
    return SUCCESS


def _poll_oneoff(state: WasiState, mem: _Memory, a: Any) -> int:
    count = a[2].i32 & 0xFFFF_FFFF
    if count == 0:
        return EINVAL
    raw = mem.read(a[0].i32, SUBSCRIPTION_SIZE * count)
    ready: list[bytes] = []
    waits_on_stdin = False
    wake_at: tuple[float, int] | None = None  # (monotonic time, userdata) of the first timer
    for i in range(count):
        userdata, tag = struct.unpack_from("<QB", raw, SUBSCRIPTION_SIZE * i)
        if tag == EVENT_CLOCK:
            clock_id, timeout, _precision, flags = struct.unpack_from(
                "<IxxxxQQH", raw, SUBSCRIPTION_SIZE * i + 16
            )
            delay_ns = timeout
            if flags & SUBSCRIPTION_CLOCK_ABSTIME:
                delay_ns = timeout - state.stdio.now_ns(clock_id)
            when = time.monotonic() + max(delay_ns, 0) / 1e9
            if wake_at is None or when < wake_at[0]:
                wake_at = (when, userdata)
            continue
        (fd,) = struct.unpack_from("<I", raw, SUBSCRIPTION_SIZE * i + 16)
        if tag == EVENT_FD_READ and fd == 0:
            pending = state.stdio.stdin_pending()
            if pending:
                ready.append(_event(userdata, SUCCESS, tag, pending))
            else:
                waits_on_stdin = True
        elif tag == EVENT_FD_WRITE and fd in (1, 2):
            ready.append(_event(userdata, SUCCESS, tag, 65536))
        else:
            ready.append(_event(userdata, EBADF, tag, 0))
    if not ready:
        if wake_at is None:
            # Nothing but stdin can wake the guest, and stdin has nothing more to give.
            raise (
                state.stdio.idle()
                if waits_on_stdin
                else ModuleTrapped(
                    f"tenant {state.tenant!r}: the module waits on nothing (poll_oneoff)",
                    data={"tenant": state.tenant},
                )
            )
        _sleep_until(state, wake_at[0])
        ready.append(_event(wake_at[1], SUCCESS, EVENT_CLOCK, 0))
    for i, event in enumerate(ready):
        mem.write(a[1].i32 + EVENT_SIZE * i, event)
    mem.put_u32(a[3].i32, len(ready))
    return SUCCESS


def _event(userdata: int, errno: int, kind: int, nbytes: int) -> bytes:
    return struct.pack("<QHBxxxxxQHxxxxxx", userdata, errno, kind, nbytes, 0)


def _sleep_until(state: WasiState, when: float) -> None:
    """A guest timer: wait for it in the host, looking at the call's deadline and cancel flags
    (which the epoch ticker cannot do while the guest is out of wasm). A sleeping guest holds
    no run slot (see :mod:`.fair`): it uses no processor."""
    slot = leave_slot()
    try:
        while True:
            interruption = state.interruption()
            if interruption is not None:
                raise interruption
            left = when - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, SLEEP_SLICE_S, max(state.deadline - time.monotonic(), 0.0)))
    finally:
        rejoin_slot(state, slot)


def _random_get(state: WasiState, mem: _Memory, a: Any) -> int:
    length = a[1].i32 & 0xFFFF_FFFF
    if length > MAX_RANDOM_BYTES:
        return EINVAL
    mem.write(a[0].i32, os.urandom(length))
    return SUCCESS


def _sched_yield(state: WasiState, mem: _Memory, a: Any) -> int:
    return SUCCESS


def _proc_exit(state: WasiState, mem: _Memory, a: Any) -> int:
    raise state.stdio.exited(a[0].i32)


def _fd_prestat_get(state: WasiState, mem: _Memory, a: Any) -> int:
    return EBADF  # no preopened directories: this ends a guest's scan for them


IMPLS: dict[str, Impl] = {
    "args_get": _args_get,
    "args_sizes_get": _args_sizes_get,
    "environ_get": _environ_get,
    "environ_sizes_get": _environ_sizes_get,
    "clock_res_get": _clock_res_get,
    "clock_time_get": _clock_time_get,
    "fd_close": _fd_close,
    "fd_fdstat_get": _fd_fdstat_get,
    "fd_fdstat_set_flags": _fd_fdstat_set_flags,
    "fd_prestat_get": _fd_prestat_get,
    "fd_read": _fd_read,
    "fd_write": _fd_write,
    "poll_oneoff": _poll_oneoff,
    "proc_exit": _proc_exit,
    "random_get": _random_get,
    "sched_yield": _sched_yield,
}


def _refuse(name: str) -> Impl:
    # Files, directories and signals do not exist for a stdio tenant.
    errno = EBADF if name.startswith(("fd_", "path_")) else ENOSYS

    def refuse(state: WasiState, mem: _Memory, a: Any) -> int:
        return errno

    return refuse


def _callback(name: str, impl: Impl) -> Any:
    def entry(env: int | None, caller: int, args: Any, nargs: int) -> int:
        state = current_state()
        if not isinstance(state, WasiState):  # pragma: no cover - stdio entries bind one
            return native.new_trap(f"{name}: called with no stdio exchange in progress")
        try:
            if state.host is None:
                raise ModuleTrapped(
                    f"tenant {state.tenant!r}: {name}: WASI cannot be used by a start function",
                    data={"tenant": state.tenant},
                )
            try:
                args[0].i32 = impl(state, _Memory(state, native.caller_context(caller)), args)
            except _Fault:
                args[0].i32 = EFAULT
            return 0
        except BaseException as exc:  # nothing may escape into wasmtime
            if state.pending is None:
                state.pending = exc
            return native.new_trap(f"{name}: {exc}")

    return native.HostCallback(entry)


#: The native callbacks must outlive every Linker that uses them: keep them for the process.
_CALLBACKS: dict[str, Any] = {
    name: _callback(name, IMPLS.get(name) or _refuse(name)) for name in SIGNATURES
}


def define_wasi(linker: wasmtime.Linker) -> None:
    """Define every preview 1 function but the sockets in ``linker``."""
    for name in SIGNATURES:
        params, results = signature(name)
        ty = wasmtime.FuncType(
            [wasmtime.ValType.i32() if p == "i32" else wasmtime.ValType.i64() for p in params],
            [wasmtime.ValType.i32() for _ in results],
        )
        native.define_host_func(linker, WASI_MODULE, name, ty, _CALLBACKS[name])


def realtime_ns(clock_ms: int) -> int:
    return clock_ms * 1_000_000


def clock_ns(clock_id: int, realtime_ms: Callable[[], int]) -> int:
    """The guest's clocks: the realtime clock is the box's (tests inject it), the others are
    this process's monotonic clock."""
    if clock_id == CLOCK_REALTIME:
        return realtime_ns(realtime_ms())
    return time.monotonic_ns()
