"""The "smcp-v1" core-module ABI: what a tenant module must export and may import.

This module only inspects module types; it runs nothing.

Exports: ``memory``, ``smcp_alloc(len: i32) -> i32`` (0 = failure) and
``smcp_handle(ptr: i32, len: i32) -> i64`` returning ``reply_ptr << 32 | reply_len``.
Imports: only the functions of :data:`HOST_IMPORTS`, all in module ``smcp``, each with exactly
its signature. Anything else (WASI, ``env``, a memory or table import) rejects the module, which
is how a tenant is kept from the host's files, environment, clock and network: it has no way to
name them.
"""

from __future__ import annotations

import wasmtime

from smcp_box.errors import ModuleRejected

IMPORT_MODULE = "smcp"

#: name -> (params, results), as wasm value type names.
HOST_IMPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "log": (("i32", "i32", "i32", "i32"), ()),
    "config_get": (("i32", "i32"), ("i64",)),
    "kv_get": (("i32", "i32"), ("i64",)),
    "kv_set": (("i32", "i32", "i32", "i32"), ("i32",)),
    "kv_delete": (("i32", "i32"), ("i32",)),
    "kv_list": (("i32", "i32"), ("i64",)),
    "notify": (("i32", "i32"), ()),
    "time_now_ms": ((), ("i64",)),
    # Added after smcp-v1 first shipped; like every import they are optional (a module imports
    # only what it uses), so modules built before them load unchanged.
    "kv_cas": (("i32", "i32", "i32", "i32", "i32", "i32"), ("i32",)),
    "kv_incr": (("i32", "i32", "i64", "i32"), ("i32",)),
    "random_bytes": (("i32", "i32"), ("i32",)),
    # Blobs (docs/abi.md 2.8): by handle in pieces, so no blob passes through memory whole.
    "blob_open": (("i32", "i32", "i32", "i32", "i32"), ("i32",)),
    "blob_read": (("i32", "i32", "i32"), ("i32",)),
    "blob_write": (("i32", "i32", "i32"), ("i32",)),
    "blob_close": (("i32",), ("i32",)),
    "blob_stat": (("i32", "i32"), ("i64",)),
    "blob_list": (("i32", "i32"), ("i64",)),
    "blob_delete": (("i32", "i32"), ("i32",)),
    # Waiting without a processor (a task's poll loop, a backoff): the call gives its run slot
    # up while it sleeps, and its deadline and cancellation still end it.
    "sleep_ms": (("i64",), ()),
}

EXPORT_MEMORY = "memory"
EXPORT_ALLOC = "smcp_alloc"
EXPORT_HANDLE = "smcp_handle"
REQUIRED_FUNC_EXPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    EXPORT_ALLOC: (("i32",), ("i32",)),
    EXPORT_HANDLE: (("i32", "i32"), ("i64",)),
}

WASM_MAGIC = b"\0asm"
#: Core modules are version 1; components carry another layer number in the same field.
CORE_MODULE_VERSION = b"\x01\x00\x00\x00"

U32_MASK = 0xFFFF_FFFF
U64_MASK = 0xFFFF_FFFF_FFFF_FFFF


#: A component's version and layer fields (component model, binary version 0xd, layer 1).
COMPONENT_VERSION = b"\x0d\x00\x01\x00"


def check_binary(tenant: str, wasm: bytes, *, component: bool = False) -> None:
    """Reject anything that is not a binary of the kind tenant.toml declares before wasmtime
    sees it.

    ``wasmtime.Module`` would parse text (WAT) given bytes that do not start with NUL; tenants
    upload binaries only, so text is refused rather than compiled.
    """
    if wasm[:4] != WASM_MAGIC:
        raise ModuleRejected(f"tenant {tenant!r}: the module is not a wasm binary")
    version = wasm[4:8]
    if component and version != COMPONENT_VERSION:
        raise ModuleRejected(
            f'tenant {tenant!r}: tenant.toml says kind = "component", but the module is not a '
            "WebAssembly component"
            + (
                " (it is a core module: remove the kind line)"
                if version == CORE_MODULE_VERSION
                else ""
            )
        )
    if not component and version != CORE_MODULE_VERSION:
        raise ModuleRejected(
            f"tenant {tenant!r}: the module is not a core wasm module"
            + (
                ' (it is a component: set kind = "component" in tenant.toml)'
                if version == COMPONENT_VERSION
                else ""
            )
            + "; the box runs smcp-v1 core modules and smcp:box components"
        )


def _signature(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _describe(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    params, results = sig
    text = f"({', '.join(params)})"
    return text + (f" -> {', '.join(results)}" if results else "")


def check_module(tenant: str, module: wasmtime.Module) -> None:
    """Raise ModuleRejected naming every import outside the allowlist and every missing export."""
    problems: list[str] = []
    for imp in module.imports:
        where = f"{imp.module}.{imp.name}"
        ty = imp.type
        expected = HOST_IMPORTS.get(imp.name or "") if imp.module == IMPORT_MODULE else None
        if expected is None:
            problems.append(f"import {where} is not allowed")
        elif not isinstance(ty, wasmtime.FuncType):
            problems.append(f"import {where} must be a function")
        elif _signature(ty) != expected:
            problems.append(
                f"import {where} has type {_describe(_signature(ty))}, "
                f"expected {_describe(expected)}"
            )
    exports = {exp.name: exp.type for exp in module.exports}
    memory = exports.get(EXPORT_MEMORY)
    if memory is None:
        problems.append(f"missing export {EXPORT_MEMORY!r}")
    elif not isinstance(memory, wasmtime.MemoryType):
        problems.append(f"export {EXPORT_MEMORY!r} must be a memory")
    elif memory.is_64 or memory.is_shared:
        problems.append(f"export {EXPORT_MEMORY!r} must be a 32-bit unshared memory")
    for name, expected in REQUIRED_FUNC_EXPORTS.items():
        export = exports.get(name)
        if export is None:
            problems.append(f"missing export {name!r}")
        elif not isinstance(export, wasmtime.FuncType):
            problems.append(f"export {name!r} must be a function")
        elif _signature(export) != expected:
            problems.append(
                f"export {name!r} has type {_describe(_signature(export))}, "
                f"expected {_describe(expected)}"
            )
    if problems:
        hint = ""
        if any(problem.startswith("import") for problem in problems):
            hint = (
                " (allowed imports: "
                + ", ".join(f"{IMPORT_MODULE}.{n}" for n in HOST_IMPORTS)
                + ")"
            )
        raise ModuleRejected(
            f"tenant {tenant!r}: the module does not follow the smcp-v1 ABI: "
            + "; ".join(problems)
            + hint,
            data={"tenant": tenant, "problems": problems},
        )


def pack_buffer(ptr: int, length: int) -> int:
    """``ptr << 32 | len`` as the signed i64 wasm expects."""
    value = ((ptr & U32_MASK) << 32) | (length & U32_MASK)
    return value - (1 << 64) if value >= 1 << 63 else value


def unpack_buffer(value: int) -> tuple[int, int]:
    value &= U64_MASK
    return value >> 32, value & U32_MASK
