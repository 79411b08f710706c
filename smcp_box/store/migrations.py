"""Numbered schema migrations, tracked by ``PRAGMA user_version``.

``MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1``. Append new scripts; never edit
a released one, because databases in the field already ran it. Each script runs in its own
``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump, so a failed migration
leaves the database at the previous version, untouched.

Column conventions: ``*_hash`` columns are HMAC lookups (see ``crypto.Crypto.lookup``), ``*_enc``
and other BLOB value columns are sealed envelopes; nothing secret is stored in TEXT columns.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from smcp_box.errors import StoreError

_V1: Final = """
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    sid_hash BLOB NOT NULL UNIQUE,      -- lookup(session, tenant, session id)
    sid_enc BLOB NOT NULL,              -- sealed session id, only for listing
    protocol_version TEXT NOT NULL,
    client_info BLOB NOT NULL,          -- sealed JSON
    state BLOB NOT NULL,                -- sealed JSON
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    ended INTEGER NOT NULL DEFAULT 0 CHECK (ended IN (0, 1)),
    event_count INTEGER NOT NULL DEFAULT 0  -- kept exact by the events_* triggers
) STRICT;
CREATE INDEX sessions_by_tenant ON sessions (tenant, created_at);
CREATE INDEX sessions_by_last_seen ON sessions (last_seen);

-- One row per SSE stream of a session; seq is the stream's number inside event ids.
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    stream_hash BLOB NOT NULL,          -- lookup(stream, tenant, sid_hash, stream id)
    stream_enc BLOB NOT NULL,           -- sealed stream id
    next_event INTEGER NOT NULL,        -- never decreases, so event ids are never reused
    UNIQUE (session, seq),
    UNIQUE (session, stream_hash)
) STRICT;

-- events.id is the insertion order across a session's streams; the oldest are pruned first.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    stream INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,              -- sealed SSE data
    UNIQUE (stream, seq)
) STRICT;
CREATE INDEX events_by_session ON events (session, id);

CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN
    UPDATE sessions SET event_count = event_count + 1 WHERE id = NEW.session;
END;
CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN
    UPDATE sessions SET event_count = event_count - 1 WHERE id = OLD.session;
END;

CREATE TABLE kv (
    tenant TEXT NOT NULL,
    key_hash BLOB NOT NULL,             -- lookup(kv, tenant, key)
    key_enc BLOB NOT NULL,              -- sealed key name, for kv_list
    value_enc BLOB NOT NULL,            -- sealed value
    size INTEGER NOT NULL CHECK (size >= 0),  -- UTF-8 bytes of key + value, for quotas
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, key_hash)
) STRICT, WITHOUT ROWID;

-- Per-tenant totals, maintained by triggers so no code path can let them drift.
CREATE TABLE kv_usage (
    tenant TEXT PRIMARY KEY,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
    INSERT INTO kv_usage (tenant, keys, bytes) VALUES (NEW.tenant, 1, NEW.size)
    ON CONFLICT (tenant) DO UPDATE SET keys = keys + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER kv_usage_update AFTER UPDATE ON kv BEGIN
    UPDATE kv_usage SET bytes = bytes - OLD.size + NEW.size WHERE tenant = NEW.tenant;
END;
CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
    UPDATE kv_usage SET keys = keys - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant;
END;

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    label TEXT NOT NULL,
    secret_hash BLOB NOT NULL,          -- lookup(apikey, key id, tenant, secret)
    created_at REAL NOT NULL,
    last_used REAL,
    revoked_at REAL
) STRICT, WITHOUT ROWID;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant);

-- Audit rows are clear text for admins; integrity comes from the keyed hash chain.
-- ids are assigned by the store as head + 1, so a gap means rows were deleted.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'checkpoint')),
    event TEXT NOT NULL,
    tenant TEXT,
    actor TEXT NOT NULL,
    source_ip TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,               -- canonical JSON, hashed exactly as stored
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    sig BLOB                            -- checkpoint rows only
) STRICT;
CREATE INDEX audit_by_tenant ON audit (tenant, id);
CREATE INDEX audit_by_event ON audit (event, id);
CREATE INDEX audit_by_ts ON audit (ts);
"""

# Admin state: what admins changed about tenants at run time (see ``tenant_state``). The tenants
# folder is read-only input; this table replaces the old per-folder admin-overrides.json files.
_V2: Final = """
CREATE TABLE tenant_admin (
    tenant TEXT PRIMARY KEY,
    origin TEXT NOT NULL CHECK (origin IN ('folder', 'admin')),
    enabled INTEGER CHECK (enabled IN (0, 1)),  -- NULL: as the box started it
    removed INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
    limits_enc BLOB NOT NULL,           -- sealed JSON object of limit overrides
    manifest_enc BLOB,                  -- admin-added tenants: sealed tenant.toml text
    module_sha256 TEXT,                 -- admin-added tenants: the module's pinned sha256
    updated_at REAL NOT NULL,
    CHECK (origin = 'folder' OR (manifest_enc IS NOT NULL AND removed = 0))
) STRICT, WITHOUT ROWID;
-- Admin-added tenants' module bytes, so that the database (and so a backup) holds everything
-- needed to serve them: their files under the state folder are rewritten from here when they
-- are missing or differ. A table of its own: large rows do not belong in a WITHOUT ROWID table.
CREATE TABLE tenant_module (
    tenant TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    module BLOB NOT NULL
) STRICT;
"""

# People and API keys (issue 12): local user accounts for the OAuth login page, their
# per-tenant grants, and optional expiry and scopes on API keys.
_V3: Final = """
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    password_enc BLOB NOT NULL,         -- sealed argon2id PHC string
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE TABLE user_grants (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    scopes_enc BLOB NOT NULL,           -- sealed JSON list of scope names
    granted_at REAL NOT NULL,
    PRIMARY KEY (username, tenant)
) STRICT, WITHOUT ROWID;
CREATE INDEX user_grants_by_tenant ON user_grants (tenant);
-- NULL: never expires / unrestricted (every key made before this migration).
ALTER TABLE api_keys ADD COLUMN expires_at REAL;
ALTER TABLE api_keys ADD COLUMN scopes TEXT;    -- space-separated scope names
"""

# OAuth signing keys and revoked access tokens (``signing_keys``). Migration number 4 in the
# issue-12 plan (3 is the users table); whichever lands first appends first.
_V4: Final = """
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,               -- RFC 7638 thumbprint of the public key (public)
    jwk_enc BLOB NOT NULL,              -- sealed private JWK (JSON)
    created_at REAL NOT NULL,
    retired_at REAL                     -- NULL for the one key that signs new tokens
) STRICT, WITHOUT ROWID;
-- At most one key signs at a time, whichever box made it.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

-- Access tokens revoked before they expire; a row can go once its token would have expired.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,               -- the token's random id (not a secret)
    expires_at REAL NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
"""

# The authorization server (store/oauth.py); number 5 in the issue-12 plan. Codes, refresh
# tokens and login session ids are stored only as lookup hashes; a code's grant details sealed.
_OAUTH: Final = """
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('preregistered', 'dynamic')),
    metadata_enc BLOB NOT NULL,         -- sealed JSON: name, redirect URIs, client and logo URI
    created_at REAL NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE oauth_codes (
    code_hash BLOB PRIMARY KEY,         -- lookup(oauth_code, code)
    grant_enc BLOB NOT NULL,            -- sealed JSON: client, user, tenant, resource, PKCE, ...
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,                       -- single use: set by the one redemption
    family TEXT                         -- the refresh family the redemption started
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh (
    token_hash BLOB PRIMARY KEY,        -- lookup(oauth_refresh, token)
    family TEXT NOT NULL,               -- every rotation of one grant shares it
    client_id TEXT NOT NULL,
    username TEXT NOT NULL,
    tenant TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    rotated_at REAL,                    -- set when exchanged: presenting it again is reuse
    revoked_at REAL
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_refresh_by_family ON oauth_refresh (family);
CREATE INDEX oauth_refresh_by_user ON oauth_refresh (username, tenant);
CREATE INDEX oauth_refresh_by_expiry ON oauth_refresh (expires_at);

CREATE TABLE oauth_consents (
    username TEXT NOT NULL,
    client_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at REAL NOT NULL,
    PRIMARY KEY (username, client_id, tenant)
) STRICT, WITHOUT ROWID;

CREATE TABLE oauth_logins (
    sid_hash BLOB PRIMARY KEY,          -- lookup(oauth_login, session cookie)
    username TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_logins_by_expiry ON oauth_logins (expires_at);
"""

# Per-tenant secrets (``store/secrets.py``): values sealed with tenant and name in the AAD.
# Numbered 6 on its branch: it follows the OAuth migrations when the branches merge.
_V6: Final = """
CREATE TABLE tenant_secrets (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,                 -- not secret: declared in tenant.toml, listed, audited
    value_enc BLOB NOT NULL,            -- sealed value, AAD (tenant_secrets, tenant, name)
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, name)
) STRICT, WITHOUT ROWID;
"""

# Approvals of changed tool definitions and per-tool behaviour baselines (``store/approvals.py``,
# ``store/baselines.py``). Appended after whatever precedes it when branches merge.
_APPROVALS: Final = """
CREATE TABLE definition_approvals (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    definitions_sha256 TEXT NOT NULL,   -- the tools fingerprint (tools_sha256) approved
    definitions_enc BLOB NOT NULL,      -- sealed canonical JSON of the approved definitions
    actor TEXT NOT NULL,
    reason_enc BLOB NOT NULL,           -- sealed: the admin's free text
    approved_at REAL NOT NULL
) STRICT;
CREATE INDEX definition_approvals_by_tenant ON definition_approvals (tenant, id);

CREATE TABLE tool_baselines (
    tenant TEXT NOT NULL,
    tool TEXT NOT NULL,
    profile TEXT NOT NULL,              -- JSON of counts, means and variances: figures only
    blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, tool)
) STRICT, WITHOUT ROWID;
"""

# Durable tasks (``store/tasks.py``, docs/tasks.md): the call, its inputs and its outcome
# sealed with (tasks, tenant, task id, field) in the AAD; rowid orders a tenant's tasks for
# paging. Appended last: other branches append their own migrations before or after it.
_TASKS: Final = """
CREATE TABLE tasks (
    task_id TEXT NOT NULL UNIQUE,       -- 128 random bits, base64url: unguessable
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,                -- the caller's subject; only it sees the task
    tool TEXT NOT NULL,
    status TEXT NOT NULL,               -- working, input_required, completed, failed, cancelled
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ttl_ms INTEGER NOT NULL,
    expires_at REAL NOT NULL,           -- last change + ttl_ms: purged after it
    poll_interval_ms INTEGER NOT NULL,
    timeout_s REAL NOT NULL,            -- the wall-clock limit of each module call of the task
    request_enc BLOB NOT NULL,          -- the tools/call params
    input_requests_enc BLOB,            -- pending inputRequests (input_required only)
    input_responses_enc BLOB,           -- inputResponses collected so far
    request_state_enc BLOB,             -- the module's requestState for its next round
    result_enc BLOB,                    -- the CallToolResult (completed)
    error_enc BLOB                      -- the JSON-RPC error object (failed)
) STRICT;
CREATE INDEX tasks_by_tenant ON tasks (tenant, owner);
CREATE INDEX tasks_by_status ON tasks (status, tenant);
CREATE INDEX tasks_by_expiry ON tasks (expires_at);
"""

# Per-tenant blobs (store/blobs.py): a row per blob pointing at its committed version, chunks
# sealed with (tenant, version, index) in the AAD, and usage kept exact by triggers.
_BLOBS: Final = """
CREATE TABLE blobs (
    tenant TEXT NOT NULL,
    name_hash BLOB NOT NULL,            -- lookup(blobs, tenant, name)
    version TEXT NOT NULL UNIQUE,       -- random id of the committed content
    meta_enc BLOB NOT NULL,             -- sealed JSON: name, content type, SHA-256
    size INTEGER NOT NULL CHECK (size >= 0),
    chunks INTEGER NOT NULL CHECK (chunks >= 0),
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, name_hash)
) STRICT, WITHOUT ROWID;

-- Chunks of committed versions and of versions being written; those of neither are orphans
-- (a crash mid-write) and are deleted at startup. Large rows: a rowid table.
CREATE TABLE blob_chunks (
    version TEXT NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    tenant TEXT NOT NULL,
    data BLOB NOT NULL,                 -- sealed, AAD (blob_chunks, tenant, version, idx)
    PRIMARY KEY (version, idx)
) STRICT;
CREATE INDEX blob_chunks_by_tenant ON blob_chunks (tenant);

CREATE TABLE blob_usage (
    tenant TEXT PRIMARY KEY,
    blobs INTEGER NOT NULL,
    bytes INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TRIGGER blob_usage_insert AFTER INSERT ON blobs BEGIN
    INSERT INTO blob_usage (tenant, blobs, bytes) VALUES (NEW.tenant, 1, NEW.size)
    ON CONFLICT (tenant) DO UPDATE SET blobs = blobs + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER blob_usage_update AFTER UPDATE ON blobs BEGIN
    UPDATE blob_usage SET bytes = bytes - OLD.size + NEW.size WHERE tenant = NEW.tenant;
END;
CREATE TRIGGER blob_usage_delete AFTER DELETE ON blobs BEGIN
    UPDATE blob_usage SET blobs = blobs - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant;
END;
"""

# Several boxes on one database (docs/scale-out.md, "Store areas on PostgreSQL"): the box that
# runs a task and the box that wrote a blob chunk, so that crash recovery takes only a dead
# box's rows. Rows from before carry '' (every box's: a single box wrote them).
_BOX_OWNERS: Final = """
ALTER TABLE tasks ADD COLUMN box_id TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_by_box ON tasks (box_id, status);
ALTER TABLE blob_chunks ADD COLUMN box_id TEXT NOT NULL DEFAULT '';
CREATE INDEX blob_chunks_by_box ON blob_chunks (box_id, version);
"""

#: Schema scripts; the database's ``user_version`` is how many of them it has run.
MIGRATIONS: Final[tuple[str, ...]] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _OAUTH,
    _V6,
    _APPROVALS,
    _TASKS,
    _BLOBS,
    _BOX_OWNERS,
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Bring the schema up to date; return the version the database was at.

    Runs on the connection's own thread (synchronously). ``conn`` must be in autocommit mode
    (``isolation_level=None``) so the explicit BEGIN/COMMIT below are the only transactions.
    """
    (found,) = conn.execute("PRAGMA user_version").fetchone()
    if found > len(migrations):
        raise StoreError(
            f"The database has schema version {found}, newer than the {len(migrations)} this "
            "smcp-box supports: it was written by a newer release. Upgrade smcp-box, or "
            "restore a backup taken before the upgrade."
        )
    for version in range(found, len(migrations)):
        try:
            # executescript() runs statements one by one; the explicit transaction makes the
            # script and the version bump one atomic step.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{migrations[version]}\nPRAGMA user_version = {version + 1};\n"
                "COMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.rollback()
            raise
    return int(found)
