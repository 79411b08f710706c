// An in-memory stand-in for the smcp:box host interface, with the WIT bindings' JavaScript
// names and types (option: undefined; s64 and u64: BigInt; list<u8>: Uint8Array; an err result:
// a thrown Error whose payload is the kv-error or blob-error case), for tenant unit tests in
// plain Node.

/** kv, config, logs, notifications and blobs in plain objects a test can set and read. */
export class MemoryHost {
  constructor({ config = {}, nowMs = Date.now() } = {}) {
    this.kv = new Map();
    this.config = { ...config };
    this.logs = [];
    /** Every notification as parsed JSON (progress, messages). */
    this.notifications = [];
    this.nowMs = nowMs;
    /** Keys whose writes fail with quota-exceeded, to test that path. */
    this.fullKeys = new Set();
    /** Every sleep-ms duration (a Number); a sleep also moves nowMs on, without waiting. */
    this.sleeps = [];
    /** Committed blobs: name -> { data: Uint8Array, contentType, updatedAt }. */
    this.blobs = new Map();
    /** Blob names whose writes fail with quota-exceeded. */
    this.fullBlobs = new Set();
    /** Every host call that moved blob bytes: ["read" | "write", byte count]. */
    this.blobPieces = [];
    this.handles = new Map();
    this.nextHandle = 1;
  }
  log(level, message) {
    this.logs.push([level, message]);
  }
  configGet(key) {
    return this.config[key];
  }
  kvGet(key) {
    return this.kv.get(key);
  }
  kvSet(key, value) {
    if (this.fullKeys.has(key)) throw kvError("quota-exceeded");
    this.kv.set(key, value);
  }
  kvDelete(key) {
    this.kv.delete(key);
  }
  kvList(prefix) {
    return [...this.kv.keys()].filter((key) => key.startsWith(prefix)).sort();
  }
  notify(message) {
    this.notifications.push(JSON.parse(message));
  }
  timeNowMs() {
    return BigInt(this.nowMs);
  }
  kvCas(key, expected, value) {
    if (this.kv.get(key) !== expected) return false;
    this.kvSet(key, value);
    return true;
  }
  kvIncr(key, delta) {
    const current = this.kv.get(key) ?? "0";
    if (!/^-?\d+$/.test(current)) throw kvError("not-an-integer");
    const total = BigInt(current) + BigInt(delta);
    this.kvSet(key, String(total));
    return total;
  }
  randomBytes(length) {
    return crypto.getRandomValues(new Uint8Array(length));
  }
  sleepMs(ms) {
    if (typeof ms !== "bigint" || ms < 0n) throw new TypeError(`sleep-ms takes a u64, not ${ms}`);
    this.sleeps.push(Number(ms));
    this.nowMs += Number(ms);
  }
  // Blobs, as the box answers them (docs/abi.md 2.8), without its name rules and quotas.
  blobOpen(name, write, contentType) {
    const segments = name.split("/");
    if (!segments.every((s) => /^[A-Za-z0-9._-]+$/.test(s) && s !== "." && s !== "..")) {
      throw kvError("invalid-name");
    }
    if (!write && !this.blobs.has(name)) throw kvError("not-found");
    const handle = this.nextHandle++;
    this.handles.set(
      handle,
      write
        ? { name, write, contentType: contentType || "application/octet-stream", pieces: [] }
        : { name, write, data: this.blobs.get(name).data, at: 0 },
    );
    return handle;
  }
  blobRead(handle, max) {
    const open = this.handles.get(handle);
    if (open === undefined || open.write) throw kvError("bad-handle");
    if (max > 1024 * 1024) throw new Error("a blob read of more than 1 MiB fails the call");
    const piece = open.data.slice(open.at, open.at + max);
    open.at += piece.length;
    this.blobPieces.push(["read", piece.length]);
    return piece;
  }
  blobWrite(handle, data) {
    const open = this.handles.get(handle);
    if (open === undefined || !open.write) throw kvError("bad-handle");
    if (data.length > 1024 * 1024) throw new Error("a blob write of more than 1 MiB fails the call");
    if (this.fullBlobs.has(open.name)) throw kvError("quota-exceeded");
    open.pieces.push(Uint8Array.from(data));
    this.blobPieces.push(["write", data.length]);
  }
  blobClose(handle) {
    const open = this.handles.get(handle);
    if (open === undefined) throw kvError("bad-handle");
    this.handles.delete(handle);
    if (!open.write) return;
    const data = new Uint8Array(open.pieces.reduce((n, piece) => n + piece.length, 0));
    let at = 0;
    for (const piece of open.pieces) {
      data.set(piece, at);
      at += piece.length;
    }
    this.blobs.set(open.name, { data, contentType: open.contentType, updatedAt: this.nowMs / 1000 });
  }
  blobInfo(name) {
    const blob = this.blobs.get(name);
    return {
      name,
      size: blob.data.length,
      contentType: blob.contentType,
      sha256: "",
      updatedAt: blob.updatedAt,
    };
  }
  blobStat(name) {
    return this.blobs.has(name) ? JSON.stringify(this.blobInfo(name)) : undefined;
  }
  blobList(prefix) {
    const names = [...this.blobs.keys()].filter((name) => name.startsWith(prefix)).sort();
    return JSON.stringify(names.map((name) => this.blobInfo(name)));
  }
  blobDelete(name) {
    return this.blobs.delete(name);
  }
}

/** A WIT error result as componentize-js throws it: an Error whose payload is the case. */
function kvError(reason) {
  const error = new Error(reason);
  error.payload = reason;
  return error;
}

let backend = new MemoryHost();

/** The host the SDK's calls go to now. */
export function host() {
  return backend;
}

/** Send the SDK's host calls to `next` (e.g. a fresh MemoryHost per test); returns it. */
export function useBackend(next) {
  backend = next;
  return next;
}

// The world's functions, as componentize-js provides them inside a component.
export const log = (...args) => backend.log(...args);
export const configGet = (...args) => backend.configGet(...args);
export const kvGet = (...args) => backend.kvGet(...args);
export const kvSet = (...args) => backend.kvSet(...args);
export const kvDelete = (...args) => backend.kvDelete(...args);
export const kvList = (...args) => backend.kvList(...args);
export const notify = (...args) => backend.notify(...args);
export const timeNowMs = (...args) => backend.timeNowMs(...args);
export const kvCas = (...args) => backend.kvCas(...args);
export const kvIncr = (...args) => backend.kvIncr(...args);
export const randomBytes = (...args) => backend.randomBytes(...args);
export const sleepMs = (...args) => backend.sleepMs(...args);

// The _meta the box adds to a tools/call of a tool with taskSupport (docs/tasks.md), to put in
// a test's params._meta: the first call, which may escalate, and the task's background call.
/** _meta of a call the client negotiated tasks for: the tool may throw Escalate. */
export function escalationMeta() {
  return { "smcp-box/task": { escalate: "allowed" } };
}

/** _meta of the box's background call that runs task taskId. */
export function taskMeta(taskId) {
  return { "smcp-box/task": { taskId } };
}
export const blobOpen = (...args) => backend.blobOpen(...args);
export const blobRead = (...args) => backend.blobRead(...args);
export const blobWrite = (...args) => backend.blobWrite(...args);
export const blobClose = (...args) => backend.blobClose(...args);
export const blobStat = (...args) => backend.blobStat(...args);
export const blobList = (...args) => backend.blobList(...args);
export const blobDelete = (...args) => backend.blobDelete(...args);
