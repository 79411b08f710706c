// Module resolution hooks for testing.mjs: the SDK and the host interface by their names.

const NAMES = {
  "smcp-box-sdk": "./smcp-box-sdk.js",
  "smcp-box-sdk/testing": "./testing-host.mjs",
  "smcp:box/host@1.0.0": "./testing-host.mjs",
};

export async function resolve(specifier, context, nextResolve) {
  const file = NAMES[specifier];
  if (file !== undefined) {
    return { url: new URL(file, import.meta.url).href, format: "module", shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
