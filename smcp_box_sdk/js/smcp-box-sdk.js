// smcp-box's JavaScript tenant SDK: an MCP server that runs as a sandboxed component.
//
// It runs inside the component that componentize-js builds against the smcp:box world
// (../wit/smcp-box.wit), never in the box: it imports only the world's host interface. A tenant
// imports it as "smcp-box-sdk"; `smcp-box build` points that name at this file.
//
//     import { App, blobs, kv } from "smcp-box-sdk";
//     const app = new App("hello", { version: "1.0.0" });
//     app.tool("greet", {
//       description: "Say hello.",
//       inputSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
//     }, ({ name }) => `hello ${name}`);
//     export function handle(message) { return app.handle(message); }
//
// JavaScript has no type hints: a tool's input schema is given as a JSON Schema object, and its
// arguments are checked against it (required, unknown, type and enum of each property) before
// the tool runs, with the same error texts as the Python SDK (smcp_box_sdk/app.py), whose
// dispatch this mirrors. The module's top level runs while the component is built (it is
// snapshotted), where there is no host: call kv, blobs, config, log and notify only from
// handlers.

import * as host from "smcp:box/host@1.0.0";

/** The newest handshake revision this SDK knows; the box negotiates clients' versions itself. */
export const LATEST_PROTOCOL_VERSION = "2025-11-25";
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;

/** Throw from a tool to fail it on its own terms: the client sees isError and the text. */
export class ToolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ToolError";
  }
}

/** Throw to answer the request with a JSON-RPC error. */
export class RpcError extends Error {
  constructor(code, message, data = undefined) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}

/** Throw from a tool registered with taskSupport to run this call as a durable task
 * (docs/tasks.md): the box answers the client with a task id and calls the tool again in the
 * background, where ctx.taskId is set. Only when ctx.mayEscalate; otherwise the call fails with
 * a JSON-RPC error. */
export class Escalate extends Error {
  constructor(message = "run this call as a task") {
    super(message);
    this.name = "Escalate";
  }
}

/** The _meta key through which the box tells a tool call about tasks (docs/tasks.md). */
export const TASK_META_KEY = "smcp-box/task";

/** A kv write failed: reason is "quota-exceeded", "storage-failure" or "not-an-integer". */
export class KvError extends Error {
  constructor(reason) {
    super(`kv write failed: ${reason}`);
    this.name = "KvError";
    this.reason = reason;
  }
}

// componentize-js throws an Error whose payload is the WIT kv-error case for an err result.
function kvWrite(call) {
  try {
    return call();
  } catch (error) {
    if (error instanceof KvError) throw error;
    if (error && typeof error.payload === "string") throw new KvError(error.payload);
    throw error;
  }
}

/** The tenant's key-value store: persisted and encrypted by the box, per tenant. */
export const kv = {
  get(key, fallback = undefined) {
    const value = host.kvGet(key);
    return value === undefined || value === null ? fallback : value;
  },
  /** Throws KvError when the tenant's quota is exceeded or the store fails. */
  set(key, value) {
    kvWrite(() => host.kvSet(key, String(value)));
  },
  delete(key) {
    kvWrite(() => host.kvDelete(key));
  },
  /** Set key to value only if it now holds expected (undefined: only if absent); true if
   * written. The way to update a value that parallel calls also update. */
  cas(key, expected, value) {
    const current = expected === undefined || expected === null ? undefined : String(expected);
    return Boolean(kvWrite(() => host.kvCas(key, current, String(value))));
  },
  /** Atomically add delta to the decimal integer under key (absent counts as 0); the new value
   * (a Number). KvError("not-an-integer") if the value is not one. */
  incr(key, delta = 1) {
    return Number(kvWrite(() => host.kvIncr(key, BigInt(delta))));
  },
  keys(prefix = "") {
    return Array.from(host.kvList(prefix));
  },
  getJson(key, fallback = undefined) {
    const value = this.get(key);
    return value === undefined ? fallback : JSON.parse(value);
  },
  setJson(key, value) {
    this.set(key, JSON.stringify(value));
  },
};

/** A blob call failed: reason is "quota-exceeded", "storage-failure", "not-found",
 * "invalid-name" or "bad-handle" (the WIT blob-error case; docs/abi.md 2.8). */
export class BlobError extends Error {
  constructor(reason) {
    super(`blob call failed: ${reason}`);
    this.name = "BlobError";
    this.reason = reason;
  }
}

function blobCall(call) {
  try {
    return call();
  } catch (error) {
    if (error instanceof BlobError) throw error;
    if (error && typeof error.payload === "string") throw new BlobError(error.payload);
    throw error;
  }
}

/** The most bytes one blob read or write moves (the box refuses more); larger writes are split. */
export const BLOB_PIECE_BYTES = 1024 * 1024;
const DEFAULT_CONTENT_TYPE = "application/octet-stream";

function blobBytes(data) {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("blob data must be a string, a Uint8Array or an ArrayBuffer");
}

/** A new version of one blob: write() pieces, close() commits them all at once. One never
 * closed is abandoned when the call ends, and the old blob stays. */
export class BlobWriter {
  constructor(handle) {
    this.handle = handle;
    this.closed = false;
  }
  /** Append a string (UTF-8) or bytes, at most BLOB_PIECE_BYTES per host call. */
  write(data) {
    const bytes = blobBytes(data);
    for (let start = 0; start < bytes.length; start += BLOB_PIECE_BYTES) {
      const piece = bytes.subarray(start, start + BLOB_PIECE_BYTES);
      blobCall(() => host.blobWrite(this.handle, piece));
    }
  }
  /** Commit: the blob changes now. */
  close() {
    if (this.closed) return;
    this.closed = true;
    blobCall(() => host.blobClose(this.handle));
  }
}

/** The version of one blob current when it was opened: read() pieces, or iterate. */
export class BlobReader {
  constructor(handle) {
    this.handle = handle;
    this.closed = false;
  }
  /** The next bytes, at most size (and BLOB_PIECE_BYTES); an empty Uint8Array at the end. */
  read(size = BLOB_PIECE_BYTES) {
    const max = Math.max(0, Math.min(size, BLOB_PIECE_BYTES));
    return blobCall(() => host.blobRead(this.handle, max));
  }
  *[Symbol.iterator]() {
    for (let piece = this.read(); piece.length > 0; piece = this.read()) yield piece;
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    blobCall(() => host.blobClose(this.handle));
  }
}

/** The tenant's blobs: files kept by the box beside kv, read and written a piece at a time
 * (docs/abi.md 2.8). Every failure throws BlobError. */
export const blobs = {
  /** Start a new version of blob name (seen by nobody until the writer's close()). */
  openWrite(name, contentType = DEFAULT_CONTENT_TYPE) {
    return new BlobWriter(blobCall(() => host.blobOpen(name, true, contentType)));
  },
  /** Open blob name for reading; BlobError("not-found") if there is none. */
  openRead(name) {
    return new BlobReader(blobCall(() => host.blobOpen(name, false, "")));
  },
  /** Replace blob name with data (a string, UTF-8, or bytes). */
  write(name, data, contentType = DEFAULT_CONTENT_TYPE) {
    const writer = this.openWrite(name, contentType);
    writer.write(data);
    writer.close();
  },
  /** Blob name whole, as a Uint8Array; for large ones iterate openRead(name) instead. */
  readBytes(name) {
    const reader = this.openRead(name);
    try {
      const pieces = [...reader];
      const out = new Uint8Array(pieces.reduce((total, piece) => total + piece.length, 0));
      let at = 0;
      for (const piece of pieces) {
        out.set(piece, at);
        at += piece.length;
      }
      return out;
    } finally {
      reader.close();
    }
  },
  /** Blob name whole, decoded as UTF-8. */
  readText(name) {
    return new TextDecoder().decode(this.readBytes(name));
  },
  /** { name, size, contentType, sha256, updatedAt }, or undefined if there is no such blob. */
  stat(name) {
    const text = blobCall(() => host.blobStat(name));
    return text === undefined || text === null ? undefined : JSON.parse(text);
  },
  /** The metadata of the blobs whose names start with prefix, sorted by name. */
  list(prefix = "") {
    return JSON.parse(blobCall(() => host.blobList(prefix)));
  },
  /** Remove blob name; true if there was one. */
  delete(name) {
    return Boolean(blobCall(() => host.blobDelete(name)));
  },
};

/** A value of the tenant's tenant.toml [config] table. */
export function config(key, fallback = undefined) {
  const value = host.configGet(key);
  return value === undefined || value === null ? fallback : value;
}

/** A line in the box's log (journald), tagged with the tenant; never sent to the client. */
export function log(message, level = "info") {
  host.log(level, String(message));
}

/** A JSON-RPC notification to the caller's stream (e.g. "notifications/message"). */
export function notify(method, params = undefined) {
  const message = { jsonrpc: "2.0", method };
  if (params !== undefined) message.params = params;
  host.notify(JSON.stringify(message));
}

/** length (at most 65536) bytes from the box's CSPRNG, as a Uint8Array. */
export function randomBytes(length) {
  return host.randomBytes(length);
}

/** Wait ms milliseconds without using a processor (the sleep-ms import); the call's wall-clock
 * limit still counts (a sleep past it ends the call) and a cancelled task stops it. */
export function sleepMs(ms) {
  const whole = typeof ms === "bigint" || Number.isInteger(ms);
  if (!whole || ms < 0) {
    throw new RangeError(`sleepMs needs a non-negative whole number of milliseconds, not ${ms}`);
  }
  host.sleepMs(BigInt(ms));
}

/** Wall-clock time in milliseconds since the Unix epoch, from the box. */
export function nowMs() {
  return Number(host.timeNowMs());
}

/** What a handler can ask about its request: progress and logs for the caller, and whether it
 * runs as a task. Every tool, resource and prompt handler gets one as its second argument. */
export class Context {
  constructor(meta) {
    this.meta = meta;
    /** The client's progress token, when it asked for progress. */
    this.progressToken = meta.progressToken;
    const task = isObject(meta[TASK_META_KEY]) ? meta[TASK_META_KEY] : {};
    /** The task this call runs for (the box's background call), else null. */
    this.taskId = typeof task.taskId === "string" ? task.taskId : null;
    /** Whether throwing Escalate may turn this call into a task: the client negotiated tasks
     * and the tool declared taskSupport. */
    this.mayEscalate = task.escalate === "allowed";
  }

  /** A notifications/progress to the caller (nothing when it sent no token). */
  progress(progress, total = undefined, message = "") {
    if (this.progressToken === undefined || this.progressToken === null) return;
    const params = { progressToken: this.progressToken, progress };
    if (total !== undefined && total !== null) params.total = total;
    if (message) params.message = message;
    notify("notifications/progress", params);
  }

  /** A notifications/message to the caller (the box drops it below the client's level). */
  log(data, level = "info", logger = undefined) {
    const params = { level, data };
    if (logger) params.logger = logger;
    notify("notifications/message", params);
  }
}

const OUT_OF_MEMORY = "out of memory";
const EMPTY_SCHEMA = Object.freeze({ type: "object", properties: {} });

function templatePattern(uri) {
  const names = [];
  const parts = uri.split(/\{([A-Za-z_][A-Za-z0-9_]*)\}/);
  const regex = parts
    .map((part, i) => {
      if (i % 2 === 1) {
        names.push(part);
        return "([^/]+)";
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("");
  return { regex: new RegExp(`^${regex}$`), names };
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function requireFunction(what, handler) {
  if (typeof handler !== "function") throw new TypeError(`${what}: the handler must be a function`);
}

/** One tenant's MCP server. Register with tool(), resource() and prompt(), then export
 * `function handle(message) { return app.handle(message); }` from the app module. */
export class App {
  constructor(name, { version = "0.1.0", instructions = undefined } = {}) {
    this.name = name;
    this.version = version;
    this.instructions = instructions;
    this.tools = new Map();
    this.resources = new Map();
    this.templates = new Map();
    this.prompts = new Map();
  }

  // --- registration -----------------------------------------------------------------------

  /** Register a tool. options: description, inputSchema (a JSON Schema object; none: no
   * arguments), outputSchema, title, annotations, taskSupport ("optional" or "required":
   * calls may run as durable tasks, docs/tasks.md; the handler then throws Escalate when
   * ctx.mayEscalate to become one). handler(args, ctx) returns a string, a JSON value (an
   * object is also the structured content) or a CallToolResult. */
  tool(name, options, handler) {
    requireFunction(`tool ${name}`, handler);
    const taskSupport = options.taskSupport;
    if (![undefined, null, "optional", "required"].includes(taskSupport)) {
      throw new TypeError(
        `tool ${name}: taskSupport must be "optional", "required" or undefined, ` +
          `not ${JSON.stringify(taskSupport)}`,
      );
    }
    const schema = options.inputSchema ?? EMPTY_SCHEMA;
    if (!isObject(schema) || schema.type !== "object") {
      throw new TypeError(`tool ${name}: inputSchema must be a JSON Schema of type "object"`);
    }
    const definition = { name, description: options.description ?? "", inputSchema: schema };
    if (options.title) definition.title = options.title;
    if (options.annotations) definition.annotations = options.annotations;
    if (taskSupport) definition.execution = { taskSupport };
    if (options.outputSchema) definition.outputSchema = options.outputSchema;
    this.tools.set(name, { handler, definition, schema });
    return this;
  }

  /** Register a resource. A URI with {placeholders} is a template: handler(params, ctx) gets
   * them in params. It returns the text (a string), bytes (a Uint8Array) or a JSON value.
   * options: name, description, mimeType (default text/plain). */
  resource(uri, options, handler) {
    requireFunction(`resource ${uri}`, handler);
    const definition = {
      name: options.name ?? uri,
      description: options.description ?? "",
      mimeType: options.mimeType ?? "text/plain",
    };
    if (uri.includes("{")) {
      definition.uriTemplate = uri;
      this.templates.set(uri, { handler, definition, pattern: templatePattern(uri) });
    } else {
      definition.uri = uri;
      this.resources.set(uri, { handler, definition, pattern: null });
    }
    return this;
  }

  /** Register a prompt. options: description, arguments ([{name, description, required}]).
   * handler(args, ctx) returns the text of one user message, or a list of {role, content}. */
  prompt(name, options, handler) {
    requireFunction(`prompt ${name}`, handler);
    const args = (options.arguments ?? []).map((argument) => ({
      ...argument,
      required: Boolean(argument.required),
    }));
    const definition = { name, description: options.description ?? "", arguments: args };
    this.prompts.set(name, { handler, definition });
    return this;
  }

  // --- the world's export -----------------------------------------------------------------

  /** One JSON-RPC message in, its reply out ("" for a notification or a response). */
  handle(message) {
    let request;
    try {
      request = JSON.parse(message);
    } catch {
      return rpcError(null, PARSE_ERROR, "the message is not valid JSON");
    }
    if (!isObject(request) || typeof request.method !== "string") {
      if (isObject(request) && !("method" in request)) return ""; // a response we never asked for
      return rpcError(null, INVALID_REQUEST, "not a JSON-RPC request");
    }
    if (!("id" in request)) return ""; // notifications: nothing to do, nothing to answer
    const id = request.id;
    const params = request.params ?? {};
    if (!isObject(params)) return rpcError(id, INVALID_PARAMS, "params must be an object");
    let result;
    try {
      result = this.dispatch(request.method, params);
    } catch (error) {
      if (error instanceof RpcError) return rpcError(id, error.code, error.message, error.data);
      // Out of memory is the box's to report (its memory limit, by name), and this instance's
      // heap is not to be trusted any more: let the call fail. SpiderMonkey throws the string
      // "out of memory" when the linear memory cannot grow.
      if (error === OUT_OF_MEMORY) throw error;
      // Anything else is the tenant's bug: name it.
      log(error && error.stack ? `${error}\n${error.stack}` : String(error), "error");
      return rpcError(id, INTERNAL_ERROR, describe(error));
    }
    return JSON.stringify({ jsonrpc: "2.0", id, result });
  }

  dispatch(method, params) {
    switch (method) {
      case "initialize":
        return this.initialize(params);
      case "tools/list":
        return { tools: [...this.tools.values()].map((t) => t.definition) };
      case "tools/call":
        return this.callTool(params);
      case "resources/list":
        return { resources: [...this.resources.values()].map((r) => r.definition) };
      case "resources/templates/list":
        return { resourceTemplates: [...this.templates.values()].map((r) => r.definition) };
      case "resources/read":
        return this.readResource(params);
      case "resources/subscribe":
      case "resources/unsubscribe":
        return this.subscribe(params);
      case "prompts/list":
        return { prompts: [...this.prompts.values()].map((p) => p.definition) };
      case "prompts/get":
        return this.getPrompt(params);
      default:
        throw new RpcError(METHOD_NOT_FOUND, `method not found: ${method}`);
    }
  }

  initialize(params) {
    const capabilities = {};
    if (this.tools.size) capabilities.tools = {};
    if (this.resources.size || this.templates.size) capabilities.resources = { subscribe: true };
    if (this.prompts.size) capabilities.prompts = {};
    const result = {
      protocolVersion: params.protocolVersion ?? LATEST_PROTOCOL_VERSION,
      capabilities,
      serverInfo: { name: this.name, version: this.version },
    };
    if (this.instructions) result.instructions = this.instructions;
    return result;
  }

  callTool(params) {
    const name = params.name;
    const tool = typeof name === "string" ? this.tools.get(name) : undefined;
    if (tool === undefined) throw new RpcError(INVALID_PARAMS, `unknown tool: ${quote(name)}`);
    const args = params.arguments ?? {};
    if (!isObject(args)) return toolError("arguments must be an object");
    const problem = checkArguments(args, tool.schema);
    if (problem !== null) return toolError(problem);
    let value;
    const ctx = new Context(meta(params));
    try {
      value = tool.handler(args, ctx);
    } catch (error) {
      if (error instanceof ToolError || error instanceof KvError) return toolError(error.message);
      if (error instanceof Escalate) return escalation(name, ctx);
      throw error;
    }
    return toolResult(value);
  }

  findResource(uri) {
    const resource = this.resources.get(uri);
    if (resource !== undefined) return [resource, {}];
    for (const template of this.templates.values()) {
      const match = template.pattern.regex.exec(uri);
      if (match) {
        const values = {};
        template.pattern.names.forEach((name, i) => {
          values[name] = decodeURIComponent(match[i + 1]);
        });
        return [template, values];
      }
    }
    throw new RpcError(INVALID_PARAMS, `unknown resource: ${uri}`, { uri });
  }

  readResource(params) {
    const uri = params.uri;
    if (typeof uri !== "string") throw new RpcError(INVALID_PARAMS, "resources/read needs a uri");
    const [resource, values] = this.findResource(uri);
    const value = resource.handler(values, new Context(meta(params)));
    const content = { uri, mimeType: resource.definition.mimeType };
    if (value instanceof Uint8Array) content.blob = base64(value);
    else content.text = typeof value === "string" ? value : JSON.stringify(value);
    return { contents: [content] };
  }

  subscribe(params) {
    const uri = params.uri;
    if (typeof uri !== "string") {
      throw new RpcError(INVALID_PARAMS, "resources/subscribe needs a uri");
    }
    this.findResource(uri);
    return {};
  }

  getPrompt(params) {
    const name = params.name;
    const prompt = typeof name === "string" ? this.prompts.get(name) : undefined;
    if (prompt === undefined) throw new RpcError(INVALID_PARAMS, `unknown prompt: ${quote(name)}`);
    const given = isObject(params.arguments) ? params.arguments : {};
    const args = {};
    for (const argument of prompt.definition.arguments) {
      const value = given[argument.name];
      if (value === undefined || value === null) {
        if (argument.required) {
          throw new RpcError(
            INVALID_PARAMS,
            `prompt ${quote(name)} needs argument ${quote(argument.name)}`,
          );
        }
        continue;
      }
      args[argument.name] = value;
    }
    const value = prompt.handler(args, new Context(meta(params)));
    const messages = Array.isArray(value) ? value : [{ role: "user", content: value }];
    const result = {
      messages: messages.map((message) => ({
        role: message.role ?? "user",
        content:
          typeof message.content === "string"
            ? { type: "text", text: message.content }
            : message.content,
      })),
    };
    if (prompt.definition.description) result.description = prompt.definition.description;
    return result;
  }
}

// --- helpers ------------------------------------------------------------------------------

/** A name quoted the way the Python SDK's repr() does, so both SDKs' errors read alike. */
function quote(value) {
  return typeof value === "string" ? `'${value}'` : String(value === undefined ? "None" : value);
}

function describe(error) {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `uncaught ${typeof error}: ${String(error)}`;
}

function meta(params) {
  return isObject(params._meta) ? params._meta : {};
}

const TYPE_CHECKS = {
  string: (v) => typeof v === "string",
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === "number" && Number.isFinite(v),
  boolean: (v) => typeof v === "boolean",
  array: (v) => Array.isArray(v),
  object: (v) => isObject(v),
  null: (v) => v === null,
};

/** Why value does not fit schema (type, enum, anyOf), or null. */
export function checkValue(value, schema) {
  if (!isObject(schema)) return null;
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => option === value)) {
    return `must be one of ${JSON.stringify(schema.enum)}`;
  }
  if (Array.isArray(schema.anyOf)) {
    if (schema.anyOf.every((option) => checkValue(value, option) !== null)) {
      return "matches none of the allowed types";
    }
    return null;
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const known = types.filter((type) => typeof type === "string" && type in TYPE_CHECKS);
  if (known.length && !known.some((type) => TYPE_CHECKS[type](value))) {
    return `must be of type ${known.join(" or ")}`;
  }
  return null;
}

function checkArguments(args, schema) {
  const properties = isObject(schema.properties) ? schema.properties : {};
  for (const name of schema.required ?? []) {
    if (!(name in args)) return `missing argument ${quote(name)}`;
  }
  for (const [name, value] of Object.entries(args)) {
    if (!(name in properties)) {
      if (schema.additionalProperties === true) continue;
      return `unknown argument ${quote(name)}`;
    }
    if (value === null) continue;
    const problem = checkValue(value, properties[name]);
    if (problem !== null) return `argument ${quote(name)} ${problem}`;
  }
  return null;
}

/** The reply that turns this call into a task, when the box allowed it (docs/tasks.md). */
function escalation(name, ctx) {
  if (ctx.mayEscalate) return { resultType: "task" };
  throw new RpcError(
    INTERNAL_ERROR,
    `tool ${quote(name)} asked to run as a task, but this call cannot become one ` +
      "(check ctx.mayEscalate first)",
  );
}

function toolError(text) {
  return { content: [{ type: "text", text }], isError: true };
}

function toolResult(value) {
  if (isObject(value) && ("content" in value || "structuredContent" in value)) return value;
  if (typeof value === "string") return { content: [{ type: "text", text: value }] };
  const text = JSON.stringify(value ?? null);
  const result = { content: [{ type: "text", text }] };
  if (isObject(value)) result.structuredContent = value;
  return result;
}

function rpcError(id, code, message, data = undefined) {
  const error = { code, message };
  if (data !== undefined && data !== null) error.data = data;
  return JSON.stringify({ jsonrpc: "2.0", id, error });
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += BASE64[(n >> 18) & 63] + BASE64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? BASE64[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? BASE64[n & 63] : "=";
  }
  return out;
}
