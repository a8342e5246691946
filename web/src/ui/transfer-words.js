// @ts-check
// Sentences for why a transfer stopped: transfer/protocol.js's TransferError codes (and
// download.js's), one set of catalogue keys per side ("receiving.<code>", "sending.<code>").
// `name` is the file's name as the model made it safe to show (hidden characters spelled out).
import { t } from "../i18n/i18n.js";

/** @typedef {{code?: string, message?: string, info?: {name?: string, what?: string, why?: string, received?: number, size?: number, said?: string, sent?: string, block?: number}}} CodedError */

/** @type {Record<string, (i: NonNullable<CodedError["info"]>) => string>} */
const RECEIVING = {
  vanished: ({ name, why }) => t(why === "left" || why === "lost" || why === "gave-up" ? `receiving.vanished.${why}` : "receiving.vanished", { name }),
  changed: ({ name }) => t("receiving.changed", { name }),
  corrupt: ({ name, block }) => t("receiving.corrupt", { name, part: Number(block) + 1 }),
  protocol: ({ name }) => t("receiving.protocol", { name }),
  "too-long": ({ name }) => t("receiving.too-long", { name }),
  short: ({ name, received, size }) => t("receiving.short", { name, received, size }),
  mismatch: ({ name }) => t("receiving.mismatch", { name }),
  "check-stopped": ({ name }) => t("receiving.check-stopped", { name }),
  cancelled: ({ name }) => t("receiving.cancelled", { name }),
  "zip-cancelled": () => t("receiving.zip-cancelled"),
  "no-such-file": () => t("receiving.no-such-file"),
  unreadable: () => t("receiving.unreadable"),
  "no-permission": ({ name }) => t("receiving.no-permission", { name }),
  "in-use": ({ name }) => t("receiving.in-use", { name }),
  "save-failed": ({ name, said }) => t("receiving.save-failed", { name, said }),
  // The sharer's own words, when it gave some, are what it said: they are not ours to translate.
  // "busy" (the sharer's uploads are all taken) and "bad-offset" (it refused where a resumed
  // download asked to start) are pea's own codes: said in the receiver's language.
  "sender-error": ({ said, sent }) => (sent === "busy" ? t("receiving.busy") : sent === "bad-offset" ? t("receiving.bad-offset") : said || t("receiving.sender-error")),
  // download.js: the browser's side of saving.
  "not-started": () => t("receiving.not-started"),
  "start-failed": ({ said }) => t("receiving.start-failed", { said: said || t("receiving.unknown-error") }),
  "worker-not-started": () => t("receiving.worker-not-started"),
  "worker-silent": () => t("receiving.worker-silent"),
};

/** @type {Record<string, (i: NonNullable<CodedError["info"]>) => string>} */
const SENDING = {
  gone: ({ name }) => t(name ? "sending.gone.mid-file" : "sending.gone"),
  timeout: ({ what }) => t(what === "request" || what === "confirmation" || what === "hashes" ? `sending.timeout.${what}` : "sending.timeout"),
  "no-such-file": () => t("sending.no-such-file"),
  "bad-offset": () => t("sending.bad-offset"),
  unreadable: () => t("sending.unreadable"),
  mismatch: () => t("sending.mismatch"),
  cancelled: () => t("sending.cancelled"),
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
