// @ts-check
// Receiver side of one file: opens a `get` channel, hashes bytes as they
// arrive, and exposes them as a pull-based ReadableStream; an `ack` goes back
// only for bytes the consumer (the download) has taken, so memory stays
// bounded by the sender's window whatever the file size.
// Same conventions as send.js's Upload: an EventTarget that emits "progress",
// `run()` resolves with {size, sha256} or rejects with a TransferError (a code).
import { createSHA256 } from "hash-wasm";
import { visible } from "../names.js";
import { deferred } from "../util.js";
import { ACK_EVERY, GET_LABEL, TransferError, parse } from "./protocol.js";

const COALESCE = 2 << 20;
const PIECE = 1 << 20;

export class Download extends EventTarget {
  /**
   * @param {RTCPeerConnection} pc
   * @param {{id: string, name: string, size: number}} file
   */
  constructor(pc, file) {
    super();
    this.file = file;
    // The sharer's name, as the views put it into sentences: hidden and direction-changing characters shown, not obeyed.
    this.name = visible(file.name).text;
    this.ch = pc.createDataChannel(GET_LABEL, { ordered: true });
    this.ch.binaryType = "arraybuffer";
    /** @type {Uint8Array[]} */
    this.queue = [];
    this.received = 0;
    this.consumed = 0;
    this.queued = 0;
    this.lastAck = 0;
    this.verified = false;
    this.sha256 = "";
    /** @type {TransferError | null} */
    this.error = null;
    this.finished = false;
    /** @type {(() => void) | null} */
    this.wakeup = null;
    this.hasher = null;
    /** @type {ReturnType<typeof deferred<{size: number, sha256: string}>>} */
    this.settle = deferred();
    this.done = this.settle.promise;
    this.done.catch(() => {}); // callers that only read the stream still see the error there
    this.ch.onclose = () => {
      if (!this.verified) this.fail("vanished");
    };
    this.ch.onmessage = (ev) => this.onMessage(ev);
    this.stream = new ReadableStream({ pull: (c) => this.pull(c), cancel: () => this.cancel() }, { highWaterMark: 1 });
  }

  /** Ask for the file; resolves once every byte is verified and taken from `stream`. */
  async run() {
    const hasher = await createSHA256();
    hasher.init();
    this.hasher = hasher;
    const ask = () => this.send({ t: "get", file: this.file.id });
    if (this.ch.readyState === "open") ask();
    else this.ch.onopen = ask;
    return this.done;
  }

  /** The person (or the browser) stopped the download. */
  cancel() {
    this.send({ t: "cancel" });
    this.fail("cancelled");
  }

  /**
   * The connection behind it is gone: stop with that code.
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
    try {
      this.ch.close();
    } catch {}
  }

  /** @param {object} obj */
  send(obj) {
    if (this.ch.readyState === "open") this.ch.send(JSON.stringify(obj));
  }

  /** @param {MessageEvent} ev */
  onMessage(ev) {
    if (this.error || !this.hasher) return;
    const size = this.file.size;
    if (typeof ev.data !== "string") {
      const u = new Uint8Array(ev.data);
      this.received += u.byteLength;
      if (this.received > size) {
        this.fail("too-long", { received: this.received, size });
        return;
      }
      this.hasher.update(u);
      this.queue.push(u);
      this.queued += u.byteLength;
      this.emit("progress", { received: this.received });
      this.wake();
      return;
    }
    const m = parse(ev.data);
    if (!m) return;
    if (m.t === "end") {
      const sha256 = this.hasher.digest("hex");
      if (this.received !== size || m.size !== size) {
        this.send({ t: "bad", sha256 });
        this.fail("short", { received: this.received, size });
      } else if (typeof m.sha256 !== "string" || m.sha256.toLowerCase() !== sha256) {
        this.send({ t: "bad", sha256 });
        this.fail("mismatch");
      } else {
        this.verified = true;
        this.sha256 = sha256;
        this.wake();
      }
    } else if (m.t === "error") {
      const code = typeof m.code === "string" ? m.code.slice(0, 40) : "";
      // The sharer's own words, shown as text only for a code we have none for: bounded, with nothing hidden in them.
      const said = typeof m.message === "string" && m.message ? visible(m.message.slice(0, 300)).text : "";
      if (code === "no-such-file" || code === "unreadable") this.fail(code);
      else this.fail("sender-error", { said, sent: code });
    }
  }

  /** @param {ReadableStreamDefaultController} controller */
  async pull(controller) {
    // Wait for a piece worth a hop to the service worker (or the end): fewer, larger chunks.
    while (this.queued < PIECE && !this.verified && !this.error) {
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
      if (this.consumed - this.lastAck >= ACK_EVERY) {
        this.lastAck = this.consumed;
        this.send({ t: "ack", bytes: this.consumed });
      }
      return;
    }
    this.finished = true;
    controller.close();
    this.send({ t: "ok", sha256: this.sha256 });
    this.settle.resolve({ sha256: this.sha256, size: this.received });
    setTimeout(() => this.ch.close(), 1000); // let `ok` leave before the channel goes
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
