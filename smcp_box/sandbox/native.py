"""Direct ctypes access to the wasmtime C API, for the hot path of a call.

wasmtime-py's ``Func.__call__`` checks and converts every argument in Python (~15-20 µs per
call); ``wasmtime_func_call_unchecked`` takes raw values (~1-2 µs). Its one precondition, that
the arguments match the function's type, holds because :mod:`.abi` checked the export types
when the module was loaded.

The prototypes here are our own function objects on a second handle of the same shared library
(``dlopen`` returns the already-loaded library), so that their ``restype``/``argtypes`` can take
plain integers for pointers without changing the ones wasmtime-py itself uses.

Host functions are registered with ``wasmtime_linker_define_func_unchecked`` and our own
callback type, not through ``Linker.define_func``: wasmtime-py's trampoline stores a Python
exception raised by a host function in one process-wide variable and re-raises it from whichever
thread next sees a trap, which mixes up concurrent calls. Our callbacks never raise; they keep
the error on their own call's state and return a trap.

All ctypes calls into the library release the GIL (it is a ``CDLL``), which is what lets calls
of different tenants run in parallel in worker threads.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Final

import wasmtime
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi

_lib = ctypes.CDLL(str(ffi.filename))
#: The C library, for ``madvise`` (Linux only; elsewhere pages are left to the unmap).
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_MADV_DONTNEED: Final = 4
#: Bytes handed back per ``madvise`` when a linear memory is released (see release_pages).
RELEASE_STEP: Final = 2 << 20

ValRaw = bindings.wasmtime_val_raw
FuncRef = bindings.wasmtime_func
MemoryRef = bindings.wasmtime_memory
InstanceRef = bindings.wasmtime_instance
ExternRef = bindings.wasmtime_extern
TrapPtr = ctypes.POINTER(bindings.wasm_trap_t)
ErrorPtr = ctypes.POINTER(bindings.wasmtime_error_t)

EXTERN_FUNC = ffi.WASMTIME_EXTERN_FUNC.value
EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value

#: (env, caller, args_and_results, len) -> trap pointer or 0. Pointers arrive as ints.
HostCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ValRaw), ctypes.c_size_t
)
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
#: (context, env, *epoch_deadline_delta, *update_kind) -> error pointer or 0: what wasmtime calls
#: on the thread running wasm when that store's epoch deadline is reached.
EpochCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
#: ``*update_kind``: keep running with the deadline moved ``*epoch_deadline_delta`` ticks on.
UPDATE_DEADLINE_CONTINUE = 0


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    func = getattr(_lib, name)
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


_vp = ctypes.c_void_p
func_call_unchecked = _proto(
    "wasmtime_func_call_unchecked",
    _vp,
    _vp,
    ctypes.POINTER(FuncRef),
    ctypes.POINTER(ValRaw),
    ctypes.c_size_t,
    ctypes.POINTER(TrapPtr),
)
memory_data = _proto("wasmtime_memory_data", _vp, _vp, ctypes.POINTER(MemoryRef))
memory_data_size = _proto(
    "wasmtime_memory_data_size", ctypes.c_size_t, _vp, ctypes.POINTER(MemoryRef)
)
set_fuel = _proto("wasmtime_context_set_fuel", _vp, _vp, ctypes.c_uint64)
get_fuel = _proto("wasmtime_context_get_fuel", _vp, _vp, ctypes.POINTER(ctypes.c_uint64))
set_epoch_deadline = _proto("wasmtime_context_set_epoch_deadline", None, _vp, ctypes.c_uint64)
caller_context = _proto("wasmtime_caller_context", _vp, _vp)
error_new = _proto("wasmtime_error_new", _vp, ctypes.c_char_p)
_store_epoch_deadline_callback = _proto(
    "wasmtime_store_epoch_deadline_callback",
    None,
    _vp,
    EpochCallback,
    _vp,
    ctypes.CFUNCTYPE(None, ctypes.c_void_p),
)
trap_new = _proto("wasmtime_trap_new", _vp, ctypes.c_char_p, ctypes.c_size_t)
instance_pre_instantiate = _proto(
    "wasmtime_instance_pre_instantiate",
    _vp,
    _vp,
    _vp,
    ctypes.POINTER(InstanceRef),
    ctypes.POINTER(TrapPtr),
)
instance_export_get = _proto(
    "wasmtime_instance_export_get",
    ctypes.c_bool,
    _vp,
    ctypes.POINTER(InstanceRef),
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.POINTER(ExternRef),
)
_define_func_unchecked = _proto(
    "wasmtime_linker_define_func_unchecked",
    _vp,
    _vp,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_char_p,
    ctypes.c_size_t,
    _vp,
    HostCallback,
    _vp,
    ctypes.CFUNCTYPE(None, ctypes.c_void_p),
)


def address(pointer: Any) -> int:
    """The integer address a ctypes pointer object holds (0 for NULL).

    Read from the pointer object's own buffer, not with ``ctypes.cast``: a cast stores the
    source object in its own ``_objects`` (a reference cycle per pointer cast), which left every
    instance's store context for the cyclic collector."""
    return ctypes.c_void_p.from_address(ctypes.addressof(pointer)).value or 0


def store_context(store: wasmtime.Store) -> int:
    return address(store._context())


def take_error(error: int) -> str:
    """The message of an owned ``wasmtime_error_t*``, which this frees."""
    return str(wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ErrorPtr)))


def take_trap(trap: Any) -> wasmtime.Trap:
    """Wrap an owned ``wasm_trap_t*`` (freed when the wrapper is collected).

    The wrapper gets a copy of the pointer (``ctypes.cast`` would tie the two in a cycle; see
    :func:`address`)."""
    return wasmtime.Trap._from_ptr(TrapPtr.from_buffer_copy(trap))


def new_trap(message: str) -> int:
    data = message.encode("utf-8", "replace")
    return int(trap_new(data, len(data)) or 0)


def define_host_func(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    callback: Any,
) -> None:
    """Define ``module.name`` in ``linker``. The caller keeps ``callback`` alive as long."""
    module_b, name_b = module.encode(), name.encode()
    error = _define_func_unchecked(
        address(linker.ptr()),
        module_b,
        len(module_b),
        name_b,
        len(name_b),
        address(ty.ptr()),
        callback,
        None,
        _NO_FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError(take_error(error))


def set_epoch_callback(store: wasmtime.Store, callback: Any) -> None:
    """Have wasmtime call ``callback`` instead of trapping when ``store``'s epoch deadline is
    reached. The caller keeps ``callback`` alive as long as the store."""
    _store_epoch_deadline_callback(address(store.ptr()), callback, None, _NO_FINALIZER)


def new_error(message: str) -> int:
    """An owned ``wasmtime_error_t*``: returned from a callback, it fails the wasm call."""
    return int(error_new(message.encode("utf-8", "replace")) or 0)


if _libc is not None:
    _madvise = _libc.madvise
    _madvise.restype = ctypes.c_int
    _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def release_pages(base: int, size: int) -> None:
    """Hand the pages of ``[base, base + size)`` back to the kernel, ``RELEASE_STEP`` at a time.

    Why: unmapping a populated region holds the process's mmap lock while every page of it is
    freed (7-10 ms for a 128 MiB memory), and every other thread that maps or unmaps memory
    meanwhile (Python's allocator, another tenant's instance, a socket buffer) waits that long:
    a tenant discarding big memories in a loop stalled other tenants' requests. In steps the
    lock is let go between them, and the unmap that follows finds no pages left to free.
    Only for a range inside a live linear memory that nothing will read again (its instance is
    being dropped): the pages read as zeros afterwards. Failures are ignored: the unmap frees
    whatever is left.
    """
    if _libc is None or size <= 0:
        return
    end = base + size
    for start in range(base, end, RELEASE_STEP):
        _madvise(start, min(RELEASE_STEP, end - start), _MADV_DONTNEED)
