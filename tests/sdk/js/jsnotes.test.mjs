// The JS tenant SDK and the jsnotes example in plain Node, through smcp_box_sdk/js/testing.mjs:
// the dispatch and its error shapes (the Python SDK's), without building a component.
// tests/sdk/test_js_sdk.py runs this file with `node --import .../testing.mjs --test`.

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { App, KvError, ToolError, kv } from "smcp-box-sdk";
import { MemoryHost, useBackend } from "smcp-box-sdk/testing";

import { handle } from "../../../tenants/js/jsnotes/app.js";

let host;
let nextId = 0;

beforeEach(() => {
  host = useBackend(new MemoryHost({ config: { title: "Test notes" }, nowMs: 1_800_000_000_000 }));
});

function call(method, params = undefined, app = { handle }) {
  const message = { jsonrpc: "2.0", id: ++nextId, method };
  if (params !== undefined) message.params = params;
  return JSON.parse(app.handle(JSON.stringify(message)));
}

test("initialize says what the app offers", () => {
  const { result } = call("initialize", { protocolVersion: "2025-06-18" });
  assert.equal(result.protocolVersion, "2025-06-18");
  assert.deepEqual(result.capabilities, { tools: {}, resources: { subscribe: true }, prompts: {} });
  assert.deepEqual(result.serverInfo, { name: "jsnotes", version: "1.0.0" });
});

test("a tool call keeps state in kv and answers with structured content", () => {
  const added = call("tools/call", { name: "add_note", arguments: { text: "plant #Seeds" } });
  assert.deepEqual(added.result.structuredContent, {
    id: 1,
    text: "plant #Seeds",
    tags: ["seeds"],
    created_ms: 1_800_000_000_000,
  });
  assert.equal(host.kv.get("last_id"), "1");
  const text = call("resources/read", { uri: "notes://all" }).result.contents[0].text;
  assert.equal(text, "# Test notes\n\n- plant #Seeds (#1)\n");
});

test("arguments are checked against the schema, with the Python SDK's texts", () => {
  const cases = [
    [{}, "missing argument 'text'"],
    [{ text: 3 }, "argument 'text' must be of type string"],
    [{ text: "x", extra: 1 }, "unknown argument 'extra'"],
  ];
  for (const [args, text] of cases) {
    const { result } = call("tools/call", { name: "add_note", arguments: args });
    assert.deepEqual(result, { content: [{ type: "text", text }], isError: true });
  }
  const unknown = call("tools/call", { name: "nope", arguments: {} });
  assert.deepEqual(unknown.error, { code: -32602, message: "unknown tool: 'nope'" });
});

test("progress goes to the caller only when it sent a token", () => {
  call("tools/call", { name: "reindex", arguments: { batches: 2 } });
  assert.deepEqual(host.notifications, []);
  call("tools/call", { name: "reindex", arguments: { batches: 2 }, _meta: { progressToken: "t" } });
  assert.deepEqual(
    host.notifications.map((n) => [n.method, n.params.progress, n.params.total]),
    [
      ["notifications/progress", 1, 2],
      ["notifications/progress", 2, 2],
    ],
  );
});

test("resource templates, prompts and their errors", () => {
  call("tools/call", { name: "add_note", arguments: { text: "one" } });
  const one = call("resources/read", { uri: "notes://note/1" }).result.contents[0];
  assert.equal(JSON.parse(one.text).text, "one");
  assert.equal(one.mimeType, "application/json");
  const missing = call("resources/read", { uri: "notes://other" });
  assert.deepEqual(missing.error.data, { uri: "notes://other" });
  const prompt = call("prompts/get", { name: "summarize", arguments: { style: "short" } });
  assert.match(prompt.result.messages[0].content.text, /in a short style\. Notes: one\./);
  const noStyle = call("prompts/get", { name: "summarize", arguments: {} });
  assert.deepEqual(noStyle.error, { code: -32602, message: "prompt 'summarize' needs argument 'style'" });
});

test("notifications and responses get the empty reply; bad JSON a parse error", () => {
  assert.equal(handle('{"jsonrpc":"2.0","method":"notifications/initialized"}'), "");
  assert.equal(handle('{"jsonrpc":"2.0","id":5,"result":{}}'), "");
  assert.equal(JSON.parse(handle("{")).error.code, -32700);
  assert.equal(call("no/such").error.code, -32601);
});

test("errors: ToolError and KvError fail the tool, others name themselves", () => {
  const app = new App("errors");
  const schema = { type: "object", properties: {} };
  app.tool("refuse", { inputSchema: schema }, () => {
    throw new ToolError("not today");
  });
  app.tool("full", { inputSchema: schema }, () => kv.set("full", "x"));
  app.tool("bug", { inputSchema: schema }, () => null.field);
  app.resource("e://blob", {}, () => new Uint8Array([0, 1, 2, 255]));
  host.fullKeys.add("full");
  assert.equal(call("tools/call", { name: "refuse" }, app).result.content[0].text, "not today");
  assert.equal(
    call("tools/call", { name: "full" }, app).result.content[0].text,
    "kv write failed: quota-exceeded",
  );
  const bug = call("tools/call", { name: "bug" }, app).error;
  assert.equal(bug.code, -32603);
  assert.match(bug.message, /^TypeError: /);
  assert.equal(host.logs[0][0], "error"); // with its stack, in the box's log
  assert.equal(call("resources/read", { uri: "e://blob" }, app).result.contents[0].blob, "AAEC/w==");
  assert.throws(() => kv.incr("full"), KvError);
});
