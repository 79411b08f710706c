"""wasmtime sandbox: engine, compiled-module cache, instance pools, limits, host imports. No HTTP.

Usage::

    sandbox = Sandbox(cache_dir)
    module = sandbox.load("weather", wasm_bytes, Limits(timeout_ms=2_000))
    outcome = await sandbox.call(module, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}', host)
    sandbox.close()
"""

from .engine import EngineSettings
from .host import HostCalls
from .limits import CallOutcome, Limits, PoolStats
from .pool import TenantModule
from .sandbox import Sandbox, inline_eligible

__all__ = [
    "CallOutcome",
    "EngineSettings",
    "HostCalls",
    "Limits",
    "PoolStats",
    "Sandbox",
    "TenantModule",
    "inline_eligible",
]
