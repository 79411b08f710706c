"""``smcp-box audit export`` and ``smcp-box audit verify``: the audit log read from the database
directly (beside a running box, or with it stopped), not through the admin API, so that both
work when the box is down, which is when an investigation often happens."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from smcp_box.config import Settings
from smcp_box.errors import ConfigError
from smcp_box.ops.offline import existing_store
from smcp_box.store import AuditRecord, ChainFinding
from smcp_box.store.audit import MAX_PAGE
from smcp_box.store.chain import AuditVerification


def record_json(row: AuditRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "time": datetime.fromtimestamp(row.ts, UTC).isoformat(timespec="milliseconds"),
        "ts": row.ts,
        "kind": row.kind,
        "event": row.event,
        "tenant": row.tenant,
        "actor": row.actor,
        "source_ip": row.source_ip,
        "outcome": row.outcome,
        "detail": row.detail,
    }


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    # Audit rows name people and addresses: the export is as private as the database.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yield handle


async def run_export(
    settings: Settings,
    output: Path | None,
    *,
    since_id: int = 0,
    tenant: str | None = None,
    event: str | None = None,
) -> int:
    """Write rows after ``since_id``, oldest first, one JSON object a line; returns the count."""
    count = 0
    async with existing_store(settings) as store:
        with _output(output) as out:
            last = since_id
            while True:
                page = await store.audit_page(
                    since_id=last, tenant=tenant, event=event, limit=MAX_PAGE
                )
                for row in page:
                    out.write(json.dumps(record_json(row), ensure_ascii=False) + "\n")
                count += len(page)
                if len(page) < MAX_PAGE:
                    break
                last = page[-1].id
            out.flush()
    return count


@dataclass(frozen=True)
class VerifyReport:
    verification: AuditVerification
    findings: list[ChainFinding]

    @property
    def ok(self) -> bool:
        return self.verification.ok and not self.findings

    def text(self) -> str:
        v = self.verification
        if self.ok:
            return f"OK: the audit chain is intact ({v.rows_checked} row(s) checked)."
        lines = [f"FAIL: {v.message}"]
        lines += [f"  {f.problem:<8} row {f.id}: {f.message}" for f in self.findings]
        lines.append(
            "The rows listed were changed outside smcp-box. Keep this database file as "
            "evidence (copy it before the box writes more) and compare with your backups."
        )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        v = self.verification
        return {
            "ok": self.ok,
            "rows_checked": v.rows_checked,
            "first_bad_id": v.first_bad_id,
            "problem": v.problem,
            "message": v.message,
            "findings": [
                {"id": f.id, "problem": f.problem, "message": f.message} for f in self.findings
            ],
        }


async def run_verify(settings: Settings) -> VerifyReport:
    async with existing_store(settings) as store:
        verification = await store.verify_audit_chain()
        findings = [] if verification.ok else await store.scan_audit_chain()
    return VerifyReport(verification, findings)
