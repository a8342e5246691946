// @ts-check
// Sender side of one `get` channel (protocol v3): waits for the file's block
// hashes (computed once when it was shared), then from the requested offset
// announces each block with its hash and sends its bytes, read in 4 MiB pieces (reader.js),
// under two limits: the channel's own buffer (an adaptive window, window.js) and
// the receiver's acknowledged window, so a receiver that writes slowly is never
// flooded. An upload keeps no state worth keeping: a resumed download is a new
// channel whose `get` says where to start.
import { BLOCK, blockHash, blockMessage, endMessage, metaMessage, validFrom } from "./blocks.js";
import { READ_BLOCK, TransferError, WINDOW, parse } from "./protocol.js";
import { PieceReader } from "./reader.js";
import { SendWindow } from "./window.js";

const HASH_WAIT_MS = 60 * 60 * 1000; // hashing a very large file on a slow disk, at worst

/** @typedef {import("./blocks.js").FileHashes} FileHashes */
/** @typedef {{id: string, file: Blob, name: string, path: string, size: number}} SharedFile */

export class Upload extends EventTarget {
  // `hashes(rec)`: a promise of the file's FileHashes, once known.
  constructor(channel, lookup, chunk, hashes) {
    super();
    this.ch = channel;
    this.lookup = lookup;
    this.chunk = chunk;
    this.buffer = new SendWindow(chunk);
    this.from = 0;
    this.acked = 0;
    this.sent = 0;
    this.closed = false;
    /** @type {any} */
    this.reply = null;
    /** @type {any} */
    this.request = null;
    /** @type {SharedFile | null} */
    this.file = null;
    /** @type {(rec: SharedFile) => Promise<FileHashes>} */
    this.hashes = hashes;
    /** @type {((v?: unknown) => void) | null} */
    this.wakeup = null;
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = this.buffer.low;
    channel.onbufferedamountlow = () => this.wake();
    channel.onclose = () => {
      this.closed = true;
      this.wake();
    };
    channel.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const m = parse(ev.data);
      if (!m) return;
      if (m.t === "get" && !this.request) this.request = m;
      // An ack beyond what was sent would only open the window wider than the protocol allows.
      else if (m.t === "ack" && Number.isFinite(m.bytes)) this.acked = Math.min(this.sent, Math.max(this.acked, m.bytes));
      else if (m.t === "ok" || m.t === "bad" || m.t === "cancel") this.reply = m;
      this.wake();
    };
  }

  /** The peer connection is gone: stop at once, whatever we were waiting for. */
  abort() {
    this.closed = true;
    this.wake();
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

  wait(ms = 1000) {
    return new Promise((resolve) => {
      this.wakeup = resolve;
      setTimeout(resolve, ms); // a missed event must not stall us forever
    });
  }

  /** @param {() => unknown} cond @param {number} timeoutMs @param {string} what */
  async until(cond, timeoutMs, what) {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      if (this.closed) throw new TransferError("gone", { name: this.file?.name });
      if (performance.now() > deadline) throw new TransferError("timeout", { what });
      await this.wait();
    }
  }

  /** @param {object} obj */
  sendText(obj) {
    this.ch.send(JSON.stringify(obj));
  }

  /** @param {string} code @param {string} message @returns {never} */
  refuse(code, message) {
    this.sendText({ t: "error", code, message });
    throw new TransferError(code, { name: this.file?.name });
  }

  async run() {
    const ch = this.ch;
    if (ch.readyState === "connecting") await new Promise((r) => ch.addEventListener("open", r, { once: true }));
    await this.until(() => this.request, 15000, "request");
    const rec = this.lookup(String(this.request.file));
    if (!rec) return this.refuse("no-such-file", "The sharer no longer offers this file.");
    this.file = rec;
    const size = rec.size;
    const from = this.request.from ?? 0;
    if (!validFrom(from, size)) return this.refuse("bad-offset", "A download can only start at a block boundary within the file.");
    this.from = from;
    this.sent = from;
    this.acked = from;
    this.emit("start", rec);
    /** @type {FileHashes | null} */
    let known = null;
    let broken = false;
    this.hashes(rec).then(
      (h) => {
        known = h;
        this.wake();
      },
      () => {
        broken = true;
        this.wake();
      },
    );
    await this.until(() => known || broken, HASH_WAIT_MS, "hashes");
    if (!known) return this.refuse("unreadable", "The sharer's browser can no longer read this file (moved or changed?).");
    const { sha256, blocks } = /** @type {FileHashes} */ (known);
    this.sendText(metaMessage(size, sha256, from));
    const reader = new PieceReader(rec.file, from, size);
    try {
      let offset = from;
      let next = from < size ? reader.next() : null;
      while (offset < size) {
        let buf;
        try {
          buf = await /** @type {Promise<Uint8Array>} */ (next);
        } catch {
          buf = new Uint8Array(0);
        }
        const want = Math.min(READ_BLOCK, size - offset);
        if (buf.byteLength !== want) return this.refuse("unreadable", "The sharer's browser can no longer read this file (moved or changed?).");
        const end = offset + want;
        next = end < size ? reader.next() : null; // read ahead while this one goes out
        next?.catch(() => {}); // awaited above on the next turn
        // READ_BLOCK is a multiple of BLOCK and `from` is block aligned: every read holds whole blocks.
        for (let b = 0; b < want; b += BLOCK) {
          const i = (offset + b) / BLOCK;
          this.sendText(blockMessage(i, blockHash(blocks, i)));
          await this.sendBytes(buf.subarray(b, Math.min(b + BLOCK, want)));
        }
        reader.done(buf); // send() copied it: the buffer takes a later piece
        offset = end;
      }
    } finally {
      reader.close();
    }
    this.sendText(endMessage(size, sha256));
    await this.until(() => this.reply, 120000, "confirmation");
    if (this.reply.t === "bad") throw new TransferError("mismatch", { name: rec.name });
    if (this.reply.t === "cancel") throw new TransferError("cancelled", { name: rec.name });
    this.emit("progress", { sent: size, acked: size });
    return { size, sha256 };
  }

  /** One block's bytes, in chunks, within both limits. @param {Uint8Array} bytes */
  async sendBytes(bytes) {
    const ch = this.ch;
    const name = this.file?.name;
    for (let p = 0; p < bytes.byteLength; p += this.chunk) {
      const piece = bytes.subarray(p, Math.min(p + this.chunk, bytes.byteLength));
      // Both limits count the chunk about to go: they are ceilings, never overshot.
      while (!this.buffer.fits(ch.bufferedAmount, piece.byteLength) || this.sent + piece.byteLength - this.acked > WINDOW) {
        if (this.closed) throw new TransferError("gone", { name });
        const full = !this.buffer.fits(ch.bufferedAmount, piece.byteLength);
        await this.wait();
        if (full && this.buffer.drained(ch.bufferedAmount)) ch.bufferedAmountLowThreshold = this.buffer.low;
      }
      if (this.closed) throw new TransferError("gone", { name });
      if (this.reply?.t === "cancel") throw new TransferError("cancelled", { name });
      ch.send(/** @type {Uint8Array<ArrayBuffer>} */ (piece));
      this.sent += piece.byteLength;
      this.emit("progress", { sent: this.sent, acked: this.acked });
    }
  }
}
