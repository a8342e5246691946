// @ts-check
// The start page (pick files, folders or a note) and the sharing page (link,
// copy, QR, what is shared, who is receiving what).
import qrcode from "qrcode-generator";
import { CONNECT_TIMEOUT_MS } from "../peer.js";
import { formatBytes, progressText } from "./format.js";
import { banner, h, setText, syncList } from "./dom.js";
import { pickFolder } from "./pickers.js";
import { sendErrorText } from "./transfer-words.js";
import { connectionDetails, relayAdvice, relayedBadge, TRY_WORDS } from "./connection-view.js";

export function startView({ input, onFiles, onNote }) {
  const note = h("textarea", { id: "note", rows: 3, maxlength: 20000, placeholder: "A link, a password hint, a few lines…" });
  const pickLabel = h("label", { class: "button primary", for: input.id }, "Choose files");
  return h(
    "section",
    { class: "card start" },
    h("h1", {}, "Share files straight from this browser"),
    h("p", { class: "lead" }, "Pick files or a folder, then send the link or show the QR code. The other browser downloads directly from this one; nothing is uploaded to a server."),
    h(
      "div",
      { class: "drop", id: "drop" },
      h("p", { class: "drop-hint" }, "Drop files or folders here"),
      h("div", { class: "actions" }, input, pickLabel, h("button", { type: "button", class: "button", onclick: () => pickFolder(onFiles) }, "Choose a folder")),
    ),
    h(
      "form",
      {
        class: "note-form",
        onsubmit: (e) => {
          e.preventDefault();
          const text = note.value.trim();
          if (text) onNote(text);
        },
      },
      h("label", { for: "note" }, "Or share a short note"),
      note,
      h("button", { type: "submit", class: "button" }, "Share note"),
    ),
  );
}

const SERVER_WORDS = {
  connecting: "Connecting to the pea server…",
  reconnecting: "Reconnecting to the pea server…",
  stopped: "Stopped.",
};

function sharerStatus(sharer, server) {
  const rs = [...sharer.receivers.values()];
  const live = rs.filter((r) => r.state === "connected").length;
  if (server.state === "offline") return `The pea server is unreachable (${server.reason}); retrying in ${Math.ceil(server.retryInMs / 1000)} s. Receivers already connected keep downloading.`;
  if (server.state === "refused") return `The pea server refused this share: ${server.message}`;
  if (server.state !== "joined") return SERVER_WORDS[server.state] || "Connecting to the pea server…";
  if (live) return `Sharing with ${live} receiver${live > 1 ? "s" : ""}. Keep this page open.`;
  return "Ready: waiting for someone to open the link. Keep this page open.";
}

const RECEIVER_WORDS = { connecting: "connecting…", connected: "connected", left: "left", failed: "failed", tampered: "refused" };

const receiverLabel = (n) => `Receiver ${n}`;

// Why a receiver could not be reached, true in every engine: Firefox fails ICE within
// seconds where no path exists ("ice-failed"), Chromium may wait out our bound ("timeout").
/** @type {Record<string, (info: {message?: string, relay?: string}) => string>} */
const PROBLEM_WORDS = {
  lost: () => "the direct connection was lost.",
  "ice-failed": ({ relay }) =>
    `no direct connection could be made: your browsers found no network path to each other (a strict NAT or firewall is between you), and ${relayAdvice(relay)}. ${TRY_WORDS}`,
  timeout: ({ relay }) => `no direct connection could be made within ${CONNECT_TIMEOUT_MS / 1000} s (a strict NAT or firewall is between you), and ${relayAdvice(relay)}. ${TRY_WORDS}`,
  "refused-offer": () => "refused our offer: what it received from us had been altered on the way.",
  altered: () => "its connection details were altered on the way; refused.",
  setup: ({ message }) => `could not connect (${message})`,
  start: ({ message }) => `could not start a connection (${message})`,
  "left-mid-transfer": () => "left during a transfer.",
};

/** @type {Record<string, (a: {kind?: string, number?: number, name?: string, error?: any}) => string>} */
const ALERT_WORDS = {
  "remote-tamper-ignored": ({ number }) =>
    `${receiverLabel(number)} reported a signal that did not verify (the server or the network is tampering). Its direct connection, already verified, is unaffected.`,
  "refused-offer": () => "A receiver refused the connection because our signed offer was altered on the way: the server or the network is tampering with the connection. Nothing was sent to it.",
  "tamper-ignored": ({ kind, number }) =>
    `Ignored a signed ${kind} that did not verify: it was altered on the way (the server or the network is tampering). The direct connection with ${receiverLabel(number)}, already verified, continues.`,
  "tamper-refused": ({ kind }) => `Refused a connection: a signed ${kind} did not verify, so it was altered on the way (the server or the network is tampering). Nothing was sent to that peer.`,
  mismatch: ({ number, name, error }) => `${receiverLabel(number)}: “${name}”: ${sendErrorText(error)}`,
};

const IMPOSTOR_WORDS = "Another page with this link is acting as a sharer. Your receivers ignore it: they accept only offers signed by this page.";

/** Said on a share page that was reloaded: the link lives on, the files must be picked again. */
export const RESTORED_SENTENCE = "This page was reloaded: the link still works. Add the same files again (same name, size and date) and receivers continue where they stopped.";

export function shareView({ sharer, link, input, onFiles, onNote, restored = false }) {
  const status = h("p", { class: "status", "data-testid": "status", role: "status", "aria-live": "polite" });
  const alert = h("div", { class: "alerts", "aria-live": "assertive" });
  const linkA = h("a", { "data-testid": "share-link", href: link, class: "share-link", rel: "noreferrer" }, link);
  const copied = h("span", { class: "copied", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "button primary", onclick: () => copyText(link, copied) }, "Copy link");
  const qr = h("img", { "data-testid": "qr", class: "qr", alt: "QR code of the share link", width: 220, height: 220 });
  showQr(link, qr);
  const impostor = h("div", { class: "alerts", "aria-live": "polite" });
  const fileList = h("ul", { class: "list files" });
  const receiverList = h("ul", { class: "list receivers" });
  const noReceivers = h("p", { class: "muted" }, "Nobody yet.");
  const note = h("textarea", { id: "more-note", rows: 2, maxlength: 20000 });
  const root = h(
    "section",
    { class: "card share" },
    h("h1", {}, "Sharing"),
    status,
    alert,
    impostor,
    restored ? h("p", { class: "status", "data-testid": "restored" }, RESTORED_SENTENCE) : "",
    h(
      "div",
      { class: "link-box" },
      h("div", { class: "link-text" }, h("p", { class: "label" }, "Send this link (the secret after # never reaches the server):"), linkA, h("div", { class: "actions" }, copy, copied)),
      qr,
    ),
    h("h2", {}, "Shared"),
    fileList,
    h(
      "div",
      { class: "actions add-more" },
      input,
      h("label", { class: "button", for: input.id }, "Add files"),
      h("button", { type: "button", class: "button", onclick: () => pickFolder(onFiles) }, "Add a folder"),
    ),
    h(
      "form",
      {
        class: "note-form",
        onsubmit: (e) => {
          e.preventDefault();
          const text = note.value.trim();
          if (text) {
            onNote(text);
            note.value = "";
          }
        },
      },
      h("label", { for: "more-note" }, "Add a note"),
      note,
      h("button", { type: "submit", class: "button" }, "Add note"),
    ),
    h("h2", {}, "Receivers"),
    noReceivers,
    receiverList,
  );

  /** @type {WeakMap<Element, {badge: ReturnType<typeof relayedBadge>, details: ReturnType<typeof connectionDetails>}>} */
  const linkViews = new WeakMap();
  let server = { state: "connecting" };
  sharer.room.on("state", (s) => {
    server = s;
    render();
  });

  function render() {
    setText(status, sharerStatus(sharer, server));
    const first = sharer.alerts[0];
    if (first && !alert.firstChild) alert.append(banner("error", ALERT_WORDS[first.code]?.(first) ?? first.code));
    if (sharer.impostor && !impostor.firstChild) {
      const b = banner("warn", IMPOSTOR_WORDS);
      b.dataset.testid = "impostor";
      impostor.append(b);
    }
    /** @type {{key: string, label: string, meta: string, note?: boolean}[]} */
    const items = [...sharer.files.values()].map((f) => ({ key: `f${f.id}`, label: f.path, meta: formatBytes(f.size) }));
    for (const n of sharer.notes) items.push({ key: `n${n.id}`, label: n.text, meta: "note", note: true });
    syncList(
      fileList,
      items,
      (i) => i.key,
      (i) => h("li", { class: i.note ? "note" : "file" }, h("span", { class: "name" }), h("span", { class: "meta" })),
      (row, i) => {
        setText(row.querySelector(".name"), i.label);
        setText(row.querySelector(".meta"), i.meta);
      },
    );
    const rs = [...sharer.receivers.values()];
    noReceivers.hidden = rs.length > 0;
    syncList(
      receiverList,
      rs,
      (r) => r.peer,
      () => {
        const badge = relayedBadge();
        const details = connectionDetails();
        const row = h(
          "li",
          { class: "receiver" },
          h("span", { class: "name" }),
          badge.el,
          h("span", { class: "meta" }),
          h("progress", { max: 1, value: 0 }),
          h("span", { class: "detail" }),
          details.el,
        );
        linkViews.set(row, { badge, details });
        return row;
      },
      (row, r) => {
        setText(row.querySelector(".name"), receiverLabel(r.number));
        row.dataset.state = r.state;
        const up = [...r.uploads][0];
        const words = RECEIVER_WORDS[r.state] || r.state;
        setText(row.querySelector(".meta"), up ? `sending “${up.name}”` : `${words}${r.done ? ` · ${r.done} sent` : ""}`);
        const bar = row.querySelector("progress");
        bar.hidden = !up?.meter;
        if (up?.meter) bar.value = up.meter.fraction;
        const problem = r.problem ? (PROBLEM_WORDS[r.problem.code]?.({ ...r.problem.info, relay: r.link?.relay }) ?? r.problem.code) : "";
        const views = linkViews.get(row);
        views?.badge.update(r.link);
        views?.details.update(r.link);
        const last = r.lastError ? `“${r.lastError.name}”: ${sendErrorText(r.lastError.error)}` : "";
        const detail = up?.meter ? progressText(up.meter) : [problem, last].filter(Boolean).join(" ");
        setText(row.querySelector(".detail"), detail);
      },
    );
  }
  sharer.addEventListener("update", render);
  render();
  return root;
}

async function copyText(text, out) {
  try {
    await navigator.clipboard.writeText(text); // secure contexts only
    setText(out, "Copied.");
  } catch {
    const t = h("textarea", { class: "offscreen", readonly: true });
    t.value = text;
    document.body.append(t);
    t.select();
    const ok = document.execCommand("copy");
    t.remove();
    setText(out, ok ? "Copied." : "Select the link and copy it.");
  }
  setTimeout(() => setText(out, ""), 3000);
}

const SVG = "http://www.w3.org/2000/svg";

/**
 * The QR code is made here, in the page: the link (and its secret) never leaves the
 * browser. Built as SVG elements (never markup from strings), shown through a blob:
 * URL, which the CSP allows for images.
 */
function showQr(link, img) {
  try {
    const qr = qrcode(0, "M"); // smallest version that fits; M survives a scuffed phone screen
    qr.addData(link, "Byte");
    qr.make();
    const n = qr.getModuleCount();
    const quiet = 4; // the quiet zone the standard asks for
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("xmlns", SVG);
    svg.setAttribute("viewBox", `0 0 ${n + 2 * quiet} ${n + 2 * quiet}`);
    svg.setAttribute("shape-rendering", "crispEdges");
    const bg = document.createElementNS(SVG, "rect");
    for (const [k, v] of [
      ["width", "100%"],
      ["height", "100%"],
      ["fill", "#fff"],
    ])
      bg.setAttribute(k, v);
    let d = "";
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "#000");
    svg.append(bg, path);
    const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(svg)], { type: "image/svg+xml" }));
    img.src = url;
  } catch (err) {
    img.alt = `QR code unavailable (${err.message}); copy the link instead.`;
    img.classList.add("broken");
  }
}
