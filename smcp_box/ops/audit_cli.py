"""``smcp-box audit export`` and ``smcp-box audit verify``: the audit log read from the database
directly (beside a running box, or with it stopped), not through the admin API, so that both
work when the box is down, which is when an investigation often happens.

A database shared by a fleet holds one hash chain per box (store/audit.py): verify checks and
reports each, export merges them in time order, each row naming its box."""

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
from smcp_box.store.audit import MAX_PAGE, ChainVerification, chain_label, combined
from smcp_box.store.chain import AuditVerification


def record_json(row: AuditRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "box": row.box,
        "seq": row.seq,
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
    """Write the rows of every box's chain after row number ``since_id``, merged in time order
    (ties by box, then place in its chain), one JSON object a line naming its box; returns the
    count."""
    count = 0
    async with existing_store(settings) as store:
        with _output(output) as out:
            after: tuple[float, str, int] | None = None
            while True:
                page = await store.audit_by_time(
                    after=after, since_id=since_id, tenant=tenant, event=event, limit=MAX_PAGE
                )
                for row in page:
                    out.write(json.dumps(record_json(row), ensure_ascii=False) + "\n")
                count += len(page)
                if len(page) < MAX_PAGE:
                    break
                after = (page[-1].ts, page[-1].box, page[-1].seq)
            out.flush()
    return count


@dataclass(frozen=True)
class VerifyReport:
    """Every box's chain as ``audit verify`` found it, with every problem of the broken ones."""

    chains: list[ChainVerification]
    findings: list[ChainFinding]

    @property
    def verification(self) -> AuditVerification:
        return combined(self.chains)

    @property
    def ok(self) -> bool:
        return self.verification.ok and not self.findings

    def text(self) -> str:
        if self.ok:
            rows = sum(chain.rows for chain in self.chains)
            lines = [
                f"OK: every audit chain is intact ({len(self.chains)} chain(s), "
                f"{rows} row(s) checked)."
            ]
        else:
            broken = ", ".join(chain_label(c.box) for c in self.chains if not c.ok)
            lines = [f"FAIL: the audit chain of box {broken} is broken."]
        for chain in self.chains:
            lines.append(_chain_line(chain))
            lines += [
                f"    {f.problem:<8} row {f.id}: {f.message}"
                for f in self.findings
                if f.box == chain.box
            ]
        if not self.ok:
            lines.append(
                "The rows listed were changed outside smcp-box. Keep this database as evidence "
                "(copy it before the boxes write more) and compare with your backups."
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
            "findings": [_finding_json(f) for f in self.findings],
            "chains": [
                {
                    "box": chain.box,
                    "ok": chain.ok,
                    "rows": chain.rows,
                    "head": chain.head,
                    "rows_checked": chain.verification.rows_checked,
                    "first_bad_id": chain.verification.first_bad_id,
                    "problem": chain.verification.problem,
                    "message": chain.verification.message,
                    "findings": [_finding_json(f) for f in self.findings if f.box == chain.box],
                }
                for chain in self.chains
            ],
        }


def _chain_line(chain: ChainVerification) -> str:
    head = "no head" if chain.head is None else f"head {chain.head}"
    where = f"  box {chain_label(chain.box)}: {chain.rows} row(s), {head}: "
    if chain.ok:
        return where + "intact"
    v = chain.verification
    return where + f"BROKEN at row {v.first_bad_id} ({v.problem}): {v.message}"


def _finding_json(finding: ChainFinding) -> dict[str, Any]:
    return {
        "box": finding.box,
        "id": finding.id,
        "problem": finding.problem,
        "message": finding.message,
    }


async def run_verify(settings: Settings) -> VerifyReport:
    async with existing_store(settings) as store:
        chains = await store.verify_audit_chains()
        findings = [] if combined(chains).ok else await store.scan_audit_chain()
    return VerifyReport(chains, findings)
