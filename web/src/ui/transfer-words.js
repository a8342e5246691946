// @ts-check
// Sentences for why a transfer stopped: transfer/protocol.js's TransferError codes (and
// download.js's), one table per side. `name` is the file's name as the model made it
// safe to show (hidden characters spelled out).

/** @typedef {{code?: string, message?: string, info?: {name?: string, what?: string, why?: string, received?: number, size?: number, said?: string, block?: number}}} CodedError */

/** @type {Record<string, (i: NonNullable<CodedError["info"]>) => string>} */
const RECEIVING = {
  vanished: ({ name, why }) =>
    why === "left"
      ? `The sharer left in the middle of “${name}”; that download was stopped.`
      : why === "lost"
        ? `The connection to the sharer was lost in the middle of “${name}”; that download was stopped.`
        : why === "gave-up"
          ? `The connection to the sharer was lost in the middle of “${name}” and could not be made again in time; that download was stopped.`
          : `The sharer vanished in the middle of “${name}” (closed the page or lost the network).`,
  changed: ({ name }) => `“${name}” cannot continue: the sharer's file is no longer the one this download started with.`,
  corrupt: ({ name, block }) => `Part ${Number(block) + 1} of “${name}” arrived damaged four times: the sharer's file is changing or its disk is failing. The download was stopped.`,
  protocol: ({ name }) => `The sharer's page sent “${name}” out of order; the download was stopped.`,
  "too-long": ({ name }) => `“${name}” came with more bytes than announced; discarded.`,
  short: ({ name, received, size }) => `“${name}” arrived with ${received} bytes instead of ${size}.`,
  mismatch: ({ name }) => `SHA-256 mismatch for “${name}”: the bytes received are not the bytes sent. The download was stopped.`,
  cancelled: ({ name }) => `The download of “${name}” was cancelled.`,
  "zip-cancelled": () => "The zip download was cancelled.",
  "no-such-file": () => "The sharer no longer offers this file.",
  unreadable: () => "The sharer's browser can no longer read this file (moved or changed?).",
  "sender-error": ({ said }) => said || "The sharer could not send this file.",
  // download.js: the browser's side of saving.
  "not-started": () => "the browser did not start the download (no answer from the download worker); nothing was saved",
  "start-failed": ({ said }) => `the browser could not start the download (${said || "unknown error"}); nothing was saved`,
  "worker-not-started": () => "service worker did not start",
  "worker-silent": () => "service worker did not answer",
};

/** @type {Record<string, (i: NonNullable<CodedError["info"]>) => string>} */
const SENDING = {
  gone: ({ name }) => (name ? "the receiver left during the transfer" : "the receiver closed the transfer"),
  timeout: ({ what }) => `no ${what} from the receiver`,
  "no-such-file": () => "asked for a file that is not shared",
  "bad-offset": () => "asked to start inside a block",
  unreadable: () => "the file can no longer be read (moved or changed?)",
  mismatch: () => "the receiver's SHA-256 did not match: the file was damaged in transit",
  cancelled: () => "the receiver cancelled",
};

/**
 * Why a download stopped, for the person receiving.
 * @param {CodedError} err
 */
export function receiveErrorText(err) {
  const say = err.code ? RECEIVING[err.code] : undefined;
  return say ? say(err.info ?? {}) : String(err.message ?? err);
}

/**
 * Why an upload stopped, for the person sharing.
 * @param {CodedError} err
 */
export function sendErrorText(err) {
  const say = err.code ? SENDING[err.code] : undefined;
  return say ? say(err.info ?? {}) : String(err.message ?? err);
}
