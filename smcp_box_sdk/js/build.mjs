// Builds a staged JavaScript tenant into a component of the smcp:box world with componentize-js.
// `smcp-box build` runs it (smcp_box/ops/jsbuild.py) with the toolchain of package.json
// installed beside a copy of this file, and the tenant's sources staged in STAGE_DIR:
//
//     node build.mjs STAGE_DIR ENTRY WIT_DIR OUT.wasm
//
// ENTRY is relative to STAGE_DIR. TypeScript files (.ts, .mts) are turned into JavaScript first
// by Node's type stripping (types erased in place, so lines and columns stay; no enums or
// namespaces), and imports of ".ts"/".mts" files point at the results. Every import of the bare
// name "smcp-box-sdk" is pointed at STAGE_DIR/.smcp-box/smcp-box-sdk.js (the SDK, staged there
// by the build): componentize-js resolves relative imports only. The engine gets no wasi:http (the box
// refuses it at load), and keeps stdio, so an uncaught error's text reaches the box's error.

import { componentize } from "@bytecodealliance/componentize-js";
import { init, parse } from "es-module-lexer";
import { spawnSync } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { stripTypeScriptTypes } from "node:module";
import { dirname, join, relative, sep } from "node:path";

const SDK_NAME = "smcp-box-sdk";
const SDK_FILE = join(".smcp-box", "smcp-box-sdk.js");
const WORLD = "mcp-server";

const JAVASCRIPT = /\.m?js$/;
const TYPESCRIPT = /\.(m?)ts$/;

async function sources(dir, pattern = JAVASCRIPT) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await sources(path, pattern)));
    else if (pattern.test(entry.name) && !entry.name.endsWith(".d.ts")) found.push(path);
  }
  return found;
}

/** A .ts or .mts path's JavaScript twin (.js or .mjs). */
function javascriptName(path) {
  return path.replace(TYPESCRIPT, (_, m) => `.${m}js`);
}

async function stripTypes(stage) {
  for (const file of await sources(stage, TYPESCRIPT)) {
    if (typeof stripTypeScriptTypes !== "function") {
      throw new Error(
        `${relative(stage, file)}: building TypeScript needs Node.js 22.13 or newer ` +
          `(this is ${process.version}); compile it to JavaScript first or use a newer node`,
      );
    }
    let code;
    try {
      code = stripTypeScriptTypes(await readFile(file, "utf8"));
    } catch (error) {
      throw new Error(`${relative(stage, file)}: ${error.message}`);
    }
    await writeFile(javascriptName(file), code);
  }
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

async function rewriteImports(stage) {
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
      if (spec.s < 0 || spec.n === undefined) continue;
      let to;
      if (spec.n === SDK_NAME) to = target;
      else if (spec.n.startsWith(".") && TYPESCRIPT.test(spec.n)) to = javascriptName(spec.n);
      else continue;
      out += text.slice(at, spec.s) + to;
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
  process.removeAllListeners("warning"); // type stripping is "experimental" in Node 22
  await stripTypes(stage);
  await checkSyntax(stage);
  await rewriteImports(stage);
  process.chdir(stage);
  const { component } = await componentize({
    sourcePath: join(stage, javascriptName(entry)),
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
