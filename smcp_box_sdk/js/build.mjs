// Builds a staged JavaScript tenant into a component of the smcp:box world with componentize-js.
// `smcp-box build` runs it (smcp_box/ops/jsbuild.py) with the toolchain of package.json
// installed beside a copy of this file, and the tenant's sources staged in STAGE_DIR:
//
//     node build.mjs STAGE_DIR ENTRY WIT_DIR OUT.wasm
//
// ENTRY is relative to STAGE_DIR. Every import of the bare name "smcp-box-sdk" in the staged
// sources is pointed at STAGE_DIR/.smcp-box/smcp-box-sdk.js (the SDK, staged there by the build)
// first: componentize-js resolves relative imports only. The engine gets no wasi:http (the box
// refuses it at load), and keeps stdio, so an uncaught error's text reaches the box's error.

import { componentize } from "@bytecodealliance/componentize-js";
import { init, parse } from "es-module-lexer";
import { spawnSync } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";

const SDK_NAME = "smcp-box-sdk";
const SDK_FILE = join(".smcp-box", "smcp-box-sdk.js");
const WORLD = "mcp-server";

async function sources(dir) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await sources(path)));
    else if (/\.m?js$/.test(entry.name)) found.push(path);
  }
  return found;
}

// componentize-js reports a syntax error as "failed to parse JS source" without saying where;
// node --check says the file, the line and the problem. The staged package.json makes Node
// parse every .js file as an ES module, as the engine will.
async function checkSyntax(stage) {
  await writeFile(join(stage, "package.json"), '{"type": "module"}\n');
  for (const file of await sources(stage)) {
    const checked = spawnSync(process.execPath, ["--check", file], { encoding: "utf8" });
    if (checked.status !== 0) {
      const said = checked.stderr.split(`${stage}${sep}`).join("");
      throw new Error(said.split("\n    at ")[0].trim()); // the problem, not node's own stack
    }
  }
}

async function pointAtSdk(stage) {
  await init;
  const sdk = join(stage, SDK_FILE);
  for (const file of await sources(stage)) {
    if (file === sdk) continue;
    const text = await readFile(file, "utf8");
    let imports;
    try {
      [imports] = parse(text, file);
    } catch (error) {
      throw new Error(`${relative(stage, file)}: not a valid ES module: ${error.message}`);
    }
    let target = relative(dirname(file), sdk).split(sep).join("/");
    if (!target.startsWith(".")) target = `./${target}`;
    let out = "";
    let at = 0;
    for (const spec of imports) {
      if (spec.n !== SDK_NAME || spec.s < 0) continue;
      out += text.slice(at, spec.s) + target;
      at = spec.e;
    }
    if (at > 0) await writeFile(file, out + text.slice(at));
  }
}

async function main() {
  const [stage, entry, witDir, out] = process.argv.slice(2);
  if (!out) {
    console.error("usage: node build.mjs STAGE_DIR ENTRY WIT_DIR OUT.wasm");
    process.exit(2);
  }
  await checkSyntax(stage);
  await pointAtSdk(stage);
  process.chdir(stage);
  const { component } = await componentize({
    sourcePath: join(stage, entry),
    witPath: witDir,
    worldName: WORLD,
    disableFeatures: ["http", "fetch-event"],
  });
  await writeFile(out, component);
}

main().catch((error) => {
  console.error(error && error.message ? error.message : String(error));
  process.exit(1);
});
