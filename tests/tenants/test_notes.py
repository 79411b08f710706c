"""The notes example tenant: tools, resources, templates, prompts and completions over kv."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .harness import TENANTS, Host, Tenant, text_of

NOTES = TENANTS / "notes" / "notes.wasm"
T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z, the harness's default clock

NASTY = 'quotes " and \\ backslash, newline\nand tab\t, control \x01, é ß 中文, emoji 😀🎉 \u2028'


def create(tenant: Tenant, title: str, body: str, tags: list[str] | None = None) -> int:
    args: dict[str, Any] = {"title": title, "body": body}
    if tags is not None:
        args["tags"] = tags
    result = tenant.tool("note_create", args)
    assert result["isError"] is False, result
    note_id: int = result["structuredContent"]["id"]
    assert result["structuredContent"]["uri"] == f"note://{note_id}"
    return note_id


def test_capabilities(notes: Tenant) -> None:
    caps = notes.result("initialize")["capabilities"]
    assert set(caps) == {"tools", "resources", "prompts", "completions"}


def test_tools_are_listed_with_schemas(notes: Tenant) -> None:
    tools = {t["name"]: t for t in notes.result("tools/list")["tools"]}
    assert set(tools) == {
        "note_create",
        "note_get",
        "note_list",
        "note_search",
        "note_update",
        "note_delete",
    }
    assert tools["note_create"]["inputSchema"]["required"] == ["title", "body"]
    assert tools["note_delete"]["annotations"] == {"destructiveHint": True, "idempotentHint": True}
    assert tools["note_get"]["annotations"]["readOnlyHint"] is True


def test_create_get_round_trip_with_escaping(notes: Tenant) -> None:
    note_id = create(notes, "Title " + NASTY, NASTY, ["a", "ü-tag"])
    assert note_id == 1
    note = notes.tool("note_get", {"id": note_id})["structuredContent"]
    assert note == {
        "id": 1,
        "title": "Title " + NASTY,
        "body": NASTY,
        "tags": ["a", "ü-tag"],
        "created_ms": T0,
        "updated_ms": T0,
    }
    stored = json.loads(notes.host.kv["note:0000000001"])
    assert stored == note
    assert notes.host.kv["meta:next_id"] == "2"


def test_get_accepts_numeric_strings(notes: Tenant) -> None:
    create(notes, "one", "body")
    assert notes.tool("note_get", {"id": "1"})["structuredContent"]["title"] == "one"


@pytest.mark.parametrize("bad_id", [0, -4, 1.5, "x", "", "0", "12345678901", None, [1]])
def test_get_rejects_bad_ids(notes: Tenant, bad_id: object) -> None:
    result = notes.tool("note_get", {"id": bad_id})
    assert result["isError"] is True
    assert text_of(result).startswith("id must be a note id (a positive integer")


def test_missing_notes_are_tool_errors(notes: Tenant) -> None:
    for tool, args in [
        ("note_get", {"id": 9}),
        ("note_update", {"id": 9, "title": "x"}),
        ("note_delete", {"id": 9}),
    ]:
        result = notes.tool(tool, args)
        assert result["isError"] is True
        assert text_of(result) == "note 9 does not exist; note_list shows the ids"


def test_create_validates_arguments(notes: Tenant) -> None:
    cases = [
        ({"body": "b"}, "missing required argument 'title'"),
        ({"title": "t"}, "missing required argument 'body'"),
        ({"title": "", "body": "b"}, "title must not be empty"),
        ({"title": "x" * 201, "body": "b"}, "title is too long; the limit is 200 bytes"),
        ({"title": "t", "body": "b" * 100_001}, "body is too long"),
        ({"title": "t", "body": "b", "tags": "a"}, "tags must be an array"),
        ({"title": "t", "body": "b", "tags": [""]}, "tags must be an array"),
        ({"title": "t", "body": "b", "tags": ["x"] * 21}, "at most 20"),
        ({"title": "a\x00b", "body": "b"}, "must not contain NUL"),
    ]
    for args, message in cases:
        result = notes.tool("note_create", args)
        assert result["isError"] is True, args
        assert message in text_of(result), (args, text_of(result))
    assert notes.host.kv == {}


def test_ids_increase_and_skip_taken_ones(notes: Tenant) -> None:
    assert create(notes, "a", "") == 1
    assert create(notes, "b", "") == 2
    # A lost counter update (another instance wrote note 3 meanwhile) must not overwrite.
    notes.host.kv["note:0000000003"] = json.dumps({"id": 3, "title": "other", "body": ""})
    assert create(notes, "c", "") == 4
    assert notes.host.kv["meta:next_id"] == "5"


def test_update_keeps_a_change_another_call_made_between_its_read_and_its_write(
    notes: Tenant,
) -> None:
    note_id = create(notes, "title", "body")
    key = "note:0000000001"
    raced = []

    def another_call_changes_the_body(got: str) -> None:
        if got == key and not raced:
            raced.append(got)
            stored = json.loads(notes.host.kv[key])
            notes.host.kv[key] = json.dumps({**stored, "body": "theirs"})

    notes.host.after_kv_get = another_call_changes_the_body
    notes.tool("note_update", {"id": note_id, "title": "mine"})
    assert raced
    stored = json.loads(notes.host.kv[key])
    assert (stored["title"], stored["body"]) == ("mine", "theirs")


def test_create_never_overwrites_a_note_written_under_its_id(notes: Tenant) -> None:
    # The counter says 1 is next, but another writer already stored note 1 and 2.
    for taken in (1, 2):
        notes.host.kv[f"note:{taken:010d}"] = json.dumps({"id": taken, "title": "theirs"})
    assert create(notes, "mine", "") == 3
    assert json.loads(notes.host.kv["note:0000000001"])["title"] == "theirs"


def test_list_and_tag_filter(notes: Tenant) -> None:
    create(notes, "first", "1", ["work"])
    create(notes, "second", "2", ["home", "work"])
    create(notes, "third", "3")
    listing = notes.tool("note_list")["structuredContent"]
    assert listing["count"] == 3
    assert [n["title"] for n in listing["notes"]] == ["first", "second", "third"]
    assert listing["notes"][1] == {
        "id": 2,
        "title": "second",
        "tags": ["home", "work"],
        "updated_ms": T0,
    }
    work = notes.tool("note_list", {"tag": "work"})["structuredContent"]
    assert [n["id"] for n in work["notes"]] == [1, 2]
    assert notes.tool("note_list", {"tag": "none"})["structuredContent"]["count"] == 0


def test_list_orders_by_id_past_nine(notes: Tenant) -> None:
    for i in range(12):
        create(notes, f"n{i + 1}", "")
    ids = [n["id"] for n in notes.tool("note_list")["structuredContent"]["notes"]]
    assert ids == list(range(1, 13))


def test_search_is_case_insensitive_over_title_body_and_tags(notes: Tenant) -> None:
    create(notes, "Groceries", "Milk and EGGS", ["home"])
    create(notes, "Sprint plan", "ship the box", ["Work"])
    create(notes, "Misc", "nothing")

    def found(query: str) -> list[int]:
        result = notes.tool("note_search", {"query": query})["structuredContent"]
        assert result["query"] == query
        return [n["id"] for n in result["notes"]]

    assert found("eggs") == [1]
    assert found("SPRINT") == [2]
    assert found("work") == [2]
    assert found("i") == [1, 2, 3]
    assert found("zzz") == []
    assert notes.tool("note_search", {"query": ""})["isError"] is True


def test_update_changes_only_given_fields(notes: Tenant) -> None:
    create(notes, "old title", "old body", ["t"])
    notes.host.now_ms = T0 + 5_000
    updated = notes.tool("note_update", {"id": 1, "body": NASTY})
    assert updated["isError"] is False
    note = updated["structuredContent"]
    assert note["title"] == "old title"
    assert note["body"] == NASTY
    assert note["tags"] == ["t"]
    assert note["created_ms"] == T0
    assert note["updated_ms"] == T0 + 5_000
    note = notes.tool("note_update", {"id": 1, "title": "new", "tags": []})["structuredContent"]
    assert (note["title"], note["body"], note["tags"]) == ("new", NASTY, [])


def test_update_needs_something_to_change(notes: Tenant) -> None:
    create(notes, "t", "b")
    result = notes.tool("note_update", {"id": 1})
    assert result["isError"] is True
    assert "nothing to update" in text_of(result)
    result = notes.tool("note_update", {"id": 1, "title": ""})
    assert result["isError"] is True
    assert "title must not be empty" in text_of(result)


def test_delete(notes: Tenant) -> None:
    create(notes, "a", "")
    create(notes, "b", "")
    assert text_of(notes.tool("note_delete", {"id": 1})) == "deleted note 1"
    assert "note:0000000001" not in notes.host.kv
    assert [n["id"] for n in notes.tool("note_list")["structuredContent"]["notes"]] == [2]


def test_storage_errors_become_tool_errors(notes: Tenant) -> None:
    notes.host.kv_quota_bytes = 50
    result = notes.tool("note_create", {"title": "t", "body": "x" * 100})
    assert result["isError"] is True
    assert "storage quota" in text_of(result)
    notes.host.kv_quota_bytes = None
    notes.host.kv_fail = True
    result = notes.tool("note_create", {"title": "t", "body": "b"})
    assert result["isError"] is True
    assert "could not store the change" in text_of(result)


def test_state_lives_in_kv_not_in_the_instance() -> None:
    """A fresh instance over the same kv sees everything: instances may be discarded."""
    host = Host()
    create(Tenant(NOTES, host), "kept", "in kv")
    other = Tenant(NOTES, host)
    assert other.tool("note_get", {"id": 1})["structuredContent"]["body"] == "in kv"


def test_resources_list_and_read(notes: Tenant) -> None:
    create(notes, "Groceries", "- milk\n- eggs 🥚", ["home", "food"])
    notes.host.now_ms = T0 + 90_061_001
    notes.tool("note_update", {"id": 1, "title": "Groceries!"})
    create(notes, 'Quote "this"', "body")
    assert notes.result("resources/list")["resources"] == [
        {"uri": "note://1", "name": "note-1", "title": "Groceries!", "mimeType": "text/markdown"},
        {"uri": "note://2", "name": "note-2", "title": 'Quote "this"', "mimeType": "text/markdown"},
    ]
    contents = notes.result("resources/read", {"uri": "note://1"})["contents"]
    assert contents == [
        {
            "uri": "note://1",
            "mimeType": "text/markdown",
            "text": "# Groceries!\n\n- milk\n- eggs 🥚\n\n---\ntags: home, food\n"
            "created: 2025-11-24T16:00:00.000Z\nupdated: 2025-11-25T17:01:01.001Z\n",
        }
    ]


@pytest.mark.parametrize(
    "uri", ["note://9", "note://", "note://1x", "note://-1", "notes://1", "other", "note://0"]
)
def test_resources_read_unknown(notes: Tenant, uri: str) -> None:
    create(notes, "one", "")
    error = notes.error("resources/read", {"uri": uri})
    assert error["code"] == -32602
    assert error["data"] == {"uri": uri}
    assert uri in error["message"]


def test_resources_read_needs_a_uri(notes: Tenant) -> None:
    assert notes.error("resources/read", {})["code"] == -32602


def test_resource_template(notes: Tenant) -> None:
    assert notes.result("resources/templates/list")["resourceTemplates"] == [
        {
            "uriTemplate": "note://{id}",
            "name": "note",
            "title": "A note",
            "description": "One note rendered as Markdown, by id.",
            "mimeType": "text/markdown",
        }
    ]


def test_prompts_list(notes: Tenant) -> None:
    prompts = {p["name"]: p for p in notes.result("prompts/list")["prompts"]}
    assert set(prompts) == {"summarize_note", "daily_review"}
    assert prompts["summarize_note"]["arguments"] == [
        {"name": "id", "description": "The id of the note to summarize", "required": True}
    ]
    assert prompts["daily_review"]["arguments"] == []


def test_summarize_note_prompt_embeds_the_note(notes: Tenant) -> None:
    create(notes, "Plan", NASTY)
    result = notes.result("prompts/get", {"name": "summarize_note", "arguments": {"id": "1"}})
    assert result["description"].startswith("Asks for a bullet-point summary")
    [message] = result["messages"]
    assert message["role"] == "user"
    assert message["content"]["type"] == "text"
    assert "# Plan\n\n" + NASTY in message["content"]["text"]


def test_prompt_errors(notes: Tenant) -> None:
    create(notes, "Plan", "b")
    missing_arg = notes.error("prompts/get", {"name": "summarize_note"})
    assert missing_arg["code"] == -32602
    assert "'id'" in missing_arg["message"]
    missing_note = notes.error("prompts/get", {"name": "summarize_note", "arguments": {"id": "5"}})
    assert missing_note["code"] == -32602
    not_string = notes.error("prompts/get", {"name": "summarize_note", "arguments": {"id": 1}})
    assert not_string["code"] == -32602
    assert "must be a string" in not_string["message"]
    unknown = notes.error("prompts/get", {"name": "nope"})
    assert unknown["code"] == -32602
    assert "nope" in unknown["message"]


def test_daily_review_embeds_recent_notes_only(notes: Tenant) -> None:
    create(notes, "Old", "old body")
    notes.host.now_ms = T0 + 2 * 86_400_000
    create(notes, "Fresh", "fresh body")
    result = notes.result("prompts/get", {"name": "daily_review"})
    text = result["messages"][0]["content"]["text"]
    assert "# Fresh\n\nfresh body" in text
    assert "Old" not in text
    assert "now is 2025-11-26T16:00:00.000Z" in text
    notes.host.now_ms = T0 + 9 * 86_400_000
    text = notes.result("prompts/get", {"name": "daily_review"})["messages"][0]["content"]["text"]
    assert "No notes changed in the last 24 hours" in text


def test_completion_of_note_ids(notes: Tenant) -> None:
    for i in range(12):
        create(notes, f"n{i}", "")

    def complete(ref: dict[str, str], value: str) -> dict[str, Any]:
        params = {"ref": ref, "argument": {"name": "id", "value": value}}
        completion: dict[str, Any] = notes.result("completion/complete", params)["completion"]
        return completion

    prompt_ref = {"type": "ref/prompt", "name": "summarize_note"}
    assert complete(prompt_ref, "1") == {
        "values": ["1", "10", "11", "12"],
        "total": 4,
        "hasMore": False,
    }
    assert complete(prompt_ref, "")["total"] == 12
    template_ref = {"type": "ref/resource", "uri": "note://{id}"}
    assert complete(template_ref, "9")["values"] == ["9"]
    assert complete({"type": "ref/prompt", "name": "daily_review"}, "")["values"] == []


def test_completion_argument_errors(notes: Tenant) -> None:
    for params in [
        {},
        {"ref": {"type": "ref/prompt"}, "argument": {"name": "id", "value": ""}},
        {"ref": {"type": "ref/other", "name": "x"}, "argument": {"name": "id", "value": ""}},
        {"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "id"}},
    ]:
        assert notes.error("completion/complete", params)["code"] == -32602


def test_many_notes_many_requests_stay_within_memory(notes: Tenant) -> None:
    for i in range(40):
        create(notes, f"note {i}", "body " * 200, ["bulk"])
    notes.tool("note_list")
    pages = notes.memory_pages()
    for _ in range(50):
        notes.tool("note_search", {"query": "body"})
        notes.result("resources/list")
        notes.result("prompts/get", {"name": "daily_review"})
    assert notes.memory_pages() == pages
