// @ts-check
// A sharer played by the test on fake channels, for the receiving side's tests: channels
// that open at once, a `serve` that speaks protocol v3 from any offset (a block may be
// damaged on the way), and the helpers that start and read a download.
import { createHash } from "node:crypto";
import { BLOCK } from "../src/transfer/blocks.js";
import { Download } from "../src/transfer/receive.js";

export const sha = (b) => createHash("sha256").update(b).digest("hex");

export class FakeChannel {
  constructor() {
    this.readyState = "connecting";
    this.binaryType = "";
    /** @type {any[]} */
    this.sent = [];
    this.closed = false;
    /** @type {any} */
    this.onopen = null;
    /** @type {any} */
    this.onmessage = null;
    /** @type {any} */
    this.onclose = null;
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.closed = true;
    this.readyState = "closed";
  }
  text(obj) {
    this.onmessage({ data: JSON.stringify(obj) });
  }
  bytes(u) {
    this.onmessage({ data: u.slice().buffer });
  }
}

/** A connection whose channels open at once (the test plays the sharer on each). */
export class FakePC {
  constructor() {
    /** @type {FakeChannel[]} */
    this.channels = [];
  }
  createDataChannel() {
    const ch = new FakeChannel();
    this.channels.push(ch);
    queueMicrotask(() => {
      ch.readyState = "open";
      ch.onopen?.();
    });
    return ch;
  }
}

export function fileBytes(size) {
  const b = new Uint8Array(size);
  for (let j = 0; j < size; j++) b[j] = (j * 7 + 3) & 0xff;
  return b;
}

/** Play the sharer on `ch` for a `get` from `from`, in messages of `message` bytes; `damage(i, block)` may alter block i. */
export function serve(ch, bytes, from, damage = (_i, b) => b, upTo = Number.POSITIVE_INFINITY, message = 256 << 10) {
  const size = bytes.length;
  ch.text({ t: "meta", size, sha256: sha(bytes), block: BLOCK, from });
  for (let i = from / BLOCK; i * BLOCK < size && i < upTo; i++) {
    const block = bytes.subarray(i * BLOCK, Math.min(size, (i + 1) * BLOCK));
    ch.text({ t: "block", i, sha256: sha(block) });
    const sent = damage(i, block);
    for (let p = 0; p < sent.length; p += message) ch.bytes(sent.subarray(p, p + message));
    if (ch.closed) return false;
  }
  if (upTo !== Number.POSITIVE_INFINITY) return false;
  ch.text({ t: "end", size, sha256: sha(bytes) });
  return true;
}

/** The n-th channel opened on `pc`, once it is open (the download sets up its hashers first). */
export async function channel(pc, n) {
  for (let waited = 0; waited < 5000; waited += 5) {
    if (pc.channels[n]?.sent.length) return pc.channels[n];
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`channel ${n} was never opened`);
}

/** Read the whole download stream. */
export async function drain(stream) {
  const parts = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return Buffer.concat(parts);
}

export const entry = (size) => ({ id: "7", name: "f.bin", path: "f.bin", size, mtime: 1 });

/** A download of `bytes` started on a new fake connection `pc`. */
export function start(bytes) {
  const pc = new FakePC();
  const d = new Download(entry(bytes.length));
  const run = d.run(/** @type {any} */ (pc));
  return { pc, d, run };
}

/** One read of the stream of a download that must fail (its rejection handled). */
export const readOnce = (d) =>
  d.stream
    .getReader()
    .read()
    .catch(() => {});
