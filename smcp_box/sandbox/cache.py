"""The on-disk cache of compiled modules.

Compiling a module with Cranelift takes from milliseconds to seconds; loading its serialized
machine code takes well under a millisecond. So each module is compiled once per engine config
and kept as ``<sha256 of the wasm>-<engine fingerprint>.cwasm`` beside a ``.sha256`` file
holding the digest of the .cwasm itself.

Why the second digest: ``Module.deserialize_file`` maps the file and trusts it to be machine
code wasmtime wrote. It checks the header and the engine config, but not the code bytes, so a
bit flipped on disk would run as corrupted native code inside the box. Hashing the file first
(~1 ms per MiB) turns any corruption into a cache miss and a recompile. It is not a defence
against someone who can write the cache directory: they could rewrite both files. The cache
directory must be as private as the box's own code (it is created 0700).

Every write goes to a temporary file in the same directory and is renamed into place, so a
reader never sees half a file, and two processes filling the same entry just both win.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import wasmtime
import wasmtime.component

from .engine import WASMTIME_VERSION

logger = logging.getLogger("smcp_box.sandbox")

_Code = TypeVar("_Code", wasmtime.Module, wasmtime.component.Component)


@dataclass
class CacheCounters:
    hits: int = 0
    compiles: int = 0
    #: Entries found corrupt, stale or unloadable, deleted and recompiled.
    discarded: int = 0
    write_failures: int = 0


class ModuleCache:
    def __init__(self, cache_dir: Path, engine: wasmtime.Engine, fingerprint: str) -> None:
        self.cache_dir = cache_dir
        self._engine = engine
        self._suffix = f"wt{WASMTIME_VERSION}-{fingerprint}"
        self._lock = threading.Lock()
        self.counters = CacheCounters()
        try:
            cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            # Not fatal: the box still runs, it just compiles every module at every start.
            logger.warning(
                "compiled-module cache %s unusable (%s); compiling in memory only",
                cache_dir,
                exc.strerror,
            )

    def path_for(self, wasm_sha256: str, *, component: bool = False) -> Path:
        # Components get their own suffix: wasmtime refuses one kind's code as the other.
        kind = "ccomp" if component else "cwasm"
        return self.cache_dir / f"{wasm_sha256}-{self._suffix}.{kind}"

    def get_or_compile(self, wasm: bytes, wasm_sha256: str) -> tuple[wasmtime.Module, bool]:
        """The compiled module and whether it came from the cache.

        Raises ``wasmtime.WasmtimeError`` when the wasm does not compile.
        """
        path = self.path_for(wasm_sha256)
        module = self._try_load(path, wasmtime.Module.deserialize_file)
        if module is not None:
            self._count_hit()
            return module, True
        module = wasmtime.Module(self._engine, wasm)
        self._count_compile()
        self._store(path, module)
        return module, False

    def get_or_compile_component(
        self, wasm: bytes, wasm_sha256: str
    ) -> tuple[wasmtime.component.Component, bool]:
        """``get_or_compile`` for a component (an 18 MiB Python component takes ~25 s to
        compile and ~0.15 s to load from here)."""
        path = self.path_for(wasm_sha256, component=True)
        component = self._try_load(path, wasmtime.component.Component.deserialize_file)
        if component is not None:
            self._count_hit()
            return component, True
        component = wasmtime.component.Component(self._engine, wasm)
        self._count_compile()
        self._store(path, component)
        return component, False

    def _count_hit(self) -> None:
        with self._lock:
            self.counters.hits += 1

    def _count_compile(self) -> None:
        with self._lock:
            self.counters.compiles += 1

    def _try_load(
        self, path: Path, deserialize: Callable[[wasmtime.Engine, str], _Code]
    ) -> _Code | None:
        digest_path = path.with_name(path.name + ".sha256")
        try:
            expected = digest_path.read_text(encoding="ascii").strip()
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._discard(path, f"unreadable ({exc})")
            return None
        if hashlib.sha256(data).hexdigest() != expected:
            self._discard(path, "its digest does not match (corrupt or partly written)")
            return None
        try:
            return deserialize(self._engine, str(path))
        except wasmtime.WasmtimeError as exc:
            # e.g. written on a CPU with other features; wasmtime refuses, we recompile.
            self._discard(path, f"wasmtime refused it ({exc})")
            return None

    def _discard(self, path: Path, why: str) -> None:
        logger.warning("discarding compiled-module cache entry %s: %s", path.name, why)
        with self._lock:
            self.counters.discarded += 1
        for victim in (path, path.with_name(path.name + ".sha256")):
            try:
                victim.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot delete %s: %s", victim, exc.strerror)

    def _store(self, path: Path, module: wasmtime.Module | wasmtime.component.Component) -> None:
        try:
            data = bytes(module.serialize())
            # The .cwasm first, then its digest: a crash in between leaves an entry without a
            # digest, which reads as a miss.
            _atomic_write(path, data)
            _atomic_write(
                path.with_name(path.name + ".sha256"),
                (hashlib.sha256(data).hexdigest() + "\n").encode("ascii"),
            )
        except (OSError, wasmtime.WasmtimeError) as exc:
            with self._lock:
                self.counters.write_failures += 1
            logger.warning("cannot write compiled-module cache entry %s: %s", path.name, exc)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
