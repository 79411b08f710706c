// The JS SDK's task API (docs/tasks.md) in plain Node: taskSupport in the tool definition,
// ctx.taskId and ctx.mayEscalate from the box's _meta, Escalate's reply and its error, and
// sleepMs through the world's sleep-ms import. Mirrors tests/sdk/test_python_sdk.py.

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { App, Escalate, TASK_META_KEY, sleepMs } from "smcp-box-sdk";
import { MemoryHost, escalationMeta, taskMeta, useBackend } from "smcp-box-sdk/testing";

let host;
let nextId = 0;

beforeEach(() => {
  host = useBackend(new MemoryHost({ nowMs: 1_800_000_000_000 }));
});

function call(app, method, params) {
  return JSON.parse(app.handle(JSON.stringify({ jsonrpc: "2.0", id: ++nextId, method, params })));
}

/** A tool that escalates when it may, and in its task sleeps `steps` times before answering. */
function buildApp(taskSupport = "optional") {
  const app = new App("builder");
  app.tool(
    "build",
    {
      description: "Build slowly.",
      inputSchema: { type: "object", properties: { steps: { type: "integer" } } },
      taskSupport,
    },
    ({ steps = 1 }, ctx) => {
      if (ctx.mayEscalate) throw new Escalate();
      for (let i = 0; i < steps; i++) sleepMs(250);
      return { built: true, task: ctx.taskId };
    },
  );
  app.tool("plain", { description: "No tasks." }, (_args, ctx) => {
    throw new Escalate(`cannot ${ctx.taskId}`);
  });
  return app;
}

test("taskSupport becomes execution.taskSupport, as in the Python SDK", () => {
  for (const support of ["optional", "required"]) {
    const { tools } = call(buildApp(support), "tools/list", {}).result;
    assert.deepEqual(tools[0].execution, { taskSupport: support });
    assert.equal("execution" in tools[1], false);
  }
  assert.throws(
    () => new App("x").tool("t", { taskSupport: "always" }, () => ""),
    new TypeError('tool t: taskSupport must be "optional", "required" or undefined, not "always"'),
  );
});

test("Escalate on a call the box allows answers resultType task", () => {
  const app = buildApp();
  assert.equal(TASK_META_KEY, "smcp-box/task");
  const reply = call(app, "tools/call", { name: "build", arguments: {}, _meta: escalationMeta() });
  assert.deepEqual(reply.result, { resultType: "task" });
  assert.deepEqual(host.sleeps, []);
});

test("the task's background call sees ctx.taskId and sleeps through the host", () => {
  const app = buildApp();
  const params = { name: "build", arguments: { steps: 3 }, _meta: taskMeta("t-1") };
  const reply = call(app, "tools/call", params);
  assert.deepEqual(reply.result.structuredContent, { built: true, task: "t-1" });
  assert.deepEqual(host.sleeps, [250, 250, 250]);
  assert.equal(host.nowMs, 1_800_000_000_750);
  const plain = call(app, "tools/call", { name: "build", arguments: {} });
  assert.deepEqual(plain.result.structuredContent, { built: true, task: null });
});

test("Escalate where the call cannot become a task is a JSON-RPC error naming the tool", () => {
  const app = buildApp();
  for (const meta of [undefined, taskMeta("t-2"), { [TASK_META_KEY]: "allowed" }]) {
    const reply = call(app, "tools/call", { name: "plain", arguments: {}, _meta: meta });
    assert.deepEqual(reply.error, {
      code: -32603,
      message:
        "tool 'plain' asked to run as a task, but this call cannot become one " +
        "(check ctx.mayEscalate first)",
    });
  }
});

test("sleepMs takes a whole non-negative number of milliseconds", () => {
  sleepMs(0);
  sleepMs(5n);
  assert.deepEqual(host.sleeps, [0, 5]);
  for (const bad of [-1, 1.5, "10", NaN]) {
    assert.throws(() => sleepMs(bad), RangeError);
  }
  assert.deepEqual(host.sleeps, [0, 5]);
});
