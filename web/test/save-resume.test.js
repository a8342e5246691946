// @ts-check
// A download into a chosen file, continued after a reload: where it resumes (the first
// block on disk that differs from the hash the sharer announced), the Download taking
// over from there with the file's SHA-256 still checked over every byte, which records
// match which files, and when the file is committed (Chromium puts its writes in place
// only on close).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { MAX_AGE_MS, fits, isStale, recordKey } from "../src/resume-store.js";
import { MIN_COMMIT, SaveFile, URGENT_COMMIT, shouldCommit, worthChoosing } from "../src/save-file.js";
import { BLOCK } from "../src/transfer/blocks.js";
import { Download } from "../src/transfer/receive.js";
import { savedPrefix } from "../src/transfer/saved-prefix.js";

const sha = (b) => createHash("sha256").update(b).digest("hex");

function fileBytes(size) {
  const b = new Uint8Array(size);
  for (let j = 0; j < size; j++) b[j] = (j * 13 + 5) & 0xff;
  return b;
}

function blockHashes(bytes) {
  const out = [];
  for (let at = 0; at < bytes.length; at += BLOCK) out.push(sha(bytes.subarray(at, at + BLOCK)));
  return out;
}

const reader = (disk) => async (start, end) => disk.slice(start, end);

test("every whole block on disk that matches its hash is kept, and the SHA-256 state covers them", async () => {
  const bytes = fileBytes(5 * BLOCK + 100);
  const hashes = blockHashes(bytes);
  const disk = bytes.slice(0, 4 * BLOCK + 7); // committed part way into block 4
  const { verified, whole } = await savedPrefix(reader(disk), disk.length, bytes.length, hashes);
  assert.equal(verified, 4 * BLOCK);
  whole.update(bytes.subarray(verified));
  assert.equal(whole.digest("hex"), sha(bytes));
});

test("the first altered block is where the download resumes, whatever follows it", async () => {
  const bytes = fileBytes(6 * BLOCK);
  const hashes = blockHashes(bytes);
  const disk = bytes.slice();
  disk[2 * BLOCK + 9] ^= 0x40;
  const { verified } = await savedPrefix(reader(disk), disk.length, bytes.length, hashes);
  assert.equal(verified, 2 * BLOCK);
});

test("only blocks with a recorded hash count, and a longer file on disk counts up to the file's size", async () => {
  const bytes = fileBytes(3 * BLOCK);
  const hashes = blockHashes(bytes);
  const disk = new Uint8Array(5 * BLOCK);
  disk.set(bytes);
  assert.equal((await savedPrefix(reader(disk), disk.length, bytes.length, hashes.slice(0, 2))).verified, 2 * BLOCK);
  assert.equal((await savedPrefix(reader(disk), disk.length, bytes.length, hashes)).verified, 3 * BLOCK);
  assert.equal((await savedPrefix(reader(new Uint8Array(0)), 0, bytes.length, hashes)).verified, 0);
});

/** One fake `get` channel that opens at once; the test plays the sharer on it. */
function fakePC() {
  const channels = [];
  return {
    channels,
    createDataChannel() {
      const ch = {
        readyState: "connecting",
        sent: /** @type {any[]} */ ([]),
        closed: false,
        onopen: /** @type {any} */ (null),
        onmessage: /** @type {any} */ (null),
        onclose: /** @type {any} */ (null),
        binaryType: "",
        send(d) {
          this.sent.push(JSON.parse(d));
        },
        close() {
          this.closed = true;
        },
      };
      channels.push(ch);
      queueMicrotask(() => {
        ch.readyState = "open";
        ch.onopen?.();
      });
      return ch;
    },
  };
}

async function firstChannel(pc) {
  for (let waited = 0; waited < 5000; waited += 5) {
    if (pc.channels[0]?.sent.length) return pc.channels[0];
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("no channel");
}

async function drain(stream) {
  const parts = [];
  const r = stream.getReader();
  for (;;) {
    const { value, done } = await r.read();
    if (done) break;
    parts.push(value);
  }
  return Buffer.concat(parts);
}

function serveFrom(ch, bytes, from, sha256 = sha(bytes)) {
  const size = bytes.length;
  const send = (o) => ch.onmessage({ data: JSON.stringify(o) });
  send({ t: "meta", size, sha256, block: BLOCK, from });
  if (sha256 !== sha(bytes)) return;
  for (let i = from / BLOCK; i * BLOCK < size; i++) {
    const block = bytes.subarray(i * BLOCK, Math.min(size, (i + 1) * BLOCK));
    send({ t: "block", i, sha256: sha(block) });
    ch.onmessage({ data: block.slice().buffer });
  }
  send({ t: "end", size, sha256 });
}

test("a Download continued from the bytes on disk asks from there, takes only the rest, and checks the whole file", async () => {
  const bytes = fileBytes(4 * BLOCK + 3);
  const hashes = blockHashes(bytes);
  const { verified, whole } = await savedPrefix(reader(bytes.slice(0, 2 * BLOCK + 5)), 2 * BLOCK + 5, bytes.length, hashes);
  const pc = fakePC();
  const d = new Download({ id: "1", name: "f.bin", path: "f.bin", size: bytes.length, mtime: 1 }, { verified, whole, hashes, sha256: sha(bytes) });
  const run = d.run(/** @type {any} */ (pc));
  const out = drain(d.stream);
  const ch = await firstChannel(pc);
  assert.deepEqual(ch.sent[0], { t: "get", file: "1", from: 2 * BLOCK });
  serveFrom(ch, bytes, 2 * BLOCK);
  assert.deepEqual(await out, Buffer.from(bytes.subarray(2 * BLOCK)));
  assert.equal((await run).sha256, sha(bytes));
  assert.deepEqual(d.hashes, hashes, "the record of a later commit holds every block's hash");
});

test("a sharer announcing another SHA-256 than the saved file's gets nothing written: the download fails as changed", async () => {
  const bytes = fileBytes(3 * BLOCK);
  const hashes = blockHashes(bytes);
  const { verified, whole } = await savedPrefix(reader(bytes), BLOCK, bytes.length, hashes);
  const pc = fakePC();
  const d = new Download({ id: "1", name: "f.bin", size: bytes.length }, { verified, whole, hashes, sha256: sha(bytes) });
  const run = d.run(/** @type {any} */ (pc));
  const ch = await firstChannel(pc);
  serveFrom(ch, bytes, BLOCK, "0".repeat(64));
  await assert.rejects(run, (err) => /** @type {any} */ (err).code === "changed");
  assert.equal(d.queued, 0);
});

test("a record continues only the same file of the same share, and is forgotten after a week", () => {
  const f = { id: "3", name: "a.bin", path: "dir/a.bin", size: 10, mtime: 99 };
  const now = Date.now();
  const rec = { key: recordKey("room1", f), size: 10, sha256: "x", hashes: [], updated: now, handle: { createWritable() {} } };
  assert.ok(fits(rec, "room1", f, now));
  assert.ok(fits(rec, "room1", { ...f, id: "other" }, now), "a reloaded sharer may number files anew");
  assert.ok(!fits(rec, "room2", f, now), "another share never continues it");
  assert.ok(!fits(rec, "room1", { ...f, size: 11 }, now));
  assert.ok(!fits(rec, "room1", { ...f, mtime: 98 }, now));
  assert.ok(!fits(rec, "room1", { ...f, path: "a.bin" }, now));
  assert.ok(!isStale(rec, now + MAX_AGE_MS - 1));
  assert.ok(isStale(rec, now + MAX_AGE_MS + 1));
  assert.ok(isStale({ ...rec, handle: {} }, now), "a record without a usable handle");
  assert.ok(isStale(null, now));
  assert.notEqual(recordKey("r", { name: "a\n1", size: 2 }), recordKey("r", { name: "a", size: 12 }), "keys cannot be forged by a name");
});

test("commits wait until the new bytes reach the committed ones (at least 64 MiB), sooner when the page may go", () => {
  assert.ok(!shouldCommit(0, MIN_COMMIT - 1, false));
  assert.ok(shouldCommit(0, MIN_COMMIT, false));
  assert.ok(!shouldCommit(4 * MIN_COMMIT, 3 * MIN_COMMIT, false));
  assert.ok(shouldCommit(4 * MIN_COMMIT, 4 * MIN_COMMIT, false));
  assert.ok(!shouldCommit(0, URGENT_COMMIT - 1, true));
  assert.ok(shouldCommit(0, URGENT_COMMIT, true));
  assert.ok(!shouldCommit(400 * URGENT_COMMIT, 99 * URGENT_COMMIT, true));
  assert.ok(shouldCommit(400 * URGENT_COMMIT, 100 * URGENT_COMMIT, true));
  // Each commit copies the committed file once when reopened: by this rule the copying over
  // a whole download stays within the file's size.
  let committed = 0;
  let copied = 0;
  const size = 10 * 1024 * MIN_COMMIT;
  for (let pending = 0, at = 0; at < size; at += BLOCK) {
    pending += BLOCK;
    if (shouldCommit(committed, pending, false)) {
      copied += committed;
      committed += pending;
      pending = 0;
    }
  }
  assert.ok(copied <= size, `copied ${copied} of ${size}`);
});

/** A file handle in memory whose writes, like Chromium's, reach the file only on close(). */
function memoryHandle() {
  const h = {
    file: new Uint8Array(0),
    opens: 0,
    async createWritable({ keepExistingData = false } = {}) {
      h.opens++;
      let swap = keepExistingData ? h.file.slice() : new Uint8Array(0);
      return {
        async write({ position, data }) {
          const grown = new Uint8Array(Math.max(swap.length, position + data.length));
          grown.set(swap);
          grown.set(data, position);
          swap = grown;
        },
        async truncate(n) {
          swap = swap.slice(0, n);
        },
        async close() {
          h.file = swap;
        },
        async abort() {},
      };
    },
  };
  return h;
}

test("SaveFile commits as it goes, continues after the committed bytes, and puts the rest in place at the end", async () => {
  globalThis.__peaMinCommit = 4;
  try {
    const h = memoryHandle();
    const commits = [];
    const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
    const s = new SaveFile(h, { onCommit: (n) => commits.push(n), doc });
    await s.open(0);
    for (const part of ["ab", "cd", "ef", "gh", "ij"]) await s.write(new TextEncoder().encode(part));
    assert.deepEqual(commits, [4, 8], "committed at 4 (the minimum) then at 8 (the committed bytes again)");
    assert.equal(new TextDecoder().decode(h.file), "abcdefgh", "what a reload would find");
    // Hidden page: committed sooner. (Here 2 pending bytes, below the urgent minimum: not yet.)
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    await s.chain;
    assert.equal(commits.length, 2);
    await s.finish();
    assert.equal(new TextDecoder().decode(h.file), "abcdefghij");

    // Continued after a reload from byte 4: the bytes before are kept, the rest written anew.
    const again = new SaveFile(h, { doc });
    await again.open(4);
    await again.write(new TextEncoder().encode("EFGHIJ"));
    await again.finish();
    assert.equal(new TextDecoder().decode(h.file), "abcdEFGHIJ");
  } finally {
    delete globalThis.__peaMinCommit;
  }
});

test("a page going hidden commits what is at stake (the tab may be discarded), not a few bytes", async () => {
  const h = memoryHandle();
  const commits = [];
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const s = new SaveFile(h, { onCommit: (n) => commits.push(n), doc });
  await s.open(0);
  await s.write(new Uint8Array(URGENT_COMMIT));
  assert.deepEqual(commits, [], "below 64 MiB: no commit while the page is visible");
  doc.visibilityState = "hidden";
  doc.dispatchEvent(new Event("visibilitychange"));
  await s.chain;
  assert.deepEqual(commits, [URGENT_COMMIT]);
  assert.equal(h.file.length, URGENT_COMMIT);
  await s.abort();
});

test("a failed commit stops the file there: no later write leaves a gap that a reload would keep", async () => {
  const h = memoryHandle();
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const s = new SaveFile(h, { doc });
  await s.open(0);
  const create = h.createWritable;
  h.createWritable = async (o) => {
    const w = await create(o);
    w.close = async () => {
      throw new Error("disk full");
    };
    return w;
  };
  await s.write(new Uint8Array(URGENT_COMMIT)); // still on the first writable: fine
  doc.visibilityState = "hidden";
  doc.dispatchEvent(new Event("visibilitychange")); // commits on the first writable: fine
  await s.chain;
  await assert.rejects(
    s.write(new Uint8Array(URGENT_COMMIT)).then(() => s.flush()),
    /disk full/,
  );
  await assert.rejects(s.write(new Uint8Array(1)), /disk full/);
  await assert.rejects(s.finish(), /disk full/);
});

test("only a file big enough to be committed before it ends asks where to save it", () => {
  assert.equal(worthChoosing(MIN_COMMIT - 1), false, "a smaller one would start over after a reload anyway: no dialog");
  assert.equal(worthChoosing(MIN_COMMIT), true);
  assert.equal(worthChoosing(4 * 2 ** 30), true);
});
