// @ts-check
// The receiver's checks off the page's thread: check-worker.js, run here behind a fake
// Worker that passes messages the way a browser does (later, structured-cloned), checks
// every block and the whole file's SHA-256 of a download; a block that fails is answered
// and left out of the file's hash; and a worker that dies mid-download stops it with a
// code of its own, not a hang or a wrong verdict.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BLOCK } from "../src/transfer/blocks.js";
import { BlockCheck } from "../src/transfer/block-check.js";
import { channel, drain, fileBytes, readOnce, serve, sha, start } from "./fake-sharer.js";

/** @type {FakeWorker[]} */
const workers = [];
/** @type {any} the worker script's `self` */
const scope = { onmessage: null, postMessage: (/** @type {any} */ m) => workers.at(-1)?.fromWorker(m) };

class FakeWorker {
  constructor() {
    /** @type {any} */
    this.onmessage = null;
    /** @type {any} */
    this.onerror = null;
    this.dead = false;
    this.checks = 0;
    workers.push(this);
    // The script runs once: it says it is ready from its top level.
    if (!scope.onmessage) import("../src/check-worker.js");
    else setTimeout(() => this.fromWorker({ ready: true }), 0);
  }
  /** @param {any} m */
  fromWorker(m) {
    setTimeout(() => !this.dead && this.onmessage?.({ data: structuredClone(m) }), 0);
  }
  /** @param {any} m @param {Transferable[]} [transfer] */
  postMessage(m, transfer = []) {
    if (this.dead) return;
    if (m.op === "check") this.checks++;
    const copy = structuredClone(m, { transfer });
    setTimeout(() => !this.dead && scope.onmessage({ data: copy }), 0);
  }
  terminate() {
    this.dead = true;
  }
  /** The worker crashes: the browser reports an error event on it. */
  crash() {
    this.onerror?.(new Event("error"));
    this.dead = true;
  }
}

Object.assign(globalThis, { self: scope, Worker: FakeWorker, location: { href: "http://pea.test/" } });

test("the checks run in the worker and the download verifies, the block copies handed over", async () => {
  const bytes = fileBytes(5 * BLOCK + 123);
  const { pc, d, run } = start(bytes);
  const out = drain(d.stream);
  assert.ok(serve(await channel(pc, 0), bytes, 0));
  assert.equal(sha(await out), sha(bytes));
  assert.deepEqual(await run, { size: bytes.length, sha256: sha(bytes) });
  assert.equal(workers.length, 1);
  assert.equal(workers[0].checks, 6, "every block went to the worker");
});

test("a block that fails is answered, left out of the file's hash, and the one fetched again taken", async () => {
  const bytes = fileBytes(3 * BLOCK);
  const c = await BlockCheck.create();
  const block = (i) => bytes.subarray(i * BLOCK, (i + 1) * BLOCK);
  const bad = block(1).slice();
  bad[7] ^= 1;
  const verdicts = await Promise.all([
    c.check(block(0), 0, sha(block(0))),
    c.check(bad, BLOCK, sha(block(1))),
    c.check(block(2), 2 * BLOCK, sha(block(2))), // came after the failure: answered, not taken
    c.check(block(1), BLOCK, sha(block(1))),
    c.check(block(2), 2 * BLOCK, sha(block(2))),
  ]);
  assert.deepEqual(verdicts, [true, false, true, true, true]);
  assert.equal(c.verified, 3 * BLOCK);
  assert.equal(await c.digest(), sha(bytes));
});

test("a worker that dies in the middle of a download stops it as check-stopped", async () => {
  const bytes = fileBytes(6 * BLOCK);
  const { pc, d, run } = start(bytes);
  const failed = run.catch((e) => e);
  readOnce(d);
  const ch = await channel(pc, 0);
  serve(ch, bytes, 0, undefined, 2);
  workers[0].crash();
  const err = await failed;
  assert.equal(err.code, "check-stopped");
  // The next download checks in the page: nothing is lost for it.
  const next = start(bytes);
  const out = drain(next.d.stream);
  assert.ok(serve(await channel(next.pc, 0), bytes, 0));
  assert.equal(sha(await out), sha(bytes));
  assert.equal(workers.length, 1, "no worker started again after one died");
});
