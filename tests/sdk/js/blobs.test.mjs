// The JS tenant SDK's blobs in plain Node, through smcp_box_sdk/js/testing.mjs: writes split in
// pieces of at most 1 MiB, reads by piece, text and bytes, stat/list/delete, and each WIT
// blob-error case as BlobError. A built component does the same against a box in
// tests/e2e/test_js_components.py.

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { BLOB_PIECE_BYTES, BlobError, blobs } from "smcp-box-sdk";
import { MemoryHost, useBackend } from "smcp-box-sdk/testing";

let host;

beforeEach(() => {
  host = useBackend(new MemoryHost({ nowMs: 1_800_000_000_000 }));
});

test("a large write is split in pieces and read back whole and by piece", () => {
  const data = new Uint8Array(2 * BLOB_PIECE_BYTES + 5).map((_, i) => i % 251);
  const writer = blobs.openWrite("big/data.bin");
  writer.write(data);
  assert.equal(blobs.stat("big/data.bin"), undefined); // not seen before close
  writer.close();
  assert.deepEqual(
    host.blobPieces.map(([, n]) => n),
    [BLOB_PIECE_BYTES, BLOB_PIECE_BYTES, 5],
  );
  assert.deepEqual(blobs.readBytes("big/data.bin"), data);
  const reader = blobs.openRead("big/data.bin");
  assert.deepEqual(reader.read(3), new Uint8Array([0, 1, 2]));
  const rest = [...reader];
  reader.close();
  assert.equal(rest.reduce((n, piece) => n + piece.length, 0), data.length - 3);
  assert.ok(rest.every((piece) => piece.length <= BLOB_PIECE_BYTES));
});

test("text goes in as UTF-8 and comes out decoded, with metadata, list and delete", () => {
  blobs.write("notes/a.md", "# café ☕", "text/markdown");
  blobs.write("notes/b.md", new Uint8Array([104, 105]));
  blobs.write("other.txt", "");
  assert.equal(blobs.readText("notes/a.md"), "# café ☕");
  assert.equal(blobs.readText("other.txt"), "");
  const stat = blobs.stat("notes/a.md");
  assert.deepEqual([stat.size, stat.contentType], [11, "text/markdown"]);
  assert.equal(blobs.stat("notes/b.md").contentType, "application/octet-stream");
  assert.deepEqual(
    blobs.list("notes/").map((b) => b.name),
    ["notes/a.md", "notes/b.md"],
  );
  assert.equal(blobs.delete("notes/a.md"), true);
  assert.equal(blobs.delete("notes/a.md"), false);
  assert.deepEqual(
    blobs.list().map((b) => b.name),
    ["notes/b.md", "other.txt"],
  );
});

test("each refusal is a BlobError naming the WIT case", () => {
  const reason = (call) => {
    try {
      call();
    } catch (error) {
      assert.ok(error instanceof BlobError, String(error));
      return error.reason;
    }
    return "no error";
  };
  assert.equal(reason(() => blobs.openRead("missing")), "not-found");
  assert.equal(reason(() => blobs.write("../up", "x")), "invalid-name");
  host.fullBlobs.add("full.bin");
  assert.equal(reason(() => blobs.write("full.bin", "x")), "quota-exceeded");
  assert.equal(blobs.stat("full.bin"), undefined); // nothing kept
  const writer = blobs.openWrite("once.txt");
  writer.close();
  writer.close(); // a second close does nothing
  assert.equal(reason(() => writer.write("late")), "bad-handle");
  assert.throws(() => blobs.write("n", 42), TypeError);
});
