"""Which definitions a tenant is held to (tenancy/approvals.py), without a box: the pin, the
latest approval, which of them is newer, and what a change does under each mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from smcp_box.errors import ModuleRejected
from smcp_box.store.approvals import ApprovalRecord
from smcp_box.tenancy.approvals import DefinitionApprovals, strictest
from smcp_box.tenancy.manifest import TenantManifest
from smcp_box.vetting.definitions import approved_view, definitions_diff, definitions_sha256

V1 = [{"name": "work", "description": "Counts to n.", "inputSchema": {"type": "object"}}]
V2 = [
    {"name": "work", "description": "Counts to n. And more.", "inputSchema": {"type": "object"}},
    {"name": "extra", "description": "New.", "_meta": {"ignored": True}},
]


def manifest(pin: str | None) -> TenantManifest:
    return TenantManifest(
        name="t",
        description="",
        module_path=Path("t.wasm"),
        sha256="0" * 64,
        auth="api_key",
        tools_sha256=pin,
    )


def test_a_matching_pin_is_recorded_once_as_an_approval() -> None:
    approvals = DefinitionApprovals()
    verdict = approvals.judge(manifest(definitions_sha256(V1)), V1, "serve_approved", 1.0)
    assert verdict.served is None
    assert verdict.pending is None
    ((tenant, sha, definitions, others),) = approvals.take_unrecorded()
    assert (tenant, sha) == ("t", definitions_sha256(V1))
    assert definitions == approved_view(V1)
    assert others == {}
    approvals.judge(manifest(definitions_sha256(V1)), V1, "serve_approved", 2.0)
    assert approvals.take_unrecorded() == []


def test_a_change_serves_the_approved_definitions_and_alerts_once() -> None:
    approvals = DefinitionApprovals()
    pin = definitions_sha256(V1)
    approvals.judge(manifest(pin), V1, "serve_approved", 1.0)
    verdict = approvals.judge(manifest(pin), V2, "serve_approved", 2.0)
    assert verdict.served == tuple(approved_view(V1))
    assert verdict.pending is not None
    assert verdict.pending.changes() == {"added": ["extra"], "removed": [], "changed": ["work"]}
    approvals.judge(manifest(pin), V2, "serve_approved", 3.0)
    (alert,) = approvals.take_unalerted()
    assert alert.detected_at == 2.0
    assert approvals.take_unalerted() == []
    # Approving the change: it is the latest approval, and the module is served as it is.
    approvals.add(
        ApprovalRecord(7, "t", definitions_sha256(V2), tuple(approved_view(V2)), "a", "ok", 4.0)
    )
    assert approvals.pending("t") is None
    assert approvals.judge(manifest(pin), V2, "serve_approved", 5.0).served is None


def test_refuse_mode_and_a_bare_pin_refuse() -> None:
    approvals = DefinitionApprovals()
    pin = definitions_sha256(V1)
    approvals.judge(manifest(pin), V1, "serve_approved", 1.0)
    with pytest.raises(ModuleRejected, match="changed since they were approved"):
        approvals.judge(manifest(pin), V2, "refuse", 2.0)
    assert approvals.pending("t") is not None
    # Only a pin, whose text the box never saw: nothing to serve instead.
    fresh = DefinitionApprovals()
    with pytest.raises(ModuleRejected, match="changed since they were pinned"):
        fresh.judge(manifest(pin), V2, "serve_approved", 1.0)


def test_a_new_pin_in_tenant_toml_wins_over_older_approvals() -> None:
    approvals = DefinitionApprovals()
    approvals.judge(manifest(definitions_sha256(V1)), V1, "serve_approved", 1.0)
    # The publisher ships V2 with its pin: newer than anything approved in the database.
    verdict = approvals.judge(manifest(definitions_sha256(V2)), V2, "serve_approved", 2.0)
    assert verdict.pending is None
    assert verdict.approved_sha256 == definitions_sha256(V2)


def test_unpinned_and_never_approved_is_served_as_it_is() -> None:
    verdict = DefinitionApprovals().judge(manifest(None), V2, "refuse", 1.0)
    assert verdict == verdict.__class__(None, None, None)


def test_the_diff_is_of_canonical_json() -> None:
    diff = definitions_diff(V1, V2, approved_label="a", current_label="b")
    assert diff.startswith("--- a\n+++ b\n")
    assert '+    "name": "extra"' in diff
    assert '-    "description": "Counts to n.",' in diff
    assert "_meta" not in diff


def test_strictest() -> None:
    modes = ("serve_approved", "refuse")
    assert strictest(modes, "serve_approved", None) == "serve_approved"
    assert strictest(modes, "serve_approved", "refuse") == "refuse"
    assert strictest(modes, "refuse", "serve_approved") == "refuse"
    assert strictest(modes) == "serve_approved"


PROMPTS_V1 = {"prompts": [{"name": "hint", "description": "How to call work."}]}
PROMPTS_V2 = {
    "prompts": [
        {"name": "hint", "description": "How to call work, and more."},
        {"name": "leak", "description": "New.", "_meta": {"ignored": True}},
    ]
}


def test_a_prompt_change_alone_is_pending_and_the_pin_keeps_meaning_tools() -> None:
    approvals = DefinitionApprovals()
    pin = definitions_sha256(V1)
    # The pin covers the tools; the prompts are approved as first seen with it.
    approvals.judge(manifest(pin), V1, "serve_approved", 1.0, PROMPTS_V1)
    ((_, sha, _, others),) = approvals.take_unrecorded()
    assert sha == pin
    assert others == {"prompts": tuple(PROMPTS_V1["prompts"])}
    verdict = approvals.judge(manifest(pin), V1, "serve_approved", 2.0, PROMPTS_V2)
    pending = verdict.pending
    assert pending is not None
    assert verdict.served_others == {"prompts": tuple(PROMPTS_V1["prompts"])}
    assert pending.current_sha256 == pin  # the tools did not change
    assert pending.review_sha256 != pin
    assert pending.changes() == {
        "added": ["prompt:leak"],
        "removed": [],
        "changed": ["prompt:hint"],
    }
    assert '-    "description": "How to call work."' in pending.diff()
    assert "approved prompts" in pending.diff()
    # Approving exactly that clears it.
    approvals.add(
        ApprovalRecord(
            8,
            "t",
            pin,
            tuple(approved_view(V1)),
            "a",
            "ok",
            3.0,
            others={"prompts": tuple(PROMPTS_V2["prompts"])},
        )
    )
    assert approvals.pending("t") is None
    assert approvals.judge(manifest(pin), V1, "serve_approved", 4.0, PROMPTS_V2).pending is None


def test_an_approval_from_before_prompts_were_covered_holds_the_tools_only() -> None:
    approvals = DefinitionApprovals()
    pin = definitions_sha256(V1)
    approvals.replace_all([ApprovalRecord(1, "t", pin, tuple(approved_view(V1)), "a", "ok", 1.0)])
    verdict = approvals.judge(manifest(pin), V1, "serve_approved", 2.0, PROMPTS_V2)
    assert verdict.pending is None
    assert verdict.served_others is None
