// {{name}}: an MCP server that runs as a sandboxed smcp-box component.
//
// Build and pin it with `smcp-box build .`, check it with `smcp-box vet .`, then copy the folder
// into the box's tenants folder (or add it with `smcp-box tenant add`).

import { App, ToolError, kv } from "smcp-box-sdk";

const app = new App("{{name}}", { version: "0.1.0" });

app.tool(
  "greet",
  {
    description: "Say hello, and count how often each name was greeted (kept in kv).",
    inputSchema: {
      type: "object",
      properties: { name: { type: "string", description: "Who to greet" } },
      required: ["name"],
    },
  },
  ({ name }) => {
    if (!name) throw new ToolError("name is empty");
    const count = kv.incr(`greeted:${name}`);
    return `Hello, ${name}! (greeting number ${count})`;
  },
);

app.tool(
  "countdown",
  {
    description: "Count down, reporting progress at each step.",
    inputSchema: {
      type: "object",
      properties: { start: { type: "integer", default: 3 } },
    },
  },
  ({ start = 3 }, ctx) => {
    for (let step = start; step > 0; step--) {
      ctx.progress(start - step + 1, start, `${step}...`);
    }
    return "liftoff";
  },
);

app.resource(
  "{{name}}://about",
  { name: "about", description: "What this tenant is." },
  () => "{{name}}, built from the smcp-box JavaScript template.",
);

app.prompt(
  "introduce",
  {
    description: "Ask for a short introduction to a topic.",
    arguments: [{ name: "topic", required: true }],
  },
  ({ topic }) => `Introduce ${topic} in three sentences.`,
);

// The world's one export: every JSON-RPC message the box passes in, its reply out.
export function handle(message) {
  return app.handle(message);
}
