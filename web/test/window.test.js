// @ts-check
// The sender's adaptive send window: a new channel gets a little, then more each time
// it runs dry, never more than HIGH_WATER; and the sender lives by it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hashFile } from "../src/transfer/blocks.js";
import { HIGH_WATER } from "../src/transfer/protocol.js";
import { Upload } from "../src/transfer/send.js";
import { START_WINDOW, SendWindow } from "../src/transfer/window.js";

const KiB = 1 << 10;
const MiB = 1 << 20;
const CHUNK = 256 * KiB;

/** An Upload whose file's hashes are already known, as when a file was added long ago. */
async function upload(ch, rec, chunk) {
  const hashes = await hashFile(async (start, end) => new Uint8Array(await rec.file.slice(start, end).arrayBuffer()), rec.size);
  return new Upload(
    ch,
    () => rec,
    chunk,
    async () => hashes,
  );
}

test("the window starts small, doubles each time the channel runs dry, and stops at HIGH_WATER", () => {
  const w = new SendWindow(64 * KiB);
  assert.equal(w.size, START_WINDOW);
  assert.equal(w.low, START_WINDOW / 4);
  const sizes = [w.size];
  while (w.drained(0)) sizes.push(w.size);
  assert.deepEqual(sizes, [256 * KiB, 512 * KiB, MiB, 2 * MiB, 4 * MiB]);
  assert.equal(w.size, HIGH_WATER);
  assert.equal(w.drained(0), false, "grew beyond HIGH_WATER");
  assert.equal(w.low, HIGH_WATER / 4);
});

test("a channel that still holds data when the sender resumes does not widen the window", () => {
  const w = new SendWindow(64 * KiB);
  for (let i = 0; i < 10; i++) assert.equal(w.drained(1), false);
  assert.equal(w.size, START_WINDOW);
});

test("at the resume point a whole chunk always fits, whatever the chunk and the window", () => {
  for (const chunk of [16 * KiB, 64 * KiB, 200 * KiB, 256 * KiB, 3 * MiB, HIGH_WATER, HIGH_WATER + 1]) {
    const w = new SendWindow(chunk);
    do {
      assert.ok(w.low >= 0 && w.low <= w.size / 4, `resume point ${w.low} for a window of ${w.size}`);
      assert.ok(w.fits(w.low, chunk), `a ${chunk}-byte chunk does not fit at the resume point of a ${w.size}-byte window`);
    } while (w.drained(0));
  }
  // 256 KiB messages in the 256 KiB start window: the sender resumes only once the buffer is empty.
  assert.equal(new SendWindow(256 * KiB).low, 0);
});

test("a message never takes the buffer beyond the window, and an empty channel always takes one", () => {
  const w = new SendWindow(CHUNK);
  assert.equal(w.fits(0, CHUNK), true);
  assert.equal(w.fits(1, CHUNK), false, "256 KiB + 1 byte fits a 256 KiB window");
  assert.equal(w.fits(w.size - 100, 100), true);
  // A chunk larger than the start (or even than HIGH_WATER) still goes, one at a time.
  const big = new SendWindow(HIGH_WATER + MiB);
  assert.equal(big.fits(0, HIGH_WATER + MiB), true);
  assert.equal(big.drained(0), false);
});

/** A channel whose buffer empties only when the test says so. */
class HeldChannel {
  constructor() {
    this.readyState = "open";
    /** @type {(ev: {data: unknown}) => void} */
    this.onmessage = () => {};
    this.onclose = () => {};
    this.onbufferedamountlow = () => {};
    this.bufferedAmountLowThreshold = 0;
    this.bufferedAmount = 0;
    this.received = 0;
    /** @type {any[]} */
    this.texts = [];
  }
  addEventListener() {}
  /** @param {string | Uint8Array} data */
  send(data) {
    if (typeof data === "string") this.texts.push(JSON.parse(data));
    else this.bufferedAmount += data.byteLength;
  }
  /**
   * The network takes all but `left` bytes; with `ack`, the receiver writes them out and
   * says so. As in browsers, `bufferedamountlow` fires only when the buffer falls from
   * above the threshold to it or below.
   */
  empty(left = 0, ack = true) {
    const before = this.bufferedAmount;
    this.received += this.bufferedAmount - left;
    this.bufferedAmount = left;
    if (ack) this.onmessage({ data: JSON.stringify({ t: "ack", bytes: this.received }) });
    if (before > this.bufferedAmountLowThreshold && left <= this.bufferedAmountLowThreshold) this.onbufferedamountlow();
  }
}

/** Resolves once the buffer has not changed for `quietMs` (the sender waits). */
async function quiet(ch, quietMs = 150, maxMs = 10000) {
  const start = Date.now();
  let last = -1;
  let since = Date.now();
  while (Date.now() - start < maxMs) {
    if (ch.bufferedAmount !== last) {
      last = ch.bufferedAmount;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the sender never paused");
}

test("a new channel gets 256 KiB first, then twice as much each time it runs dry, up to 4 MiB", async () => {
  const ch = new HeldChannel();
  const size = 24 * MiB;
  const rec = { id: "1", name: "f.bin", path: "f.bin", size, type: "", file: new Blob([new Uint8Array(size)]), sha256: "0".repeat(64) };
  const up = await upload(ch, rec, 64 * KiB);
  const run = up.run();
  run.catch(() => {});
  assert.equal(ch.bufferedAmountLowThreshold, 64 * KiB, "the first resume point is a quarter of 256 KiB");
  ch.onmessage({ data: JSON.stringify({ t: "get", file: "1" }) });
  const bursts = [];
  while (bursts.length < 7) {
    await quiet(ch);
    bursts.push(ch.bufferedAmount);
    ch.empty();
  }
  assert.deepEqual(
    bursts.map((b) => b / KiB),
    [256, 512, 1024, 2048, 4096, 4096, 4096],
  );
  assert.equal(ch.bufferedAmountLowThreshold, MiB);
  ch.onclose();
  await assert.rejects(run, { code: "gone" });
});

test("a channel that still holds bytes when it asks for more gets its window refilled, not widened", async () => {
  const ch = new HeldChannel();
  const size = 8 * MiB;
  const rec = { id: "1", name: "f.bin", path: "f.bin", size, type: "", file: new Blob([new Uint8Array(size)]), sha256: "0".repeat(64) };
  const run = (await upload(ch, rec, 64 * KiB)).run();
  run.catch(() => {});
  ch.onmessage({ data: JSON.stringify({ t: "get", file: "1" }) });
  for (let i = 0; i < 5; i++) {
    await quiet(ch);
    // Filled to within one 64 KiB message of the 256 KiB window, never beyond it.
    assert.ok(ch.bufferedAmount > 192 * KiB && ch.bufferedAmount <= 256 * KiB, `${ch.bufferedAmount} bytes queued`);
    ch.empty(32 * KiB); // below the 64 KiB resume point, never empty
  }
  ch.onclose();
  await assert.rejects(run, { code: "gone" });
});

test("a sender woken by the channel's event refills at once, without waiting for its fallback timer", async () => {
  const ch = new HeldChannel();
  const size = 8 * MiB;
  const rec = { id: "1", name: "f.bin", path: "f.bin", size, type: "", file: new Blob([new Uint8Array(size)]), sha256: "0".repeat(64) };
  // Messages as large as the first window: the sender may resume only once the buffer is empty.
  const run = (await upload(ch, rec, 256 * KiB)).run();
  run.catch(() => {});
  ch.onmessage({ data: JSON.stringify({ t: "get", file: "1" }) });
  await quiet(ch);
  assert.equal(ch.bufferedAmount, 256 * KiB);
  // Mostly sent, but no room for another 256 KiB yet. Nothing written out either (an ack
  // would wake the sender too): only the channel's event can wake it.
  ch.empty(50 * KiB, false);
  await quiet(ch);
  assert.equal(ch.bufferedAmount, 50 * KiB);
  const t0 = Date.now();
  ch.empty(0, false);
  while (ch.bufferedAmount === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
  // The sender's own fallback timer would wake it after a second: a stall a person sees.
  assert.ok(Date.now() - t0 < 500, `the sender refilled after ${Date.now() - t0} ms`);
  ch.onclose();
  await assert.rejects(run, { code: "gone" });
});
