// @ts-check
// Sentences about the pea server: why it cannot be reached (signaling.js's reason codes)
// and why it refused us (the error codes of errors.gen.js, each a key "server-error.<code>";
// the catalogue check holds every code to a sentence). The server's own English message
// is shown only for a code this page does not know.
import { ERRORS } from "../errors.gen.js";
import { t } from "../i18n/i18n.js";

const REASONS = new Set(["unavailable", "lost", "moved", "no-socket"]);

/** @param {{reason?: string, message?: string} | null | undefined} trouble */
export function serverWhy(trouble) {
  const r = trouble?.reason ?? "no-socket";
  if (!REASONS.has(r)) return r;
  const why = t(`server.why.${r}`);
  return r === "no-socket" && trouble?.message ? `${why} (${trouble.message})` : why;
}

/** @param {{code?: string, message?: string}} err */
export function serverErrorText(err) {
  if (err.code && Object.hasOwn(ERRORS, err.code)) return t(`server-error.${err.code}`);
  return err.message ?? "";
}
