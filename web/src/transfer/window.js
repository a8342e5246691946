// @ts-check
// How much the sender keeps queued in a data channel's send buffer: a window that
// starts small and doubles each time the channel empties it before the sender
// refills it, up to HIGH_WATER.
//
// Why not queue HIGH_WATER at once: the browser's SCTP stack grows its congestion
// window while data waits in this buffer. A new channel handed megabytes at once
// lets it overshoot until a burst is lost whole (discarded on send, or dropped by
// the receiver's UDP socket), and SCTP then waits for its retransmission timer,
// about a second, before anything moves again. Starting small delays that first
// loss but does not prevent it (docs/benchmarks.md, "The start-up stall"). A buffer
// found empty means the sender did not keep the channel busy (the page was busy,
// or the window too small for the path), so the window grows; it never shrinks,
// since a channel that still holds data is as busy as it can be.
//
// A sender-side policy only: the receiver sees the same bytes in the same order.
import { HIGH_WATER } from "./protocol.js";

export const START_WINDOW = 256 << 10;

export class SendWindow {
  /**
   * @param {number} chunk the largest message the sender queues at once
   * @param {{start?: number, max?: number}} [limits]
   */
  constructor(chunk, { start = START_WINDOW, max = HIGH_WATER } = {}) {
    this.chunk = chunk;
    // Never below one chunk, or an empty channel could not take the next one.
    this.max = Math.max(max, chunk);
    this.size = Math.min(this.max, Math.max(start, chunk));
  }

  /**
   * The channel's bufferedAmountLowThreshold: the sender resumes below a quarter of the
   * window, and low enough for a whole chunk to fit then. The browser fires the event
   * only when the buffer falls to the threshold, so a resume point where the next chunk
   * does not fit would leave the sender waiting for an event that never comes.
   */
  get low() {
    return Math.max(0, Math.min(Math.floor(this.size / 4), this.size - this.chunk));
  }

  /**
   * May `bytes` more go into a channel holding `buffered`? A ceiling that counts the
   * message about to go: the buffer never exceeds the window.
   * @param {number} buffered @param {number} bytes
   */
  fits(buffered, bytes) {
    return buffered + bytes <= this.size;
  }

  /**
   * The sender waited for the channel to drain and now finds `buffered` bytes in it.
   * Returns true when the window grew (the caller then sets the new `low`).
   * @param {number} buffered
   */
  drained(buffered) {
    if (buffered > 0 || this.size >= this.max) return false;
    this.size = Math.min(this.max, this.size * 2);
    return true;
  }
}
