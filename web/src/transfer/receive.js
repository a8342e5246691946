// @ts-check
// Receiver side of one file (protocol v3). A Download outlives the `get` channel
// and the connection it started on: it checks each 1 MiB block against the hash
// the sharer announced before taking it, so everything it has taken is verified
// and a new `get` on a new connection can start right after it. A damaged block
// is fetched again (a few times at most); a lost connection pauses it until the
// receiver attaches it to the next one. Verified bytes are exposed as a pull-based
// ReadableStream (the browser download, which stays open across a pause); an `ack`
// goes back only for bytes the download has taken, so memory stays bounded by the
// sender's window whatever the file size. `run()` resolves with {size, sha256}
// once every byte is verified and taken, or rejects with a TransferError (a code).
import { createSHA256 } from "hash-wasm";
import { visible } from "../names.js";
import { deferred } from "../util.js";
import { BLOCK, MAX_REFETCH, blockCount, blockLength, getMessage, isHash, metaFits } from "./blocks.js";
import { ACK_EVERY, GET_LABEL, TransferError, parse } from "./protocol.js";

const COALESCE = 2 << 20;
const PIECE = 1 << 20;

/** @typedef {{id: string, name: string, path?: string, size: number, mtime?: number}} WantedFile */
/**
 * One `get` channel: where it started, whether `meta` came, the next block it must
 * announce, the bytes still due for the block being received and its announced hash.
 * @typedef {{ch: RTCDataChannel, from: number, meta: boolean, next: number, left: number, hash: string}} Attempt
 */

/**
 * Where a download continues from bytes already saved (a file on disk after a reload):
 * `verified` bytes, block aligned, checked against `hashes` (hex, one per block, as the
 * sharer announced them), `whole` the file's SHA-256 state over them, `sha256` the hash the
 * sharer announced for the file then (a sharer announcing another one gets nothing).
 * @typedef {{verified: number, whole: import("hash-wasm").IHasher, hashes: string[], sha256: string}} SavedPrefix
 */

export class Download extends EventTarget {
  /** @param {WantedFile} file @param {SavedPrefix | null} [saved] */
  constructor(file, saved = null) {
    super();
    this.file = file;
    this.size = file.size;
    // The sharer's name, as the views put it into sentences: hidden and direction-changing characters shown, not obeyed.
    this.name = visible(file.name).text;
    /** @type {Uint8Array[]} verified bytes not yet taken by the download */
    this.queue = [];
    this.queued = 0;
    this.consumed = 0;
    this.lastAck = 0;
    /** Bytes [0, verified) are checked block by block and hashed into `whole`. */
    this.verified = 0;
    /** @type {Uint8Array[]} the block being received, kept apart until it is checked */
    this.partial = [];
    this.partialLength = 0;
    /** @type {string[]} the announced hash (hex) of every verified block, by index: a saved prefix is checked against them */
    this.hashes = [];
    /** @type {Map<number, number>} block index → times it failed its check */
    this.refetches = new Map();
    /** The whole-file SHA-256 the first `meta` announced: every later `meta` must repeat it. */
    this.sha256 = "";
    this.complete = false;
    this.finished = false;
    /** @type {TransferError | null} */
    this.error = null;
    /** @type {Attempt | null} */
    this.attempt = null;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {string | undefined} the receiver's key for it (see Receiver.start) */
    this.key = undefined;
    /** @type {(() => void) | null} */
    this.wakeup = null;
    /** @type {import("hash-wasm").IHasher | null} */
    this.whole = null;
    /** @type {import("hash-wasm").IHasher | null} */
    this.part = null;
    /** @type {ReturnType<typeof deferred<{size: number, sha256: string}>>} */
    this.settle = deferred();
    this.done = this.settle.promise;
    this.done.catch(() => {}); // callers that only read the stream still see the error there
    this.ready = Promise.all([createSHA256(), createSHA256()]).then(([w, p]) => {
      w.init();
      this.whole = w;
      this.part = p;
    });
    if (saved) {
      // Bytes already written and checked: the sharer sends from there, acks count from there.
      this.verified = this.consumed = this.lastAck = saved.verified;
      this.hashes = saved.hashes.slice(0, saved.verified / BLOCK);
      this.sha256 = saved.sha256;
      this.ready = this.ready.then(() => {
        this.whole = saved.whole;
      });
    }
    this.stream = new ReadableStream({ pull: (c) => this.pull(c), cancel: () => this.cancel() }, { highWaterMark: 1 });
  }

  /** Ask for the file on `pc`, from the first byte not yet verified; resolves as `done`. @param {RTCPeerConnection} pc */
  async run(pc) {
    await this.ready;
    this.attach(pc);
    return this.done;
  }

  /**
   * Open a `get` channel on `pc` starting at the verified offset (a new connection after a
   * loss, or the same one to fetch a damaged block again). Any previous channel is dropped.
   * @param {RTCPeerConnection} pc
   */
  attach(pc) {
    if (this.error || this.complete) return;
    this.drop();
    this.pc = pc;
    const ch = pc.createDataChannel(GET_LABEL, { ordered: true });
    ch.binaryType = "arraybuffer";
    /** @type {Attempt} */
    const a = { ch, from: this.verified, meta: false, next: this.verified / BLOCK, left: 0, hash: "" };
    if (this.verified === this.size) a.next = blockCount(this.size);
    this.attempt = a;
    this.emit("attached", { at: a.from });
    ch.onopen = () => {
      if (this.attempt === a) this.sendOn(a, getMessage(this.file.id, a.from));
    };
    ch.onmessage = (ev) => {
      if (this.attempt === a && !this.error) this.onMessage(a, ev.data);
    };
    ch.onclose = () => {
      if (this.attempt !== a || this.error || this.complete) return;
      // Not closed by us: the sharer ended it, or the connection under it is going.
      this.drop();
      this.emit("interrupted", { at: this.verified });
    };
  }

  /** The connection is gone (or about to be replaced): forget the channel and the unchecked part of a block. */
  drop() {
    const a = this.attempt;
    this.attempt = null;
    this.partial = [];
    this.partialLength = 0;
    if (a) {
      try {
        a.ch.close();
      } catch {}
    }
    this.emit("progress", { received: this.verified });
  }

  get paused() {
    return !this.attempt && !this.error && !this.complete;
  }

  /** The person (or the browser) stopped the download. */
  cancel() {
    if (this.attempt) this.sendOn(this.attempt, { t: "cancel" });
    this.fail("cancelled");
  }

  /**
   * The connection behind it is gone for good: stop with that code.
   * @param {string} code
   * @param {{why?: string}} [info]
   */
  abort(code, info = {}) {
    this.fail(code, info);
  }

  /** @param {string} type @param {unknown} detail */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  wake() {
    const w = this.wakeup;
    this.wakeup = null;
    w?.();
  }

  /** @param {string} code @param {object} [info] */
  fail(code, info = {}) {
    if (this.error || this.finished) return;
    this.error = new TransferError(code, { name: this.name, ...info });
    this.settle.reject(this.error);
    this.wake();
    const a = this.attempt;
    this.attempt = null;
    try {
      a?.ch.close();
    } catch {}
  }

  /** @param {Attempt} a @param {object} obj */
  sendOn(a, obj) {
    if (a.ch.readyState === "open") a.ch.send(JSON.stringify(obj));
  }

  /** @param {Attempt} a @param {unknown} data */
  onMessage(a, data) {
    if (typeof data !== "string") {
      this.onBytes(a, new Uint8Array(/** @type {ArrayBuffer} */ (data)));
      return;
    }
    const m = parse(data);
    if (!m) return;
    const size = this.size;
    if (m.t === "meta") {
      if (a.meta || !metaFits(m, size, a.from)) return this.fail("protocol");
      if (this.sha256 && m.sha256 !== this.sha256) return this.fail("changed");
      this.sha256 = m.sha256;
      a.meta = true;
    } else if (m.t === "block") {
      if (!a.meta || a.left !== 0 || m.i !== a.next || a.next >= blockCount(size) || !isHash(m.sha256)) return this.fail("protocol");
      a.left = blockLength(size, a.next);
      a.hash = m.sha256;
      a.next++;
      /** @type {NonNullable<typeof this.part>} */ (this.part).init();
    } else if (m.t === "end") {
      if (!a.meta || a.left !== 0) return this.fail("protocol");
      const whole = /** @type {NonNullable<typeof this.whole>} */ (this.whole);
      if (this.verified !== size || m.size !== size) {
        this.sendOn(a, { t: "bad", sha256: "" });
        return this.fail("short", { received: this.verified, size });
      }
      const sha256 = whole.digest("hex");
      if (sha256 !== this.sha256 || m.sha256 !== sha256) {
        this.sendOn(a, { t: "bad", sha256 });
        return this.fail("mismatch");
      }
      this.complete = true;
      this.wake();
    } else if (m.t === "error") {
      const code = typeof m.code === "string" ? m.code.slice(0, 40) : "";
      // The sharer's own words, shown as text only for a code we have none for: bounded, with nothing hidden in them.
      const said = typeof m.message === "string" && m.message ? visible(m.message.slice(0, 300)).text : "";
      if (code === "no-such-file" || code === "unreadable") this.fail(code);
      else this.fail("sender-error", { said, sent: code });
    }
  }

  /** @param {Attempt} a @param {Uint8Array} u */
  onBytes(a, u) {
    if (!a.meta || u.byteLength > a.left) {
      this.fail("too-long", { received: this.verified + this.partialLength + u.byteLength, size: this.size });
      return;
    }
    /** @type {NonNullable<typeof this.part>} */ (this.part).update(u);
    this.partial.push(u);
    this.partialLength += u.byteLength;
    a.left -= u.byteLength;
    if (a.left === 0) this.checkBlock(a);
    this.emit("progress", { received: this.verified + this.partialLength });
  }

  /** The block is complete: take it if its hash is the announced one, else fetch it again. @param {Attempt} a */
  checkBlock(a) {
    const i = a.next - 1;
    const got = /** @type {NonNullable<typeof this.part>} */ (this.part).digest("hex");
    if (got !== a.hash) {
      const n = (this.refetches.get(i) ?? 0) + 1;
      this.refetches.set(i, n);
      console.warn(`pea: block ${i} of “${this.name}” failed its check (${n} of ${MAX_REFETCH + 1}); fetching it again`);
      if (n > MAX_REFETCH) return this.fail("corrupt", { block: i });
      this.sendOn(a, { t: "cancel" });
      this.emit("refetch", { block: i });
      this.attach(/** @type {RTCPeerConnection} */ (this.pc));
      return;
    }
    this.hashes[i] = a.hash;
    const whole = /** @type {NonNullable<typeof this.whole>} */ (this.whole);
    for (const p of this.partial) {
      whole.update(p);
      this.queue.push(p);
      this.queued += p.byteLength;
    }
    this.verified += this.partialLength;
    this.partial = [];
    this.partialLength = 0;
    this.wake();
  }

  /** @param {ReadableStreamDefaultController} controller */
  async pull(controller) {
    // Wait for a piece worth a hop to the service worker (or the end): fewer, larger chunks.
    while (this.queued < PIECE && !this.complete && !this.error) {
      await new Promise((r) => {
        this.wakeup = /** @type {() => void} */ (r);
      });
    }
    if (this.error) {
      controller.error(this.error);
      return;
    }
    if (this.queue.length) {
      const u = this.take();
      controller.enqueue(u);
      this.queued -= u.byteLength;
      this.consumed += u.byteLength;
      if (this.consumed - this.lastAck >= ACK_EVERY && this.attempt) {
        this.lastAck = this.consumed;
        this.sendOn(this.attempt, { t: "ack", bytes: this.consumed });
      }
      return;
    }
    this.finished = true;
    controller.close();
    const a = this.attempt;
    if (a) {
      this.sendOn(a, { t: "ok", sha256: this.sha256 });
      setTimeout(() => a.ch.close(), 1000); // let `ok` leave before the channel goes
    }
    this.settle.resolve({ sha256: this.sha256, size: this.verified });
  }

  /** The next piece for the download: small chunks joined, since each one costs a hop to the service worker. */
  take() {
    const queue = this.queue;
    let u = /** @type {Uint8Array} */ (queue.shift());
    if (!queue.length || u.byteLength >= COALESCE) return u;
    const parts = [u];
    let n = u.byteLength;
    while (queue.length && n + queue[0].byteLength <= COALESCE) {
      n += queue[0].byteLength;
      parts.push(/** @type {Uint8Array} */ (queue.shift()));
    }
    u = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      u.set(p, at);
      at += p.byteLength;
    }
    return u;
  }
}
