"""The secrets the box's modules read, held in memory: the store's ``tenant_secrets``, opened.

``config_get`` is answered synchronously from a wasm worker thread, so the values cannot be
fetched from the (async) store per call. The box loads them all at start
(:meth:`TenantSecrets.replace_all`) and the admin API keeps them current as it changes the
store. Values are never logged; only names appear in status, audit and errors.

Precedence: a secret overrides a tenant.toml ``[config]`` entry of the same name, so a
tenant.toml can ship a harmless placeholder that the admin's secret replaces on the box.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping


class TenantSecrets:
    """tenant -> name -> value. Thread-safe: read from worker threads, changed on the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, str]] = {}

    def replace_all(self, values: Mapping[str, Mapping[str, str]]) -> None:
        fresh = {tenant: dict(named) for tenant, named in values.items()}
        with self._lock:
            self._values = fresh

    def set(self, tenant: str, name: str, value: str) -> None:
        with self._lock:
            # Copy on write: a call that already took the tenant's dict keeps a stable view.
            self._values[tenant] = {**self._values.get(tenant, {}), name: value}

    def delete(self, tenant: str, name: str) -> None:
        with self._lock:
            named = dict(self._values.get(tenant, {}))
            named.pop(name, None)
            self._values[tenant] = named

    def drop_tenant(self, tenant: str) -> None:
        with self._lock:
            self._values.pop(tenant, None)

    def names(self, tenant: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._values.get(tenant, {}))

    def config_for(self, tenant: str, config: dict[str, str]) -> dict[str, str]:
        """What the tenant's ``config_get`` sees: its ``[config]`` with its secrets on top."""
        with self._lock:
            named = self._values.get(tenant)
        return {**config, **named} if named else config

    def missing(self, tenant: str, required: Iterable[str]) -> list[str]:
        """The names of ``required`` (tenant.toml ``secrets``) that have no value on the box."""
        have = self.names(tenant)
        return [name for name in required if name not in have]


__all__ = ["TenantSecrets"]
