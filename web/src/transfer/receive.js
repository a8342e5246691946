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
//
// The channel's messages are handed on to the download as they came (each is its own
// buffer): the page's thread copies a block once, into a buffer used again and again,
// for the worker that checks it (checker.js); where no worker runs, the block is joined
// in the page. The checks are one native SHA-256 (the block's, WebCrypto where there is
// one) and one in WebAssembly (the whole file's, which must be incremental: WebCrypto has
// no incremental digest), off the page's thread where it can. A block's check is asynchronous, so
// complete blocks wait for it in order (`checks`); everything that depends on the
// verified offset (the `end`, a new channel) waits behind them.
import { visible } from "../names.js";
import { deferred } from "../util.js";
import { BLOCK, MAX_REFETCH, blockCount, blockLength, getMessage, isHash, metaFits } from "./blocks.js";
import { openChecker } from "./checker.js";
import { ACK_EVERY, GET_LABEL, TransferError, parse } from "./protocol.js";

// Messages smaller than this (a peer that sends small ones) are joined before they go to
// the download: each chunk is a hop to the service worker, or a write to the file.
const JOIN_BELOW = 64 << 10;
const JOIN_UP_TO = 1 << 20;

/** @typedef {{id: string, name: string, path?: string, size: number, mtime?: number}} WantedFile */
/**
 * One `get` channel (null until it opens, behind the checks): where it started, whether
 * `meta` came, the next block it must announce, the bytes still due for the block being
 * received and its announced hash.
 * @typedef {{ch: RTCDataChannel | null, from: number, meta: boolean, next: number, left: number, hash: string}} Attempt
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
    /** Bytes [0, verified) are checked block by block and hashed into the file's SHA-256 (`checker`). */
    this.verified = 0;
    /** @type {Uint8Array[]} the messages of the block being received, kept apart until it is checked */
    this.partial = [];
    this.partialLength = 0;
    /** Complete blocks waiting for their check, in order, and their bytes. */
    this.checks = Promise.resolve();
    this.checking = 0;
    this.checkingBytes = 0;
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
    /** @type {import("./checker.js").Checker | null} */
    this.checker = null;
    /** @type {Promise<string> | null} the file's SHA-256 once asked for */
    this.wholeDigest = null;
    /** @type {ReturnType<typeof deferred<{size: number, sha256: string}>>} */
    this.settle = deferred();
    this.done = this.settle.promise;
    this.done.catch(() => {}); // callers that only read the stream still see the error there
    if (saved) {
      // Bytes already written and checked: the sharer sends from there, acks count from there.
      this.verified = this.consumed = this.lastAck = saved.verified;
      this.hashes = saved.hashes.slice(0, saved.verified / BLOCK);
      this.sha256 = saved.sha256;
    }
    this.ready = openChecker(this.verified, saved ? saved.whole.save() : null).then((c) => {
      this.checker = c;
      // Ended before its checks could start: nothing to keep.
      if (this.error || this.finished) c.close();
    });
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
    /** @type {Attempt} */
    const a = { ch: null, from: 0, meta: false, next: 0, left: 0, hash: "" };
    this.attempt = a;
    // Blocks still being checked decide where the new channel starts: it opens after them.
    if (this.checking) this.checks = this.checks.then(() => this.open(a, pc));
    else this.open(a, pc);
  }

  /** @param {Attempt} a @param {RTCPeerConnection} pc */
  open(a, pc) {
    if (this.attempt !== a || this.error || this.complete) return;
    let ch;
    try {
      ch = pc.createDataChannel(GET_LABEL, { ordered: true });
    } catch {
      // The connection closed while the checks ran: the next one resumes it.
      this.attempt = null;
      this.emit("interrupted", { at: this.verified });
      return;
    }
    ch.binaryType = "arraybuffer";
    Object.assign(a, { ch, from: this.verified, next: this.verified / BLOCK });
    if (this.verified === this.size) a.next = blockCount(this.size);
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
    this.wake();
    try {
      a?.ch?.close();
    } catch {}
    this.emit("progress", { received: this.verified + this.checkingBytes });
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
    this.checker?.close();
    this.settle.reject(this.error);
    this.wake();
    const a = this.attempt;
    this.attempt = null;
    try {
      a?.ch?.close();
    } catch {}
  }

  /** @param {Attempt} a @param {object} obj */
  sendOn(a, obj) {
    if (a.ch?.readyState === "open") a.ch.send(JSON.stringify(obj));
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
      this.partial = [];
      this.partialLength = 0;
    } else if (m.t === "end") {
      if (!a.meta || a.left !== 0) return this.fail("protocol");
      this.checks = this.checks.then(() => {
        if (this.attempt === a && !this.error) return this.onEnd(a, m);
      });
    } else if (m.t === "error") {
      const code = typeof m.code === "string" ? m.code.slice(0, 40) : "";
      // The sharer's own words, shown as text only for a code we have none for: bounded, with nothing hidden in them.
      const said = typeof m.message === "string" && m.message ? visible(m.message.slice(0, 300)).text : "";
      if (code === "no-such-file" || code === "unreadable") this.fail(code);
      else this.fail("sender-error", { said, sent: code });
    }
  }

  /** The sharer's `end`, once every block before it is checked. @param {Attempt} a @param {any} m */
  async onEnd(a, m) {
    const size = this.size;
    if (this.verified !== size || m.size !== size) {
      this.sendOn(a, { t: "bad", sha256: "" });
      return this.fail("short", { received: this.verified, size });
    }
    let sha256 = "";
    try {
      // Once: a digest finishes the hash, and a new channel may bring the `end` again.
      this.wholeDigest ??= /** @type {import("./checker.js").Checker} */ (this.checker).digest();
      sha256 = await this.wholeDigest;
    } catch {
      return this.fail("check-stopped");
    }
    if (this.error) return;
    if (sha256 !== this.sha256 || m.sha256 !== sha256) {
      this.sendOn(a, { t: "bad", sha256 });
      return this.fail("mismatch");
    }
    this.complete = true;
    this.wake();
  }

  /** @param {Attempt} a @param {Uint8Array} u */
  onBytes(a, u) {
    if (!a.meta || u.byteLength > a.left) {
      this.fail("too-long", { received: this.verified + this.checkingBytes + this.partialLength + u.byteLength, size: this.size });
      return;
    }
    this.partial.push(u);
    this.partialLength += u.byteLength;
    a.left -= u.byteLength;
    if (a.left === 0) this.blockDone(a);
    this.emit("progress", { received: this.verified + this.checkingBytes + this.partialLength });
  }

  /**
   * A block's bytes are all here: its check starts now (WebCrypto answers in a later
   * task) and its result is taken in order, behind the blocks before it.
   * @param {Attempt} a
   */
  blockDone(a) {
    const block = this.partial;
    const length = this.partialLength;
    const at = (a.next - 1) * BLOCK;
    const hash = a.hash;
    this.partial = [];
    this.partialLength = 0;
    const verdict = /** @type {import("./checker.js").Checker} */ (this.checker).check(block, length, at, hash);
    verdict.catch(() => {}); // read in order below
    this.checking++;
    this.checkingBytes += length;
    this.checks = this.checks.then(async () => {
      let ok = false;
      try {
        ok = await verdict;
      } catch {
        // The checks' worker died: what it did not answer cannot be taken, nor the file's hash finished.
        this.checking--;
        this.checkingBytes -= length;
        return this.fail("check-stopped");
      }
      this.checking--;
      this.checkingBytes -= length;
      this.checkBlock(a, at, block, length, ok, hash);
    });
  }

  /**
   * Take a checked block if it is the next one, or fetch it again when it failed.
   * @param {Attempt} a @param {number} at @param {Uint8Array[]} block its messages
   * @param {number} length its bytes @param {boolean} ok
   * @param {string} hash the block's announced hash (hex), kept for a reload's check
   */
  checkBlock(a, at, block, length, ok, hash) {
    // A block after one that failed belongs to a channel already given up: it comes again.
    if (this.error || at !== this.verified) return;
    if (!ok) {
      const i = at / BLOCK;
      const n = (this.refetches.get(i) ?? 0) + 1;
      this.refetches.set(i, n);
      console.warn(`pea: block ${i} of “${this.name}” failed its check (${n} of ${MAX_REFETCH + 1}); fetching it again`);
      if (n > MAX_REFETCH) return this.fail("corrupt", { block: i });
      // From the channel it came on, if that is still the one: otherwise the next get starts here anyway.
      if (this.attempt !== a) return;
      this.sendOn(a, { t: "cancel" });
      this.emit("refetch", { block: i });
      this.attach(/** @type {RTCPeerConnection} */ (this.pc));
      return;
    }
    this.hashes[at / BLOCK] = hash;
    this.queue.push(...block);
    this.queued += length;
    this.verified += length;
    this.wake();
  }

  /** @param {ReadableStreamDefaultController} controller */
  async pull(controller) {
    let u = this.nextPiece();
    while (!u && !(this.complete && !this.queue.length) && !this.error) {
      await new Promise((r) => {
        this.wakeup = /** @type {() => void} */ (r);
      });
      u = this.nextPiece();
    }
    if (this.error) {
      controller.error(this.error);
      return;
    }
    if (u) {
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
    this.checker?.close();
    controller.close();
    const a = this.attempt;
    if (a) {
      this.sendOn(a, { t: "ok", sha256: this.sha256 });
      setTimeout(() => a.ch?.close(), 1000); // let `ok` leave before the channel goes
    }
    this.settle.resolve({ sha256: this.sha256, size: this.verified });
  }

  /**
   * The next chunk for the download: a message as it came (its own buffer, so nothing is
   * copied on the way), or small messages joined. Null: wait for more.
   * @returns {Uint8Array | null}
   */
  nextPiece() {
    const q = this.queue;
    if (!q.length) return null;
    if (q[0].byteLength >= JOIN_BELOW || q.length === 1) return /** @type {Uint8Array} */ (q.shift());
    let k = 0;
    let n = 0;
    while (k < q.length && q[k].byteLength < JOIN_BELOW && n + q[k].byteLength <= JOIN_UP_TO) n += q[k++].byteLength;
    const out = new Uint8Array(n);
    let at = 0;
    for (const u of q.splice(0, k)) {
      out.set(u, at);
      at += u.byteLength;
    }
    return out;
  }
}
