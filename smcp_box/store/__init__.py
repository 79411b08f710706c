"""The encrypted SQLite store: sessions and SSE events, tenant kv, API keys, the audit log,
OAuth signing keys.

Open one :class:`Store` per box with the data key from :func:`load_data_key`. Beside it:
``audit_writer`` (the box's Auditor, batching rows from a background task) and ``statelock``
(the state-directory lock that keeps one box per database and ``restore`` apart from it).
"""

from .apikeys import ApiKeyRecord
from .audit import AuditEntry, AuditRecord
from .chain import AuditVerification, ChainFinding
from .keyfile import load_data_key
from .kv import KvLimits, KvQuota
from .signing_keys import SigningKeyRecord
from .store import Store
from .tasks import TaskPage, TaskRecord, TaskStatus
from .tenant_state import TenantAdminState
from .users import UserRecord

__all__ = [
    "ApiKeyRecord",
    "AuditEntry",
    "AuditRecord",
    "AuditVerification",
    "ChainFinding",
    "KvLimits",
    "KvQuota",
    "SigningKeyRecord",
    "Store",
    "TaskPage",
    "TaskRecord",
    "TaskStatus",
    "TenantAdminState",
    "UserRecord",
    "load_data_key",
]
