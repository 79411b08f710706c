"""The ``smcp:box`` WIT world as the box links it: the host interface a component may import,
the WASI subset it is given, and the checks a component must pass before it runs.

This module only inspects component types and defines the linker; it runs nothing.

A component gets WASI preview 2 because the toolchains that build components (componentize-py,
componentize-js) link their language runtime against it and import it whether or not the tenant
uses it. The WASI context each instance gets is empty: no preopened directories (the filesystem
interfaces see no file), no network (sockets are refused: the context inherits no network and
allows no name lookup), no environment variables or arguments, an empty stdin, and stdout and
stderr captured by the box (see :mod:`.component`). Clocks and randomness are real. So an allowed
WASI import is inert; an import of anything else (``wasi:http``, another package's interface)
is refused by name at load.
"""

from __future__ import annotations

from typing import Any

import wasmtime
import wasmtime.component as wc

from smcp_box.errors import ModuleRejected

#: The WIT package and interface of the box's host functions.
HOST_INTERFACE = "smcp:box/host@1.0.0"
#: The world's one export.
EXPORT_HANDLE = "handle"
#: Functions of :data:`HOST_INTERFACE`, in WIT names. The core ABI's names, dashed.
HOST_FUNCTIONS: tuple[str, ...] = (
    "log",
    "config-get",
    "kv-get",
    "kv-set",
    "kv-delete",
    "kv-list",
    "notify",
    "time-now-ms",
    "kv-cas",
    "kv-incr",
    "random-bytes",
    "blob-open",
    "blob-read",
    "blob-write",
    "blob-close",
    "blob-stat",
    "blob-list",
    "blob-delete",
    "sleep-ms",
)
#: Types the host interface also exports (a component's import lists them beside functions).
HOST_TYPES: tuple[str, ...] = ("kv-error", "blob-error")
#: WASI preview 2 interfaces a component may import (any 0.2.x version). See the module doc for
#: why each is inert: the instance's WASI context grants nothing.
ALLOWED_WASI: frozenset[str] = frozenset(
    {
        "wasi:io/poll",
        "wasi:io/error",
        "wasi:io/streams",
        "wasi:clocks/monotonic-clock",
        "wasi:clocks/wall-clock",
        "wasi:random/random",
        "wasi:random/insecure",
        "wasi:random/insecure-seed",
        "wasi:cli/stdout",
        "wasi:cli/stderr",
        "wasi:cli/stdin",
        "wasi:cli/environment",
        "wasi:cli/exit",
        "wasi:cli/terminal-input",
        "wasi:cli/terminal-output",
        "wasi:cli/terminal-stdin",
        "wasi:cli/terminal-stdout",
        "wasi:cli/terminal-stderr",
        "wasi:filesystem/types",
        "wasi:filesystem/preopens",
        "wasi:sockets/network",
        "wasi:sockets/instance-network",
        "wasi:sockets/udp",
        "wasi:sockets/udp-create-socket",
        "wasi:sockets/tcp",
        "wasi:sockets/tcp-create-socket",
        "wasi:sockets/ip-name-lookup",
    }
)
WASI_VERSION_PREFIX = "0.2."

#: Core instances, tables and memories one component instance may create. Structural, like
#: :data:`~.limits.MAX_TABLES`: a Python component made by componentize-py needs ~10 instances,
#: a few tables and exactly one memory. One memory is what makes ``[limits].memory_mib`` the
#: instance's whole memory, as for a core module; a component with two is refused at load.
COMPONENT_MAX_INSTANCES = 64
COMPONENT_MAX_TABLES = 16
COMPONENT_MAX_MEMORIES = 1


def _allowed_wasi(name: str) -> bool:
    interface, _, version = name.partition("@")
    return interface in ALLOWED_WASI and version.startswith(WASI_VERSION_PREFIX)


def check_component(
    tenant: str, component: wc.Component, engine: wasmtime.Engine
) -> frozenset[str]:
    """Raise ModuleRejected naming every import outside the world and a missing or mistyped
    ``handle`` export. Returns the host functions the component imports (core ABI names)."""
    problems: list[str] = []
    used: set[str] = set()
    ty = component.type
    for name, item in ty.imports(engine).items():
        if name == HOST_INTERFACE:
            host = item.ty
            if not isinstance(host, wc.ComponentInstanceType):
                problems.append(f"import {name} must be an instance")
                continue
            for member in host.exports(engine):
                if member in HOST_FUNCTIONS:
                    used.add(member.replace("-", "_"))
                elif member not in HOST_TYPES:
                    problems.append(f"import {name} names {member!r}, which the world lacks")
        elif not _allowed_wasi(name):
            problems.append(f"import {name} is outside the smcp:box world")
    handle = ty.exports(engine).get(EXPORT_HANDLE)
    if handle is None:
        problems.append(f"missing export {EXPORT_HANDLE!r}")
    else:
        func = handle.ty
        if (
            not isinstance(func, wc.FuncType)
            or [str(type(t).__name__) for _, t in func.params] != ["String"]
            or not isinstance(func.result, wc.String)
        ):
            problems.append(f"export {EXPORT_HANDLE!r} must be func(message: string) -> string")
    if problems:
        raise ModuleRejected(
            f"tenant {tenant!r}: the component does not follow the smcp:box world: "
            + "; ".join(problems)
            + f" (allowed imports: {HOST_INTERFACE} and WASI {WASI_VERSION_PREFIX}x "
            "io, clocks, random, cli, filesystem and sockets, which the box grants nothing)",
            data={"tenant": tenant, "problems": problems},
        )
    return frozenset(used)


def make_component_linker(engine: wasmtime.Engine, host_funcs: dict[str, Any]) -> wc.Linker:
    """A component Linker with WASI preview 2 and ``host_funcs`` (WIT name -> callable taking
    the store and the function's arguments) as :data:`HOST_INTERFACE`."""
    linker = wc.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        for name in HOST_FUNCTIONS:
            host.add_func(name, host_funcs[name])
    return linker
