// @ts-check
// The sharer's flow control against a receiver that is not the web client:
// a fake RTCDataChannel stands for any peer built from docs/transfer-protocol.md.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { BLOCK, hashFile } from "../src/transfer/blocks.js";
import { HIGH_WATER, WINDOW } from "../src/transfer/protocol.js";
import { Upload } from "../src/transfer/send.js";

const MiB = 1 << 20;
const CHUNK = 256 << 10;

/** A channel that is open; `drains` says whether its buffer empties as soon as bytes are queued. */
class FakeChannel {
  constructor({ drains }) {
    this.drains = drains;
    this.readyState = "open";
    /** @type {(ev: {data: unknown}) => void} */
    this.onmessage = () => {};
    this.onclose = () => {};
    this.onbufferedamountlow = () => {};
    this.bufferedAmount = 0;
    this.maxBuffered = 0;
    this.received = 0; // bytes that reached the peer
    this.texts = [];
    this.hash = createHash("sha256");
  }
  addEventListener() {}
  send(data) {
    if (typeof data === "string") {
      this.texts.push(JSON.parse(data));
      return;
    }
    this.bufferedAmount += data.byteLength;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    this.hash.update(data);
    if (this.drains) this.drain();
  }
  drain() {
    this.received += this.bufferedAmount;
    this.bufferedAmount = 0;
  }
  /** What the receiver says. */
  say(obj) {
    this.onmessage({ data: JSON.stringify(obj) });
  }
}

function file(size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = (i / 4096) & 0xff;
  return { rec: { id: "1", name: "f.bin", path: "f.bin", size, type: "", file: new Blob([bytes]) }, bytes };
}

/** The file's hashes, as the sharer computes them once when a file is added. */
function hashesOf(rec) {
  return hashFile(async (start, end) => new Uint8Array(await rec.file.slice(start, end).arrayBuffer()), rec.size);
}

/** Resolves once nothing more has been sent for `quietMs` (the sender is waiting), within `maxMs`. */
async function settled(ch, quietMs = 400, maxMs = 20000) {
  const start = Date.now();
  let last = -1;
  let since = Date.now();
  while (Date.now() - start < maxMs) {
    const now = ch.received + ch.bufferedAmount;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the sender never paused");
}

test("a receiver that acknowledges nothing never gets more than the 16 MiB window", async () => {
  const ch = new FakeChannel({ drains: true });
  const { rec } = file(2 * WINDOW + 8 * MiB);
  const up = new Upload(ch, (id) => (id === "1" ? rec : undefined), CHUNK, hashesOf);
  const run = up.run();
  run.catch(() => {});
  ch.say({ t: "get", file: "1" });
  await settled(ch);
  assert.ok(ch.received <= WINDOW, `${ch.received - WINDOW} bytes beyond the window arrived`);
  assert.ok(ch.received > WINDOW - CHUNK, `the sender stopped early, at ${ch.received}`);
  // An acknowledgement of more than was sent does not open the window further.
  ch.say({ t: "ack", bytes: 1e15 });
  await settled(ch);
  assert.ok(ch.received <= 2 * WINDOW, `${ch.received} bytes arrived after one inflated ack`);
  ch.onclose();
  await assert.rejects(run, { code: "gone" });
});

test("the channel's send buffer never holds more than 4 MiB, and the file arrives whole", async () => {
  const ch = new FakeChannel({ drains: false });
  const { rec, bytes } = file(12 * MiB + 12345);
  const up = new Upload(ch, () => rec, CHUNK, hashesOf);
  const run = up.run();
  ch.say({ t: "get", file: "1" });
  const deadline = Date.now() + 30000;
  while (!ch.texts.some((m) => m.t === "end")) {
    assert.ok(Date.now() < deadline, "the file never finished");
    await settled(ch, 100);
    assert.ok(ch.maxBuffered <= HIGH_WATER, `the buffer reached ${ch.maxBuffered} bytes`);
    // The network takes everything, the receiver writes it out and says so.
    ch.drain();
    ch.say({ t: "ack", bytes: ch.received });
    ch.onbufferedamountlow();
  }
  const end = ch.texts.find((m) => m.t === "end");
  const want = createHash("sha256").update(bytes).digest("hex");
  assert.equal(ch.received, bytes.length);
  assert.equal(end.size, bytes.length);
  assert.equal(end.sha256, want);
  assert.equal(ch.hash.digest("hex"), want);
  ch.say({ t: "ok", sha256: want });
  assert.deepEqual(await run, { size: bytes.length, sha256: want });
});

test("a get from an offset: meta, then every block from there announced with its hash, nothing before it", async () => {
  const ch = new FakeChannel({ drains: true });
  const { rec, bytes } = file(3 * BLOCK + 7);
  const up = new Upload(ch, () => rec, CHUNK, hashesOf);
  const run = up.run();
  ch.say({ t: "get", file: "1", from: BLOCK });
  const deadline = Date.now() + 20000;
  while (!ch.texts.some((m) => m.t === "end")) {
    assert.ok(Date.now() < deadline, "the file never finished");
    await settled(ch, 50);
    ch.say({ t: "ack", bytes: BLOCK + ch.received });
  }
  const whole = createHash("sha256").update(bytes).digest("hex");
  const sha = (a, b) => createHash("sha256").update(bytes.subarray(a, b)).digest("hex");
  assert.deepEqual(ch.texts[0], { t: "meta", size: bytes.length, sha256: whole, block: BLOCK, from: BLOCK });
  assert.deepEqual(
    ch.texts.filter((m) => m.t === "block"),
    [1, 2, 3].map((i) => ({ t: "block", i, sha256: sha(i * BLOCK, Math.min(bytes.length, (i + 1) * BLOCK)) })),
  );
  assert.equal(ch.received, bytes.length - BLOCK, "bytes before the offset were sent");
  assert.equal(ch.hash.digest("hex"), sha(BLOCK, bytes.length));
  ch.say({ t: "ok", sha256: whole });
  assert.equal((await run).sha256, whole);
});

test("a get that starts inside a block or past the end is refused bad-offset", async () => {
  for (const from of [1, BLOCK + 1, 5 * BLOCK, -BLOCK, "0"]) {
    const ch = new FakeChannel({ drains: true });
    const { rec } = file(2 * BLOCK);
    const up = new Upload(ch, () => rec, CHUNK, hashesOf);
    const run = up.run();
    ch.say({ t: "get", file: "1", from });
    await assert.rejects(run, { code: "bad-offset" }, `from ${from}`);
    assert.equal(ch.texts[0].code, "bad-offset");
    assert.equal(ch.received, 0);
  }
});
