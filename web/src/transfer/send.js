// @ts-check
// Sender side of one `get` channel: reads the file with File.slice in blocks,
// hashes it on the way out, and sends chunks under two limits: the channel's
// own buffer (an adaptive window, window.js) and the receiver's acknowledged
// window, so a receiver that writes slowly is never flooded.
import { createSHA256 } from "hash-wasm";
import { READ_BLOCK, TransferError, WINDOW, parse } from "./protocol.js";
import { SendWindow } from "./window.js";

export class Upload extends EventTarget {
  constructor(channel, lookup, chunk) {
    super();
    this.ch = channel;
    this.lookup = lookup;
    this.chunk = chunk;
    this.acked = 0;
    this.sent = 0;
    this.closed = false;
    this.reply = null;
    this.request = null;
    this.file = null;
    this.wakeup = null;
    this.buffer = new SendWindow(chunk);
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

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  wake() {
    /** @type {((v?: unknown) => void) | null} */
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

  async until(cond, timeoutMs, what) {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      if (this.closed) throw new TransferError("gone");
      if (performance.now() > deadline) throw new TransferError("timeout", { what });
      await this.wait();
    }
  }

  async run() {
    const ch = this.ch;
    if (ch.readyState === "connecting") await new Promise((r) => ch.addEventListener("open", r, { once: true }));
    await this.until(() => this.request, 15000, "request");
    const rec = this.lookup(String(this.request.file));
    if (!rec) {
      ch.send(JSON.stringify({ t: "error", code: "no-such-file", message: "The sharer no longer offers this file." }));
      throw new TransferError("no-such-file");
    }
    this.file = rec;
    this.emit("start", rec);
    const { file, size } = rec;
    // Known already (hashed in a worker when shared): no hashing while sending.
    const known = typeof rec.sha256 === "string" ? rec.sha256 : null;
    const hasher = known ? null : await createSHA256();
    hasher?.init();
    const read = (at) => file.slice(at, Math.min(size, at + READ_BLOCK)).arrayBuffer();
    let offset = 0;
    let next = size > 0 ? read(0) : null;
    while (offset < size) {
      let buf;
      try {
        buf = new Uint8Array(await next);
      } catch {
        buf = new Uint8Array(0);
      }
      if (buf.byteLength === 0) {
        ch.send(JSON.stringify({ t: "error", code: "unreadable", message: "The sharer's browser can no longer read this file (moved or changed?)." }));
        throw new TransferError("unreadable", { name: rec.name });
      }
      const end = offset + buf.byteLength;
      next = end < size ? read(end) : null; // read ahead while this block goes out
      hasher?.update(buf);
      for (let p = 0; p < buf.byteLength; p += this.chunk) {
        const piece = buf.subarray(p, Math.min(p + this.chunk, buf.byteLength));
        // Both limits count the chunk about to go: they are ceilings, never overshot.
        while (!this.buffer.fits(ch.bufferedAmount, piece.byteLength) || this.sent + piece.byteLength - this.acked > WINDOW) {
          if (this.closed) throw new TransferError("gone", { name: rec.name });
          const full = !this.buffer.fits(ch.bufferedAmount, piece.byteLength);
          await this.wait();
          if (full && this.buffer.drained(ch.bufferedAmount)) ch.bufferedAmountLowThreshold = this.buffer.low;
        }
        if (this.closed) throw new TransferError("gone", { name: rec.name });
        ch.send(piece);
        this.sent += piece.byteLength;
        this.emit("progress", { sent: this.sent, acked: this.acked });
      }
      offset = end;
    }
    const sha256 = known ?? /** @type {NonNullable<typeof hasher>} */ (hasher).digest("hex");
    ch.send(JSON.stringify({ t: "end", size, sha256 }));
    await this.until(() => this.reply, 120000, "confirmation");
    if (this.reply.t === "bad") throw new TransferError("mismatch", { name: rec.name });
    if (this.reply.t === "cancel") throw new TransferError("cancelled", { name: rec.name });
    this.emit("progress", { sent: size, acked: size });
    return { size, sha256 };
  }
}
