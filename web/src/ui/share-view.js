// @ts-check
// The start page (pick files, folders or a note) and the sharing page (link,
// copy, QR, what is shared, who is receiving what).
import qrcode from "qrcode-generator";
import { msg, onLocaleChange, t } from "../i18n/i18n.js";
import { CONNECT_TIMEOUT_MS } from "../peer.js";
import { StayAwake } from "../wake.js";
import { banner, h, setText, syncList, wakeWarning } from "./dom.js";
import { formatBytes, progressText } from "./format.js";
import { pickFolder } from "./pickers.js";
import { serverErrorText, serverWhy } from "./server-words.js";
import { sendErrorText } from "./transfer-words.js";
import { connectionDetails, relayAdvice, relayedBadge, tryWords } from "./connection-view.js";

export function startView({ input, onFiles, onNote }) {
  const note = h("textarea", { id: "note", rows: 3, maxlength: 20000, placeholder: msg("start.note-placeholder") });
  const pickLabel = h("label", { class: "button primary", for: input.id }, msg("start.choose-files"));
  return h(
    "section",
    { class: "card start" },
    h("h1", {}, msg("start.title")),
    h("p", { class: "lead" }, msg("start.lead")),
    h(
      "div",
      { class: "drop", id: "drop" },
      h("p", { class: "drop-hint" }, msg("start.drop")),
      h("div", { class: "actions" }, input, pickLabel, h("button", { type: "button", class: "button", onclick: () => pickFolder(onFiles) }, msg("start.choose-folder"))),
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
      h("label", { for: "note" }, msg("start.note-label")),
      note,
      h("button", { type: "submit", class: "button" }, msg("start.share-note")),
    ),
  );
}

const SERVER_STATES = new Set(["connecting", "reconnecting", "stopped"]);

function sharerStatus(sharer, server) {
  const rs = [...sharer.receivers.values()];
  const live = rs.filter((r) => r.state === "connected").length;
  if (server.state === "offline") return t("share.server.offline", { reason: serverWhy(server), seconds: Math.ceil(server.retryInMs / 1000) });
  if (server.state === "refused") return t("share.server.refused", { why: serverErrorText(server) });
  if (server.state !== "joined") return t(`share.server.${SERVER_STATES.has(server.state) ? server.state : "connecting"}`);
  if (live) return t("share.status.sharing", { count: live });
  return t("share.status.ready");
}

const RECEIVER_STATES = new Set(["connecting", "connected", "left", "failed", "tampered"]);

const receiverLabel = (n) => t("share.receiver.label", { number: n });

// Why a receiver could not be reached, true in every engine: Firefox fails ICE within
// seconds where no path exists ("ice-failed"), Chromium may wait out our bound ("timeout").
const PROBLEMS = new Set(["lost", "ice-failed", "timeout", "refused-offer", "altered", "setup", "start", "left-mid-transfer"]);
/** @param {{code: string, info?: {message?: string}}} p @param {string} [relay] the server's relay policy, for the advice */
const problemText = (p, relay) =>
  PROBLEMS.has(p.code) ? t(`share.problem.${p.code}`, { seconds: CONNECT_TIMEOUT_MS / 1000, message: p.info?.message ?? "", advice: relayAdvice(relay), try: tryWords() }) : p.code;

const ALERTS = new Set(["remote-tamper-ignored", "refused-offer", "tamper-ignored", "tamper-refused"]);
/** @param {{code: string, kind?: string, number?: number, name?: string, error?: any}} a */
function alertText(a) {
  if (a.code === "mismatch") return t("share.alert.mismatch", { receiver: receiverLabel(a.number), name: a.name, why: sendErrorText(a.error) });
  return ALERTS.has(a.code) ? t(`share.alert.${a.code}`, { kind: a.kind, receiver: receiverLabel(a.number) }) : a.code;
}

export function shareView({ sharer, link, input, onFiles, onNote, awake = new StayAwake(), restored = false }) {
  const sleepy = wakeWarning();
  const status = h("p", { class: "status", "data-testid": "status", role: "status", "aria-live": "polite" });
  const alert = h("div", { class: "alerts", "aria-live": "assertive" });
  const linkA = h("a", { "data-testid": "share-link", href: link, class: "share-link", rel: "noreferrer", dir: "ltr" }, link);
  const copied = h("span", { class: "copied", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "button primary", onclick: () => copyText(link, copied) }, msg("share.copy"));
  const qr = h("img", { "data-testid": "qr", class: "qr", alt: msg("share.qr-alt"), width: 220, height: 220 });
  showQr(link, qr);
  const impostor = h("div", { class: "alerts", "aria-live": "polite" });
  const fileList = h("ul", { class: "list files" });
  const receiverList = h("ul", { class: "list receivers" });
  const noReceivers = h("p", { class: "muted" }, msg("share.nobody"));
  const note = h("textarea", { id: "more-note", rows: 2, maxlength: 20000 });
  const root = h(
    "section",
    { class: "card share" },
    h("h1", {}, msg("share.title")),
    status,
    alert,
    impostor,
    restored ? h("p", { class: "status", "data-testid": "restored" }, msg("share.restored")) : "",
    sleepy.box,
    h("div", { class: "link-box" }, h("div", { class: "link-text" }, h("p", { class: "label" }, msg("share.send-link")), linkA, h("div", { class: "actions" }, copy, copied)), qr),
    h("h2", {}, msg("share.shared")),
    fileList,
    h(
      "div",
      { class: "actions add-more" },
      input,
      h("label", { class: "button", for: input.id }, msg("share.add-files")),
      h("button", { type: "button", class: "button", onclick: () => pickFolder(onFiles) }, msg("share.add-folder")),
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
      h("label", { for: "more-note" }, msg("share.add-note-label")),
      note,
      h("button", { type: "submit", class: "button" }, msg("share.add-note")),
    ),
    h("h2", {}, msg("share.receivers")),
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
    if (first && !alert.firstChild) alert.append(banner("error", alertText(first)));
    if (sharer.impostor && !impostor.firstChild) {
      const b = banner("warn", msg("share.impostor"));
      b.dataset.testid = "impostor";
      impostor.append(b);
    }
    /** @type {{key: string, label: string, meta: string, note?: boolean}[]} */
    const items = [...sharer.files.values()].map((f) => ({ key: `f${f.id}`, label: f.path, meta: formatBytes(f.size) }));
    for (const n of sharer.notes) items.push({ key: `n${n.id}`, label: n.text, meta: t("share.note-meta"), note: true });
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
    const sending = rs.some((r) => r.uploads?.size > 0);
    awake.want(sending);
    sleepy.show(sending && !awake.supported);
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
        const words = RECEIVER_STATES.has(r.state) ? t(`share.receiver.${r.state}`) : r.state;
        setText(row.querySelector(".meta"), up ? t("share.receiver.sending", { name: up.name }) : r.done ? t("share.receiver.sent", { state: words, count: r.done }) : words);
        const bar = row.querySelector("progress");
        bar.setAttribute("aria-label", t("share.progress", { receiver: receiverLabel(r.number) }));
        bar.hidden = !up?.meter;
        if (up?.meter) bar.value = up.meter.fraction;
        const problem = r.problem ? problemText(r.problem, r.link?.relay) : "";
        const views = linkViews.get(row);
        views?.badge.update(r.link);
        views?.details.update(r.link);
        const last = r.lastError ? t("share.receiver.last-error", { name: r.lastError.name, why: sendErrorText(r.lastError.error) }) : "";
        const detail = up?.meter ? progressText(up.meter) : [problem, last].filter(Boolean).join(" ");
        setText(row.querySelector(".detail"), detail);
      },
    );
  }
  sharer.addEventListener("update", render);
  onLocaleChange(render);
  render();
  return root;
}

async function copyText(text, out) {
  try {
    await navigator.clipboard.writeText(text); // secure contexts only
    setText(out, t("share.copied"));
  } catch {
    const t = h("textarea", { class: "offscreen", readonly: true });
    t.value = text;
    document.body.append(t);
    t.select();
    const ok = document.execCommand("copy");
    t.remove();
    setText(out, t(ok ? "share.copied" : "share.copy-by-hand"));
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
    img.alt = t("share.qr-broken", { message: err.message });
    img.classList.add("broken");
  }
}
