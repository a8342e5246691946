// @ts-check
// The receiving page: connection state in words, the shared files and notes,
// download buttons with progress, and every failure explained.
import { CONNECT_TIMEOUT_MS } from "../peer.js";
import { RESUME_MS } from "../receiver.js";
import { visible } from "../names.js";
import { formatBytes, progressText } from "./format.js";
import { banner, h, setText, syncList } from "./dom.js";
import { receiveErrorText } from "./transfer-words.js";
import { memoryNotice } from "./unsupported.js";

export const V1_LINK_SENTENCE =
  "This link was made by an older version of pea, which this page no longer accepts (it could not tell the sharer from anyone else holding the link). Nothing was downloaded: ask the sharer to share again and send you the new link.";
export const V2_LINK_SENTENCE =
  "This link was made by an older version of pea, which this page no longer accepts (it cannot resume a broken transfer). Nothing was downloaded: ask the sharer to share again and send you the new link.";
export const IMPOSTOR_SENTENCE = "Someone else who has this link tried to pose as the sharer; pea ignored them.";

/** @type {Record<string, (d: {kind?: string, message?: string}) => string>} */
const TAMPERED_WORDS = {
  altered: ({ kind }) => `A signed ${kind} did not verify: it was altered on the way, so the server or the network is tampering with this connection. pea refused it. Nothing was downloaded.`,
  "refused-answer": () => "The sharer refused our answer: it was altered on the way, so the server or the network is tampering with this connection. Nothing was downloaded.",
};

/** @type {Record<string, (d: {message?: string}) => string>} */
const FAILED_WORDS = {
  refused: ({ message }) => message || "The server refused to let us in.",
  "no-peer": ({ message }) => `This browser could not start a direct connection (${message}). Try a current Firefox, Chrome, Edge or Safari.`,
  setup: ({ message }) => `Could not set up the connection: ${message}`,
  version: () => "The sharer's page runs another version of pea; ask them to reload it and share again.",
};

/** @type {Record<string, (a: {kind?: string, error?: any}) => string>} */
const ALERT_WORDS = {
  "tamper-ignored": ({ kind }) =>
    `Ignored a signed ${kind} that did not verify: it was altered on the way (the server or the network is tampering). The direct connection, already verified, continues.`,
  "remote-tamper-ignored": () => "The sharer reported a signal that did not verify (the server or the network is tampering). The direct connection, already verified, is unaffected.",
  mismatch: ({ error }) => receiveErrorText(error),
};

/** Links this page will not open, by code (main.js decides which). */
const REFUSED_LINK_WORDS = {
  v1: { title: "This link is from an older pea", sentence: V1_LINK_SENTENCE },
  v2: { title: "This link is from an older pea", sentence: V2_LINK_SENTENCE },
  incomplete: { title: "This link is incomplete", sentence: "The part after # is not a valid pea link. Ask for the link again." },
};

/** @param {"v1" | "v2" | "incomplete"} code */
export function refusedLinkView(code) {
  const { title, sentence } = REFUSED_LINK_WORDS[code];
  return h("section", { class: "card" }, h("h1", {}, title), h("p", { "data-testid": "status", class: "status bad" }, sentence), h("p", {}, h("a", { href: "/" }, "Share your own files")));
}

/** A running download's line: paused while reconnecting, and where it resumed once it has. */
function runningText(d) {
  if (d.paused) return `Paused at ${formatBytes(d.meter.done)}: waiting for the connection to come back.`;
  const text = progressText(d.meter);
  return d.resumedAt >= 0 ? `${text} · resumed at ${formatBytes(d.resumedAt)}` : text;
}

function statusText(rx) {
  const t = rx.serverTrouble;
  const retry = t?.retryInMs ? ` Retrying in ${Math.ceil(t.retryInMs / 1000)} s.` : "";
  switch (rx.state) {
    case "connecting-server":
      return "Connecting to the pea server…";
    case "server-offline":
      return `The pea server is unreachable (${t?.reason || "no connection"}).${retry}`;
    case "waiting":
      return "Looking for the sharer…";
    case "no-sharer":
      return "Nobody is sharing on this link right now. The sharer may have closed the page: ask them for a new link. Still waiting…";
    case "connecting-peer":
      return "Connecting directly to the sharer…";
    case "connected":
      return t ? "Connected to the sharer. The pea server is unreachable, but the direct connection keeps working." : "Connected to the sharer.";
    case "sharer-left":
      return "The sharer left: they closed the page or lost their network. Ask them to share again.";
    case "reconnecting":
      return `The direct connection to the sharer was lost (one of you lost the network). Reconnecting… unfinished downloads will continue where they stopped (pea keeps trying for ${RESUME_MS / 60000} minutes).`;
    case "lost":
      return rx.detail === "gave-up"
        ? `The direct connection to the sharer was lost and could not be made again within ${RESUME_MS / 1000} s (one of you is still offline).`
        : "The direct connection to the sharer was lost (one of you lost the network).";
    case "no-route": {
      // Some browsers (Firefox) give up at once where no network path exists; others wait for our bound.
      const why = rx.detail === "ice-failed" ? "the two browsers found no network path to each other" : `nothing answered within ${CONNECT_TIMEOUT_MS / 1000} s`;
      return `No direct connection to the sharer: ${why}. A strict NAT or firewall is probably between you. pea never relays files through a server (TURN is off by design). Try both devices on the same network, or another network such as a phone hotspot.`;
    }
    case "tampered":
      return `Connection refused: tampering detected. ${TAMPERED_WORDS[rx.detail?.code]?.(rx.detail) ?? ""}`;
    case "failed":
      return FAILED_WORDS[rx.detail?.code]?.(rx.detail) ?? "The connection failed.";
    default:
      return rx.state;
  }
}

/**
 * `path` says how downloads reach the disk ({mode: "stream" | "memory", why, budget}, see
 * capabilities.js); main.js fills in `budget` and a late fallback, then asks for a render.
 */
export function receiveView({ receiver, path }) {
  const status = h("p", { class: "status", "data-testid": "status", role: "status", "aria-live": "polite" });
  const alerts = h("div", { class: "alerts", "aria-live": "assertive" });
  const list = h("ul", { class: "list files" });
  const notes = h("ul", { class: "list notes" });
  const notesHead = h("h2", { hidden: true }, "Notes");
  const allState = h("span", { class: "detail" });
  const allBar = h("progress", { max: 1, value: 0, hidden: true });
  const all = h("button", { type: "button", class: "button primary", "data-testid": "download-all", disabled: true, onclick: () => receiver.downloadAll() }, "Download all as .zip");
  const empty = h("p", { class: "muted" }, "No files yet.");
  const memoryBox = h("div", { "data-testid": "memory-mode" });
  let shownMemory = "";
  const root = h(
    "section",
    { class: "card receive" },
    h("h1", {}, "Files shared with you"),
    status,
    alerts,
    memoryBox,
    h("div", { class: "actions" }, all, allBar, allState),
    empty,
    list,
    notesHead,
    notes,
  );

  let shownAlerts = 0;
  let lastAlert = "";
  let shownImpostor = false;
  function render() {
    if (receiver.impostor && !shownImpostor) {
      // A warning, not a failure: the real sharer (signed with the key the link names) is still waited for or used.
      shownImpostor = true;
      const b = banner("warn", IMPOSTOR_SENTENCE);
      b.dataset.testid = "impostor";
      alerts.append(b);
    }
    const memory = path.mode === "memory";
    if (memory && shownMemory !== `${path.why}:${path.budget}`) {
      shownMemory = `${path.why}:${path.budget}`;
      memoryBox.replaceChildren(banner("warn", ...memoryNotice(path.why, path.budget)));
    }
    setText(status, statusText(receiver));
    status.dataset.state = receiver.state;
    status.classList.toggle("bad", ["sharer-left", "lost", "no-route", "tampered", "failed", "reconnecting"].includes(receiver.state));
    for (; shownAlerts < receiver.alerts.length; shownAlerts++) {
      const a = receiver.alerts[shownAlerts];
      const text = ALERT_WORDS[a.code]?.(a) ?? a.code;
      if (text === lastAlert) continue; // the same news twice in a row is said once
      lastAlert = text;
      alerts.append(banner("error", text));
    }
    const files = [...receiver.files.values()];
    empty.hidden = files.length > 0;
    all.disabled = !receiver.connected || !files.length;
    const a = receiver.downloads.get("*");
    allBar.hidden = !a || a.done || !!a.error;
    if (a) allBar.value = a.meter.fraction;
    setText(allState, !a ? "" : a.error ? `Zip failed: ${receiveErrorText(a.error)}` : a.done ? "Zip saved." : runningText(a));
    syncList(
      list,
      files,
      (f) => f.id,
      (f) =>
        h(
          "li",
          { class: "file", "data-testid": "file" },
          // dir="auto" isolates each name: right-to-left text in one cannot reorder the row around it.
          h("span", { class: "name", dir: "auto" }),
          h("span", { class: "path", dir: "auto" }),
          h("span", { class: "meta" }),
          h("button", { type: "button", class: "button", "data-testid": "download", onclick: () => receiver.download(f.id) }, "Download"),
          h(
            "span",
            { class: "hidden-chars", "data-testid": "hidden-chars", role: "note", hidden: true },
            "⚠ This name contains invisible or direction-changing characters, shown as ⟨U+…⟩: the file may not be what its name seems.",
          ),
          h("progress", { max: 1, value: 0, hidden: true }),
          h("span", { class: "detail" }),
        ),
      (row, f) => {
        row.dataset.name = f.name;
        row.dataset.size = String(f.size);
        // The sharer's names are shown with every hidden character spelled out, never obeyed.
        const name = visible(f.name);
        const where = visible(f.path);
        setText(row.querySelector(".name"), name.text);
        setText(row.querySelector(".path"), f.path !== f.name ? where.text : "");
        row.querySelector(".hidden-chars").hidden = !(name.hidden || where.hidden);
        row.classList.toggle("suspicious", name.hidden || where.hidden);
        setText(row.querySelector(".meta"), formatBytes(f.size));
        const btn = row.querySelector("button");
        btn.setAttribute("aria-label", `Download ${name.text}`);
        const d = receiver.downloads.get(f.id);
        const busy = d && !d.done && !d.error;
        // Busy is aria-disabled, not disabled: disabling the focused button would drop keyboard focus.
        btn.disabled = !receiver.connected;
        btn.setAttribute("aria-disabled", busy ? "true" : "false");
        const bar = row.querySelector("progress");
        bar.hidden = !busy;
        if (d) bar.value = d.meter.fraction;
        let detail = "";
        if (d?.error) detail = `Failed: ${receiveErrorText(d.error)}`;
        else if (d?.done) detail = "Saved and verified (SHA-256).";
        else if (d) detail = runningText(d);
        else if (memory && f.size > path.budget)
          detail = `Too large for this browser to keep in memory (about ${formatBytes(path.budget)}): it will probably fail here. See above for a way to stream it instead.`;
        setText(row.querySelector(".detail"), detail);
        row.classList.toggle("failed", !!d?.error);
      },
    );
    notesHead.hidden = receiver.notes.length === 0;
    syncList(
      notes,
      receiver.notes,
      (n) => n.id,
      // A note stays exactly as written, isolated so its direction cannot spill into the page.
      () => h("li", { class: "note" }, h("pre", { class: "note-text", dir: "auto" })),
      (row, n) => setText(row.querySelector(".note-text"), n.text),
    );
  }
  receiver.addEventListener("update", render);
  render();
  return root;
}
