// @ts-check
// Constants and framing of the data-channel protocol (docs/transfer-protocol.md).
// Text messages are JSON objects with a field `t`; binary messages are file bytes.

export const VERSION = 3; // of the transfer protocol, sent in the sharer's `hello` on the control channel
export const CONTROL_LABEL = "control";
export const GET_LABEL = "get";

export const ACK_EVERY = 1 << 20; // receiver acknowledges every MiB it has written out
export const WINDOW = 16 << 20; // sender keeps at most this much unacknowledged: bounds receiver memory
export const HIGH_WATER = 4 << 20; // the most the sender queues in the channel (window.js grows up to it)
export const READ_BLOCK = 4 << 20; // File.slice granularity: large reads, few promises

/** The chunk size follows what the SCTP association accepts, within sane bounds. */
export function chunkSize(maxMessageSize) {
  const m = Number.isFinite(maxMessageSize) && maxMessageSize > 0 ? maxMessageSize : 65536;
  return Math.max(16384, Math.min(m, 256 << 10));
}

export function parse(text) {
  try {
    const m = JSON.parse(text);
    return m && typeof m === "object" && typeof m.t === "string" ? m : null;
  } catch {
    return null;
  }
}

/**
 * Why a transfer stopped, as a code (and the facts a sentence needs, in `info`): the
 * views turn it into words (ui/words.js), so nothing here is a sentence.
 *
 * Both sides: "cancelled", "mismatch" (SHA-256 did not match), "no-such-file",
 * "unreadable" (the sharer's browser can no longer read the file). Sender: "gone" (the
 * receiver left), "timeout" (info.what: "request" | "hashes" | "confirmation"),
 * "bad-offset" (a `get` starting inside a block or past the end). Receiver: "vanished"
 * (info.why: "left" | "lost" | "gave-up" (no new connection in time) | undefined),
 * "changed" (the sharer's file is not the one a paused download started with),
 * "corrupt" (info.block failed its check on every re-fetch), "protocol" (the sharer broke
 * the order of meta, blocks and end), "too-long", "short" (info.received, info.size),
 * "sender-error" (another code the sharer sent; info.said, its own words),
 * "zip-cancelled"; download.js: "not-started", "start-failed" (info.said),
 * "worker-not-started", "worker-silent".
 */
export class TransferError extends Error {
  /**
   * @param {string} code
   * @param {{name?: string, what?: string, why?: string, received?: number, size?: number, said?: string, block?: number}} [info]
   */
  constructor(code, info = {}) {
    super(code);
    this.code = code;
    this.info = info;
  }
}
