// @ts-check
// The sharer reads a file in pieces, one ahead of the one being sent: into two buffers
// used again and again where Blob streams take the caller's buffer, else into new ones.
// Either way every piece holds exactly the file's bytes, and a file shorter than when it
// was shared gives a short piece (which the upload refuses as unreadable).
import assert from "node:assert/strict";
import { test } from "node:test";
import { PieceReader } from "../src/transfer/reader.js";

function bytes(size) {
  const b = new Uint8Array(size);
  for (let j = 0; j < size; j++) b[j] = (j * 13 + 5) & 0xff;
  return b;
}

/** Read every piece as the upload does: the next one is asked for before this one is done. */
async function readAll(reader, from, size) {
  const pieces = [];
  let next = from < size ? reader.next() : null;
  for (let at = from; at < size; ) {
    const piece = /** @type {Uint8Array} */ (await next);
    at += piece.byteLength;
    next = at < size && piece.byteLength ? reader.next() : null;
    pieces.push(piece.slice());
    reader.done(piece);
    if (!piece.byteLength) break;
  }
  reader.close();
  return { pieces };
}

test("pieces hold the file's bytes from the offset, read into two buffers used again and again", async () => {
  const data = bytes(10 * 1000 + 7);
  const reader = new PieceReader(new Blob([data]), 2000, data.length, { piece: 1000 });
  assert.ok(reader.reusing, "this runtime's Blob streams take a caller's buffer");
  const { pieces } = await readAll(reader, 2000, data.length);
  assert.deepEqual(
    pieces.map((p) => p.byteLength),
    [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 7],
  );
  assert.deepEqual(Buffer.concat(pieces), Buffer.from(data.subarray(2000)));
  assert.equal(reader.made, 2, "a new buffer per piece");
});

test("where Blob streams take no caller's buffer, pieces are new buffers with the same bytes", async () => {
  const data = bytes(5 * 1000 + 1);
  const blob = new Blob([data]);
  const plain = {
    size: blob.size,
    slice: (/** @type {number} */ a, /** @type {number} */ b) => {
      const part = blob.slice(a, b);
      // A stream without byte support: getReader({mode: "byob"}) throws, as in older browsers.
      return Object.assign(part, { stream: () => new ReadableStream({ start: (c) => c.close() }) });
    },
  };
  const reader = new PieceReader(/** @type {any} */ (plain), 0, data.length, { piece: 1000 });
  assert.equal(reader.reusing, false);
  const { pieces } = await readAll(reader, 0, data.length);
  assert.deepEqual(Buffer.concat(pieces), Buffer.from(data));
});

test("a file shorter than when it was shared gives a short piece", async () => {
  const data = bytes(2500);
  const reader = new PieceReader(new Blob([data]), 0, 4000, { piece: 1000 });
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await reader.next()).byteLength);
  reader.close();
  assert.deepEqual(got.slice(0, 3), [1000, 1000, 500]);
  assert.equal(got[3], 0);
});
