"""Approval rows (issue 15): the tools and the prompts and resources approved with them, sealed
in one value; a row written before prompts were covered reads as tools only."""

from __future__ import annotations

from smcp_box.store.approvals import Approvals
from tests.store.conftest import OpenStore

TOOLS = [{"name": "work", "description": "Counts to n."}]
PROMPTS = {"prompts": [{"name": "hint", "description": "How to call work."}]}


async def test_prompts_are_kept_with_the_tools_across_a_reopen(open_store: OpenStore) -> None:
    store = await open_store()
    recorded = await store.record_approval(
        "drift", "ab" * 32, TOOLS, actor="admin", reason="ok", others=PROMPTS
    )
    assert recorded.others == {"prompts": tuple(PROMPTS["prompts"])}
    await store.close()
    (again,) = await (await open_store()).approvals("drift")
    assert again.definitions == tuple(TOOLS)
    assert again.others == {"prompts": tuple(PROMPTS["prompts"])}
    assert again.definitions_sha256 == "ab" * 32


async def test_a_row_from_before_prompts_were_covered_holds_tools_only(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    approvals: Approvals = store._approvals  # the old writer sealed the tool list alone
    sealed = approvals._crypto.seal_json(
        TOOLS, "definition_approvals", "drift", "cd" * 32, "definitions"
    )
    reason = approvals._crypto.seal_text(
        "old", "definition_approvals", "drift", "cd" * 32, "reason"
    )
    await approvals._db.write_one(
        "INSERT INTO definition_approvals (tenant, definitions_sha256, definitions_enc, actor,"
        " reason_enc, approved_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        ("drift", "cd" * 32, sealed, "tenant.toml", reason, 1.0),
    )
    (old,) = await store.approvals("drift")
    assert old.definitions == tuple(TOOLS)
    assert old.others is None
    assert old.reason == "old"
