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
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from .engine import WASMTIME_VERSION

logger = logging.getLogger("smcp_box.sandbox")


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

    def path_for(self, wasm_sha256: str) -> Path:
        return self.cache_dir / f"{wasm_sha256}-{self._suffix}.cwasm"

    def get_or_compile(self, wasm: bytes, wasm_sha256: str) -> tuple[wasmtime.Module, bool]:
        """The compiled module and whether it came from the cache.

        Raises ``wasmtime.WasmtimeError`` when the wasm does not compile.
        """
        path = self.path_for(wasm_sha256)
        module = self._try_load(path)
        if module is not None:
            with self._lock:
                self.counters.hits += 1
            return module, True
        module = wasmtime.Module(self._engine, wasm)
        with self._lock:
            self.counters.compiles += 1
        self._store(path, module)
        return module, False

    def _try_load(self, path: Path) -> wasmtime.Module | None:
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
            return wasmtime.Module.deserialize_file(self._engine, str(path))
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

    def _store(self, path: Path, module: wasmtime.Module) -> None:
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
