// @ts-check
// What a person sees of how the direct connection went: a "Relayed" badge when the
// data goes through the server's TURN relay, and a details panel (candidate types
// found on each side, the pair in use, why it failed) they can copy into a bug
// report. It names no address: what is copied can be pasted anywhere.
// Every word here is the person's language (the catalogue's "connection.*" keys); the
// tests read the English report ("path: direct", "state: failed").
import { msg, t } from "../i18n/i18n.js";
import { h, setText } from "./dom.js";

const RELAY_POLICIES = new Set(["on", "off", "forbidden"]);

/**
 * Why no relay saved a failed connection, by the server's relay policy ("on", "off" or
 * "forbidden"; unknown is taken as "off").
 * @param {string | undefined} relay
 */
export function relayAdvice(relay) {
  return t(`connection.advice.${RELAY_POLICIES.has(relay ?? "") ? relay : "off"}`);
}

/** What to try when no direct connection could be made. */
export const tryWords = () => t("connection.try");

/** @param {Record<string, number>} counts */
function listTypes(counts) {
  const found = Object.entries(counts).filter(([, n]) => n > 0);
  return found.length ? found.map(([type, n]) => `${type} ×${n}`).join(", ") : t("connection.report.none");
}

/**
 * The copyable report for one PeerLink (or null: no connection attempt yet).
 * @param {any} link
 */
export function connectionReport(link) {
  if (!link) return "";
  const lines = [t("connection.report.title")];
  lines.push(t("connection.report.state", { state: link.failure ? `${link.state} (${link.failure})` : link.state }));
  if (link.path) {
    const how = t(link.relayed ? "connection.path.relayed" : "connection.path.direct");
    lines.push(t("connection.report.path", { how, local: link.path.local, remote: link.path.remote, protocol: link.path.protocol }));
  }
  lines.push(t("connection.report.found-here", { types: listTypes(link.found.local) }));
  lines.push(t("connection.report.found-there", { types: listTypes(link.found.remote) }));
  lines.push(t("connection.report.relay", { policy: RELAY_POLICIES.has(link.relay) ? t(`connection.relay.${link.relay}`) : String(link.relay) }));
  lines.push(t("connection.report.browser", { browser: navigator.userAgent }));
  return lines.join("\n");
}

/** A "Relayed" badge, hidden until `update(link)` finds the link relayed. */
export function relayedBadge() {
  const el = h("span", { class: "badge relayed", "data-testid": "relayed", title: msg("connection.relayed-title"), hidden: true }, msg("connection.relayed"));
  return {
    el,
    update(link) {
      el.hidden = !(link?.state === "connected" && link.relayed);
    },
  };
}

/** The details panel; `update(link)` refreshes it (a no-op when nothing changed). */
export function connectionDetails() {
  const pre = h("pre", { class: "report", "data-testid": "connection-report" });
  const copied = h("span", { class: "copied", "aria-live": "polite" });
  const copy = h(
    "button",
    {
      type: "button",
      class: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(pre.textContent ?? "");
          setText(copied, t("connection.copied"));
        } catch {
          getSelection()?.selectAllChildren(pre);
          setText(copied, t("connection.selected"));
        }
      },
    },
    msg("connection.copy"),
  );
  const el = h("details", { class: "connection-details", "data-testid": "connection-details", hidden: true }, h("summary", {}, msg("connection.details")), pre, copy, copied);
  return {
    el,
    update(link) {
      el.hidden = !link;
      setText(pre, connectionReport(link));
    },
  };
}
