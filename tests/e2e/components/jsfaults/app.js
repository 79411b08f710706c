// A JavaScript component tenant that misbehaves on request, for the fault tests.

import { App } from "smcp-box-sdk";

const app = new App("jsfaults", { version: "1.0.0" });
const NO_ARGUMENTS = { type: "object", properties: {} };

app.tool("ok", { description: "Answer normally.", inputSchema: NO_ARGUMENTS }, () => "still serving");

app.tool(
  "spin",
  { description: "Loop forever: ends at the fuel or wall-clock limit.", inputSchema: NO_ARGUMENTS },
  () => {
    let n = 0;
    for (;;) n += 1;
  },
);

app.tool(
  "hog",
  { description: "Allocate until the memory limit.", inputSchema: NO_ARGUMENTS },
  () => {
    const chunks = [];
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

// "crash" is thrown past the SDK, out of the export: the component traps and the box quotes
// the error's message from the engine's stderr.
export function handle(message) {
  const request = JSON.parse(message);
  if (request.method === "tools/call" && request.params.name === "crash") {
    throw new Error("crash from the tenant");
  }
  return app.handle(message);
}
