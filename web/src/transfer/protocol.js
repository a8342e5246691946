// @ts-check
// Constants and framing of the data-channel protocol (docs/transfer-protocol.md).
// Text messages are JSON objects with a field `t`; binary messages are file bytes.

export const VERSION = 1;
export const CONTROL_LABEL = "control";
export const GET_LABEL = "get";

export const ACK_EVERY = 1 << 20; // receiver acknowledges every MiB it has written out
export const WINDOW = 16 << 20; // sender keeps at most this much unacknowledged: bounds receiver memory
export const HIGH_WATER = 4 << 20; // sender stops queueing into the channel above this…
export const LOW_WATER = 1 << 20; // …and resumes below this (bufferedAmountLowThreshold)
export const READ_BLOCK = 4 << 20; // File.slice granularity: large reads, few promises
export const MANIFEST_BATCH = 200; // entries per `add` message, far below any message size limit

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

export class TransferError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
