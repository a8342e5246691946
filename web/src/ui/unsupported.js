// @ts-check
// Sentences for what capabilities.js finds missing: why this browser cannot take part,
// and what to use instead.
import { msg, onLocaleChange, t } from "../i18n/i18n.js";
import { h, setText } from "./dom.js";
import { formatBytes } from "./format.js";

const KNOWN = new Set(["no-webrtc", "no-datachannel", "no-random"]);

export function unsupportedView(missing, role) {
  const why = h("p", { class: "status bad", "data-testid": "status", "data-state": "unsupported", role: "alert" });
  const say = () => setText(why, `${missing.map((c) => (KNOWN.has(c) ? t(`unsupported.${c}`) : c)).join(" ")} ${t(`unsupported.${role}.nothing`)}`);
  say();
  onLocaleChange(say);
  return h(
    "section",
    { class: "card unsupported" },
    h("h1", {}, msg(`unsupported.${role}.title`)),
    why,
    h("p", { "data-testid": "instead" }, msg("unsupported.instead")),
    h("p", { class: "muted", dir: "auto" }, msg("unsupported.missing", { codes: missing.join(", ") })),
  );
}

/** Why downloads are kept in memory here, and up to what size that is expected to work. */
export function memoryNotice(why, budget) {
  const limit = t("memory.limit", { size: formatBytes(budget) });
  if (why === "no-sw") return [t("memory.no-sw", { limit })];
  // The command stays code, set apart from the sentence around it.
  const [before, after] = t("memory.insecure", { limit, command: "\u0000" }).split("\u0000");
  return [before, h("code", { dir: "ltr" }, "pea serve --tls-cert … --tls-key …"), after];
}
