"""The encrypted SQLite store: sessions and SSE events, tenant kv, API keys, the audit log.

Open one :class:`Store` per box with the data key from :func:`load_data_key`.
"""

from .apikeys import ApiKeyRecord
from .audit import AuditEntry, AuditRecord
from .chain import AuditVerification, ChainFinding
from .keyfile import load_data_key
from .kv import KvLimits
from .store import Store

__all__ = [
    "ApiKeyRecord",
    "AuditEntry",
    "AuditRecord",
    "AuditVerification",
    "ChainFinding",
    "KvLimits",
    "Store",
    "load_data_key",
]
