"""What a wasm file declares: its imports, its exports, and whether they follow smcp-v1.

``smcp-box vet`` shows this for a bare module (no tenant.toml needed), so that an admin can see
what a module asks of the host before deciding to host it. It compiles but never runs anything;
the rules themselves are the sandbox's (:func:`smcp_box.sandbox.abi.check_module`), so vetting
and loading can never disagree about conformance.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from smcp_box.errors import ModuleRejected
from smcp_box.sandbox.abi import check_binary, check_module


@dataclass(frozen=True)
class ModuleInterface:
    #: ``module.name: type`` for every import, in the module's order.
    imports: tuple[str, ...]
    #: ``name: type`` for every export, in the module's order.
    exports: tuple[str, ...]
    #: Why the module does not follow smcp-v1 (empty: it does, and the box can load it).
    abi_problems: tuple[str, ...]

    @property
    def conforms(self) -> bool:
        return not self.abi_problems


def _type_text(ty: object) -> str:
    if isinstance(ty, wasmtime.FuncType):
        params = ", ".join(str(p) for p in ty.params)
        results = ", ".join(str(r) for r in ty.results)
        return f"func({params})" + (f" -> {results}" if results else "")
    if isinstance(ty, wasmtime.MemoryType):
        bits = "64-bit" if ty.is_64 else "32-bit"
        return f"memory ({bits}{', shared' if ty.is_shared else ''}, {ty.limits.min} pages min)"
    if isinstance(ty, wasmtime.TableType):
        return "table"
    if isinstance(ty, wasmtime.GlobalType):
        return "global"
    return type(ty).__name__


def inspect_module(engine: wasmtime.Engine, label: str, wasm: bytes) -> ModuleInterface:
    """The module's interface; a file that is not a core module, or does not compile, has no
    imports or exports to show and says why in ``abi_problems``."""
    try:
        check_binary(label, wasm)
        module = wasmtime.Module(engine, wasm)
    except ModuleRejected as exc:
        return ModuleInterface((), (), (exc.message,))
    except wasmtime.WasmtimeError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
        return ModuleInterface((), (), (f"the module does not compile: {first_line}",))
    imports = tuple(f"{imp.module}.{imp.name}: {_type_text(imp.type)}" for imp in module.imports)
    exports = tuple(f"{exp.name}: {_type_text(exp.type)}" for exp in module.exports)
    try:
        check_module(label, module)
    except ModuleRejected as exc:
        data = exc.data or {}
        problems = data.get("problems")
        listed = tuple(problems) if isinstance(problems, list) else (exc.message,)
        return ModuleInterface(imports, exports, listed)
    return ModuleInterface(imports, exports, ())


__all__ = ["ModuleInterface", "inspect_module"]
