from __future__ import annotations

from tests.admin.conftest import module_cache, rb

__all__ = ["module_cache", "rb"]
