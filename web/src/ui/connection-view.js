// @ts-check
// What a person sees of how the direct connection went: a "Relayed" badge when the
// data goes through the server's TURN relay, and a details panel (candidate types
// found on each side, the pair in use, why it failed) they can copy into a bug
// report. It names no address: what is copied can be pasted anywhere.
import { h, setText } from "./dom.js";

const RELAYED_TITLE = "Relayed through the server's TURN relay: slower than direct, still end-to-end encrypted (the relay sees only ciphertext).";

const PATH_WORDS = {
  relayed: "relayed through the TURN server (still end-to-end encrypted)",
  direct: "direct",
};

const RELAY_WORDS = {
  on: "offered by this server",
  off: "not offered by this server",
  forbidden: "forbidden by this server",
};

// Why no relay saved a failed connection, by the server's relay policy; and what to try.
/** @type {Record<string, string>} */
export const RELAY_ADVICE = {
  off: "pea never relays files through a server (TURN is off by design)",
  forbidden: "this server forbids relaying files through it (TURN)",
  on: "even this server's relay (TURN) could not be reached: a firewall may block it",
};
export const TRY_WORDS = "Try both devices on the same network, or another network such as a phone hotspot.";

/** @param {string | undefined} relay */
export function relayAdvice(relay) {
  return RELAY_ADVICE[relay ?? "off"] ?? RELAY_ADVICE.off;
}

/** @param {Record<string, number>} counts */
function listTypes(counts) {
  const found = Object.entries(counts).filter(([, n]) => n > 0);
  return found.length ? found.map(([t, n]) => `${t} ×${n}`).join(", ") : "none";
}

/**
 * The copyable report for one PeerLink (or null: no connection attempt yet).
 * @param {any} link
 */
export function connectionReport(link) {
  if (!link) return "";
  const lines = ["pea connection report"];
  lines.push(`state: ${link.state}${link.failure ? ` (${link.failure})` : ""}`);
  if (link.path) lines.push(`path: ${link.relayed ? PATH_WORDS.relayed : PATH_WORDS.direct} (${link.path.local} ↔ ${link.path.remote}, ${link.path.protocol})`);
  lines.push(`candidates found here: ${listTypes(link.found.local)}`);
  lines.push(`candidates from the other side: ${listTypes(link.found.remote)}`);
  lines.push(`relay (TURN): ${RELAY_WORDS[link.relay] ?? link.relay}`);
  lines.push(`browser: ${navigator.userAgent}`);
  return lines.join("\n");
}

/** A "Relayed" badge, hidden until `update(link)` finds the link relayed. */
export function relayedBadge() {
  const el = h("span", { class: "badge relayed", "data-testid": "relayed", title: RELAYED_TITLE, hidden: true }, "Relayed · end-to-end encrypted");
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
          setText(copied, "Copied.");
        } catch {
          getSelection()?.selectAllChildren(pre);
          setText(copied, "Selected: copy it with your keyboard.");
        }
      },
    },
    "Copy",
  );
  const el = h("details", { class: "connection-details", "data-testid": "connection-details", hidden: true }, h("summary", {}, "Connection details"), pre, copy, copied);
  return {
    el,
    update(link) {
      el.hidden = !link;
      setText(pre, connectionReport(link));
    },
  };
}
