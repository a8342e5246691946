// @ts-check
// The receiving side of protocol v3 against a sharer that is not the web client: fake
// channels stand for any peer built from docs/transfer-protocol.md. Each block is checked
// before it is taken, a damaged one is asked for again from its offset (a bounded number
// of times), and a download moved to a new connection continues from the verified offset.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSHA256 } from "hash-wasm";
import { BLOCK, MAX_REFETCH, blockDigest } from "../src/transfer/blocks.js";
import { Download } from "../src/transfer/receive.js";
import { channel, drain, entry, FakePC, fileBytes, readOnce, serve, sha, start } from "./fake-sharer.js";

test("a damaged block is fetched again from its offset on a new channel, and the file verifies", async () => {
  const bytes = fileBytes(3 * BLOCK + 11);
  const { pc, d, run } = start(bytes);
  const out = drain(d.stream);
  assert.deepEqual((await channel(pc, 0)).sent[0], { t: "get", file: "7", from: 0 });
  let flipped = false;
  serve(pc.channels[0], bytes, 0, (i, b) => {
    if (i !== 1 || flipped) return b;
    flipped = true;
    const bad = b.slice();
    bad[100] ^= 1;
    return bad;
  });
  assert.deepEqual((await channel(pc, 1)).sent[0], { t: "get", file: "7", from: BLOCK });
  assert.ok(pc.channels[0].closed, "the channel with the damaged block was not closed");
  assert.deepEqual(pc.channels[0].sent.at(-1), { t: "cancel" });
  assert.equal(pc.channels.length, 2);
  assert.ok(serve(pc.channels[1], bytes, BLOCK));
  const got = await out;
  assert.equal(sha(got), sha(bytes));
  assert.equal((await run).sha256, sha(bytes));
});

test("a block damaged on every re-fetch fails the download as corrupt", async () => {
  const bytes = fileBytes(2 * BLOCK);
  const { pc, d, run } = start(bytes);
  readOnce(d);
  const damage = (i, b) => (i === 0 ? b.map((x) => x ^ 0xff) : b);
  for (let n = 0; n <= MAX_REFETCH; n++) {
    serve(await channel(pc, n), bytes, 0, damage);
  }
  await assert.rejects(run, { code: "corrupt" });
  assert.equal(pc.channels.length, MAX_REFETCH + 1, "more re-fetches than the protocol allows");
  assert.equal(d.error?.info.block, 0);
});

test("after a lost connection the download continues on a new one from the last verified block", async () => {
  const bytes = fileBytes(4 * BLOCK + 5);
  const { pc: first, d, run } = start(bytes);
  const out = drain(d.stream);
  await channel(first, 0);
  // Two whole blocks and half of the third arrive, then the connection dies.
  serve(first.channels[0], bytes, 0, (_i, b) => b, 2);
  first.channels[0].text({ t: "block", i: 2, sha256: sha(bytes.subarray(2 * BLOCK, 3 * BLOCK)) });
  first.channels[0].bytes(bytes.subarray(2 * BLOCK, 2 * BLOCK + BLOCK / 2));
  d.drop();
  assert.ok(d.paused);
  // At once, as the receiver does on a new connection, while the whole blocks may still be
  // being checked: those count, the half block does not.
  const second = new FakePC();
  d.attach(/** @type {any} */ (second));
  assert.deepEqual((await channel(second, 0)).sent[0], { t: "get", file: "7", from: 2 * BLOCK });
  assert.equal(d.verified, 2 * BLOCK, "an unchecked half block counted as verified");
  assert.ok(serve(second.channels[0], bytes, 2 * BLOCK));
  assert.equal(sha(await out), sha(bytes));
  assert.equal((await run).size, bytes.length);
});

test("a resumed download whose file changed at the sharer fails instead of mixing two files", async () => {
  const bytes = fileBytes(2 * BLOCK + 1);
  const { pc, d, run } = start(bytes);
  readOnce(d);
  serve(await channel(pc, 0), bytes, 0, (_i, b) => b, 1);
  d.drop();
  const other = bytes.slice();
  other[bytes.length - 1] ^= 1;
  const pc2 = new FakePC();
  d.attach(/** @type {any} */ (pc2));
  serve(await channel(pc2, 0), other, BLOCK);
  await assert.rejects(run, { code: "changed" });
});

test("bytes out of order (no block announced, or past the block) fail the download", async () => {
  const bytes = fileBytes(BLOCK + 3);
  for (const script of [
    (ch) => ch.bytes(bytes.subarray(0, 10)),
    (ch) => {
      ch.text({ t: "meta", size: bytes.length, sha256: sha(bytes), block: BLOCK, from: 0 });
      ch.bytes(bytes.subarray(0, 10));
    },
    (ch) => {
      ch.text({ t: "meta", size: bytes.length, sha256: sha(bytes), block: BLOCK, from: 0 });
      ch.text({ t: "block", i: 1, sha256: sha(bytes.subarray(BLOCK)) });
    },
    (ch) => ch.text({ t: "meta", size: bytes.length, sha256: sha(bytes), block: 4 * BLOCK, from: 0 }),
  ]) {
    const { pc, d, run } = start(bytes);
    readOnce(d);
    script(await channel(pc, 0));
    await assert.rejects(run, (err) => ["protocol", "too-long"].includes(/** @type {any} */ (err).code));
  }
});

/** Every chunk the download stream gives, as it gives them. */
function collect(stream) {
  const chunks = [];
  const done = (async () => {
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return chunks;
      chunks.push(value);
    }
  })();
  return done;
}

const whole = (c) => c.byteOffset === 0 && c.byteLength === c.buffer.byteLength;

/** Record the binary messages arriving on `ch` (the buffers the download should hand on as they are). */
function record(ch) {
  /** @type {ArrayBuffer[]} */
  const seen = [];
  const take = ch.onmessage;
  ch.onmessage = (ev) => {
    if (typeof ev.data !== "string") seen.push(ev.data);
    take(ev);
  };
  return seen;
}

test("verified bytes reach the download as the messages they came in: the same buffers, not copies", async () => {
  const bytes = fileBytes(2 * BLOCK + 300);
  const pc = new FakePC();
  const d = new Download(entry(bytes.length));
  const run = d.run(/** @type {any} */ (pc));
  const reading = collect(d.stream);
  const ch = await channel(pc, 0);
  const seen = record(ch);
  assert.ok(serve(ch, bytes, 0));
  const chunks = await reading;
  await run;
  assert.equal(chunks.length, seen.length);
  for (const [i, c] of chunks.entries()) assert.ok(whole(c) && c.buffer === seen[i], `chunk ${i} is not the message's own buffer`);
  assert.equal(sha(Buffer.concat(chunks)), sha(bytes));
});

test("small messages (a peer sending 16 KiB at a time) are joined into chunks of at most 1 MiB for the download", async () => {
  const bytes = fileBytes(2 * BLOCK + 300);
  const { pc, d, run } = start(bytes);
  const reading = collect(d.stream);
  assert.ok(serve(await channel(pc, 0), bytes, 0, undefined, undefined, 16 << 10));
  const chunks = await reading;
  await run;
  assert.deepEqual(
    chunks.map((c) => c.byteLength),
    [BLOCK, BLOCK, 300],
  );
  assert.equal(sha(Buffer.concat(chunks)), sha(bytes));
});

test("a download moved to a new connection after three blocks hands on every verified message once", async () => {
  const bytes = fileBytes(5 * BLOCK);
  const first = new FakePC();
  const d = new Download(entry(bytes.length));
  const run = d.run(/** @type {any} */ (first));
  const reading = collect(d.stream);
  serve(await channel(first, 0), bytes, 0, (_i, b) => b, 3);
  d.drop();
  const second = new FakePC();
  d.attach(/** @type {any} */ (second));
  assert.deepEqual((await channel(second, 0)).sent[0], { t: "get", file: "7", from: 3 * BLOCK });
  assert.ok(serve(second.channels[0], bytes, 3 * BLOCK));
  const chunks = await reading;
  await run;
  assert.ok(chunks.every((c) => c.byteLength === 256 << 10 && whole(c)));
  assert.equal(sha(Buffer.concat(chunks)), sha(bytes));
});

test("a block's hash is the same with WebCrypto and without it (pages over plain HTTP)", async () => {
  const hasher = await createSHA256();
  for (const size of [0, 1, 300, BLOCK]) {
    const b = fileBytes(size);
    assert.equal(await blockDigest(b, hasher), sha(b));
    assert.equal(await blockDigest(b, hasher, null), sha(b));
  }
  await assert.rejects(blockDigest(fileBytes(3), null, null));
});
