// jsnotes: a notebook tenant written in JavaScript with smcp-box's JS tenant SDK.
//
// Shows each kind of MCP feature a component tenant can offer: tools (with JSON Schemas given
// explicitly, one reporting progress), a resource and a resource template, a prompt, and kv
// persistence (notes survive instance recycling and box restarts).

import { App, ToolError, config, kv, nowMs } from "smcp-box-sdk";
import { noteLine, tagsOf } from "./format.js";

const app = new App("jsnotes", {
  version: "1.0.0",
  instructions: "A notebook. Add notes with #tags, list and search them.",
});

const NOTE_SCHEMA = {
  type: "object",
  properties: {
    id: { type: "integer" },
    text: { type: "string" },
    tags: { type: "array", items: { type: "string" } },
    created_ms: { type: "integer" },
  },
  required: ["id", "text", "tags", "created_ms"],
};

function load(id) {
  const note = kv.getJson(`note:${id}`);
  if (note === undefined) throw new ToolError(`no note ${id}`);
  return note;
}

function allNotes() {
  const ids = kv
    .keys("note:")
    .map((key) => Number(key.slice("note:".length)))
    .sort((a, b) => a - b);
  return ids.map(load);
}

app.tool(
  "add_note",
  {
    description: "Add a note; words starting with # become its tags.",
    inputSchema: {
      type: "object",
      properties: { text: { type: "string", description: "The note's text" } },
      required: ["text"],
    },
    outputSchema: NOTE_SCHEMA,
  },
  ({ text }) => {
    if (!text.trim()) throw new ToolError("the note is empty");
    const id = kv.incr("last_id"); // atomic: parallel calls never get the same id
    const note = { id, text: text.trim(), tags: tagsOf(text), created_ms: nowMs() };
    kv.setJson(`note:${id}`, note);
    return note;
  },
);

app.tool(
  "list_notes",
  {
    description: "List the notes, oldest first, optionally only those with a tag.",
    inputSchema: {
      type: "object",
      properties: { tag: { type: "string", description: "Only notes with this tag" } },
    },
  },
  ({ tag }) => ({ notes: allNotes().filter((note) => !tag || note.tags.includes(tag)) }),
);

app.tool(
  "delete_note",
  {
    description: "Delete a note.",
    inputSchema: { type: "object", properties: { id: { type: "integer" } }, required: ["id"] },
    annotations: { destructiveHint: true },
  },
  ({ id }) => {
    load(id);
    kv.delete(`note:${id}`);
    return `deleted note ${id}`;
  },
);

app.tool(
  "reindex",
  {
    title: "Rebuild the tag index",
    description: "Go through the notes in a few batches, reporting progress after each.",
    inputSchema: {
      type: "object",
      properties: { batches: { type: "integer", default: 3, description: "How many batches" } },
    },
  },
  ({ batches = 3 }, ctx) => {
    if (batches < 1 || batches > 20) throw new ToolError("batches must be between 1 and 20");
    const index = {};
    const notes = allNotes();
    for (let batch = 1; batch <= batches; batch++) {
      const size = Math.ceil(notes.length / batches);
      for (const note of notes.slice((batch - 1) * size, batch * size)) {
        for (const tag of note.tags) index[tag] = (index[tag] ?? 0) + 1;
      }
      ctx.progress(batch, batches, `batch ${batch} of ${batches}`);
    }
    kv.setJson("tag_index", index);
    return `indexed ${notes.length} note(s) in ${batches} batches`;
  },
);

app.resource(
  "notes://all",
  { name: "all", description: "Every note as Markdown.", mimeType: "text/markdown" },
  () => [`# ${config("title", "Notes")}`, "", ...allNotes().map(noteLine), ""].join("\n"),
);

app.resource(
  "notes://note/{id}",
  { name: "note", description: "One note as JSON.", mimeType: "application/json" },
  ({ id }) => {
    const note = kv.getJson(`note:${id}`);
    if (note === undefined) throw new Error(`no note ${id}`);
    return note;
  },
);

app.prompt(
  "summarize",
  {
    description: "Summarize the notes, optionally only those with a tag.",
    arguments: [
      { name: "style", description: "How to write the summary", required: true },
      { name: "tag", description: "Only notes with this tag" },
    ],
  },
  ({ style, tag }) => {
    const notes = allNotes().filter((note) => !tag || note.tags.includes(tag));
    const listed = notes.map((note) => note.text).join("; ") || "no notes yet";
    return `Summarize my notes in a ${style} style. Notes: ${listed}.`;
  },
);

// The world's one export: every JSON-RPC message the box passes in, its reply out.
export function handle(message) {
  return app.handle(message);
}
