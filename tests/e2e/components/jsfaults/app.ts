// A component tenant that misbehaves on request, for the fault tests. Written in TypeScript,
// so the session's build also covers the type stripping; its helper is in a second .ts file.

import {
  App,
  BlobError,
  blobs,
  config,
  kv,
  KvError,
  log,
  nowMs,
  randomBytes,
} from "smcp-box-sdk";
import { NO_ARGUMENTS, type Chunk } from "./schemas.ts";
import { Escalate, sleepMs } from "smcp-box-sdk";

const app = new App("jsfaults", { version: "1.0.0" });

app.tool("ok", { description: "Answer normally.", inputSchema: NO_ARGUMENTS }, () => "still serving");

app.tool(
  "spin",
  { description: "Loop forever: ends at the fuel or wall-clock limit.", inputSchema: NO_ARGUMENTS },
  () => {
    let n: number = 0;
    for (;;) n += 1;
  },
);

app.tool(
  "hog",
  { description: "Allocate until the memory limit.", inputSchema: NO_ARGUMENTS },
  () => {
    const chunks: Chunk[] = [];
    for (;;) chunks.push(new Uint8Array(1 << 20).fill(1));
  },
);

app.tool(
  "boom",
  { description: "Throw an ordinary error: the SDK answers with a JSON-RPC error.", inputSchema: NO_ARGUMENTS },
  () => {
    throw new RangeError("boom from the tenant");
  },
);

app.tool(
  "crash",
  { description: "Throw past the SDK (see handle below).", inputSchema: NO_ARGUMENTS },
  () => "never reached",
);

// Not a fault: the SDK's host helpers, each once, for test_js_sdk_host_helpers.
app.tool(
  "host",
  { description: "Exercise the SDK's host helpers.", inputSchema: NO_ARGUMENTS },
  () => {
    const stamp = String(nowMs());
    const cas = [kv.cas(`cas:${stamp}`, undefined, "1"), kv.cas(`cas:${stamp}`, undefined, "2")];
    kv.set("word", "abc");
    let incrWord = "";
    try {
      kv.incr("word");
    } catch (error) {
      incrWord = error instanceof KvError ? error.reason : String(error);
    }
    log("host helpers ran");
    return {
      cas,
      casValue: kv.get(`cas:${stamp}`),
      incr: kv.incr(`n:${stamp}`, 2) + kv.incr(`n:${stamp}`, 3),
      incrWord,
      random: randomBytes(16).length,
      config: config("missing", "fallback"),
      fallback: kv.get("no such key", "default"),
      json: (kv.setJson(`j:${stamp}`, { a: [1, 2] }), kv.getJson(`j:${stamp}`)),
    };
  },
);

// Not a fault: the SDK's task API (docs/tasks.md), for test_js_task_runs_in_the_background.
// It escalates when the box allows it; otherwise (unnegotiated, or the task's background call)
// it sleeps through the sleep-ms import and names the task it ran for.
app.tool(
  "nap",
  {
    description: "Sleep ms milliseconds, as a task when the client supports tasks.",
    inputSchema: { type: "object", properties: { ms: { type: "integer" } }, required: ["ms"] },
    taskSupport: "optional",
  },
  ({ ms }: { ms: number }, ctx: { mayEscalate: boolean; taskId: string | null }) => {
    if (ctx.mayEscalate) throw new Escalate();
    sleepMs(ms);
    return `slept ${ms} ms in task ${ctx.taskId}`;
  },
);

// Not a fault: the SDK's blobs through a real component, for test_js_sdk_blobs_*.
app.tool(
  "keep",
  {
    description: "Write a blob in pieces (piece k is the byte k+1 repeated), stat, list and read it back.",
    inputSchema: {
      type: "object",
      properties: { name: { type: "string" }, size: { type: "integer" } },
      required: ["name", "size"],
    },
  },
  ({ name, size }: { name: string; size: number }) => {
    const writer = blobs.openWrite(name, "application/octet-stream");
    for (let start = 0, k = 1; start < size; start += 300_000, k += 1) {
      writer.write(new Uint8Array(Math.min(300_000, size - start)).fill(k));
    }
    writer.close();
    const reader = blobs.openRead(name);
    const pieces: number[] = [];
    for (const piece of reader) pieces.push(piece.length);
    reader.close();
    let missing = "found";
    try {
      blobs.openRead("no/such/blob");
    } catch (error) {
      missing = error instanceof BlobError ? error.reason : String(error);
    }
    blobs.write("scratch.txt", "to delete ✓", "text/plain");
    return {
      stat: blobs.stat(name),
      listed: blobs.list("").map((blob: { name: string }) => blob.name),
      pieces,
      text: blobs.readText("scratch.txt"),
      deleted: [blobs.delete("scratch.txt"), blobs.delete("scratch.txt")],
      missing,
    };
  },
);

app.resource(
  "faults://blob",
  { name: "blob", mimeType: "application/octet-stream" },
  () => new Uint8Array([0, 1, 2, 255]),
);

// "crash" is thrown past the SDK, out of the export: the component traps and the box quotes
// the error's message from the engine's stderr.
export function handle(message: string): string {
  const request: { method?: string; params?: { name?: string } } = JSON.parse(message);
  if (request.method === "tools/call" && request.params?.name === "crash") {
    throw new Error("crash from the tenant");
  }
  return app.handle(message);
}
