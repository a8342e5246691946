// @ts-check
// The receiving page: connection state in words, the shared files and notes,
// download buttons with progress, and every failure explained.
import { locale, msg, onLocaleChange, t } from "../i18n/i18n.js";
import { shareableCopy } from "../download.js";
import { CONNECT_TIMEOUT_MS } from "../peer.js";
import { RESUME_MS } from "../receiver.js";
import { visible } from "../names.js";
import { chooseFrom } from "../save-file.js";
import { StayAwake } from "../wake.js";
import { banner, h, setText, syncList, wakeWarning } from "./dom.js";
import { formatBytes, progressText } from "./format.js";
import { serverErrorText, serverWhy } from "./server-words.js";
import { receiveErrorText } from "./transfer-words.js";
import { memoryNotice } from "./unsupported.js";
import { connectionDetails, relayAdvice, relayedBadge, tryWords } from "./connection-view.js";

/** @type {Record<string, (d: {kind?: string, message?: string}) => string>} */
const TAMPERED_WORDS = {
  altered: ({ kind }) => t("receive.tampered.altered", { kind }),
  "refused-answer": () => t("receive.tampered.refused-answer"),
};

/** @type {Record<string, (d: {code?: string, message?: string}) => string>} */
const FAILED_WORDS = {
  refused: (d) => serverErrorText(d) || t("receive.failed.refused"),
  "no-peer": ({ message }) => t("receive.failed.no-peer", { message }),
  setup: ({ message }) => t("receive.failed.setup", { message }),
  version: () => t("receive.failed.version"),
};

/** @type {Record<string, (a: {kind?: string, error?: any}) => string>} */
const ALERT_WORDS = {
  "tamper-ignored": ({ kind }) => t("receive.alert.tamper-ignored", { kind }),
  "remote-tamper-ignored": () => t("receive.alert.remote-tamper-ignored"),
  mismatch: ({ error }) => receiveErrorText(error),
};

/** @param {"v1" | "v2" | "incomplete"} code Links this page will not open (main.js decides which). */
export function refusedLinkView(code) {
  return h(
    "section",
    { class: "card" },
    h("h1", {}, msg(`link.${code}.title`)),
    h("p", { "data-testid": "status", class: "status bad" }, msg(`link.${code}.sentence`)),
    h("p", {}, h("a", { href: "/" }, msg("link.share-own"))),
  );
}

/** A running download's line: paused while reconnecting, and where it resumed once it has. */
function runningText(d, connected) {
  if (d.paused && connected) return t("receive.paused.sharer", { size: formatBytes(d.meter.done) });
  if (d.paused) return t("receive.paused", { size: formatBytes(d.meter.done) });
  const text = progressText(d.meter);
  return d.resumedAt >= 0 ? t("receive.resumed", { progress: text, size: formatBytes(d.resumedAt) }) : text;
}

function statusText(rx) {
  const trouble = rx.serverTrouble;
  const retry = trouble?.retryInMs ? ` ${t("receive.status.retry", { seconds: Math.ceil(trouble.retryInMs / 1000) })}` : "";
  switch (rx.state) {
    case "server-offline":
      return t("receive.status.server-offline", { reason: serverWhy(trouble) }) + retry;
    case "connected":
      return t(trouble ? "receive.status.connected-no-server" : "receive.status.connected");
    case "reconnecting":
      if (rx.detail?.why === "left") return t("receive.status.reconnecting.left", { minutes: RESUME_MS / 60000 });
      return t("receive.status.reconnecting", { minutes: RESUME_MS / 60000 });
    case "lost":
      return t(rx.detail === "gave-up" ? "receive.status.lost.gave-up" : "receive.status.lost", { seconds: RESUME_MS / 1000 });
    case "no-route": {
      // Some browsers (Firefox) give up at once where no network path exists; others wait for our bound.
      const why = rx.detail === "ice-failed" ? t("receive.status.no-route.ice-failed") : t("receive.status.no-route.timeout", { seconds: CONNECT_TIMEOUT_MS / 1000 });
      return t("receive.status.no-route", { why, advice: relayAdvice(rx.link?.relay), try: tryWords() });
    }
    case "tampered":
      return t("receive.status.tampered", { why: TAMPERED_WORDS[rx.detail?.code]?.(rx.detail) ?? "" }).trim();
    case "failed":
      return FAILED_WORDS[rx.detail?.code]?.(rx.detail) ?? t("receive.status.failed");
    case "connecting-server":
    case "waiting":
    case "no-sharer":
    case "connecting-peer":
    case "sharer-left":
      return t(`receive.status.${rx.state}`);
    default:
      return rx.state;
  }
}

/**
 * `path` says how downloads reach the disk ({mode: "stream" | "memory", why, budget}, see
 * capabilities.js); main.js fills in `budget` and a late fallback, then asks for a render.
 */
export function receiveView({ receiver, path, awake = new StayAwake() }) {
  const sleepy = wakeWarning();
  const status = h("p", { class: "status", "data-testid": "status", role: "status", "aria-live": "polite" });
  const alerts = h("div", { class: "alerts", "aria-live": "assertive" });
  const list = h("ul", { class: "list files" });
  const notes = h("ul", { class: "list notes" });
  const notesHead = h("h2", { hidden: true }, msg("receive.notes"));
  const allState = h("span", { class: "detail" });
  const allBar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": msg("receive.zip-progress") });
  const all = h("button", { type: "button", class: "button primary", "data-testid": "download-all", disabled: true, onclick: () => receiver.downloadAll() }, msg("receive.download-all"));
  const empty = h("p", { class: "muted" }, msg("receive.no-files"));
  const memoryBox = h("div", { "data-testid": "memory-mode" });
  const badge = relayedBadge();
  const details = connectionDetails();
  let shownMemory = "";
  const root = h(
    "section",
    { class: "card receive" },
    h("h1", {}, msg("receive.title")),
    status,
    badge.el,
    alerts,
    sleepy.box,
    memoryBox,
    h("div", { class: "actions" }, all, allBar, allState),
    // Said before any download: whether a reload of this page loses them (browsers that cannot write to a chosen file).
    h("p", { class: "muted", "data-testid": "reload-note" }, receiver.toFile ? msg("receive.reload-note.file", { size: formatBytes(chooseFrom()) }) : msg("receive.reload-note")),
    empty,
    list,
    notesHead,
    notes,
    details.el,
  );

  let shownAlerts = 0;
  let lastAlert = "";
  let shownImpostor = false;
  function render() {
    if (receiver.impostor && !shownImpostor) {
      // A warning, not a failure: the real sharer (signed with the key the link names) is still waited for or used.
      shownImpostor = true;
      const b = banner("warn", msg("receive.impostor"));
      b.dataset.testid = "impostor";
      alerts.append(b);
    }
    const memory = path.mode === "memory";
    if (memory && shownMemory !== `${path.why}:${path.budget}:${locale()}`) {
      shownMemory = `${path.why}:${path.budget}:${locale()}`;
      memoryBox.replaceChildren(banner("warn", ...memoryNotice(path.why, path.budget)));
    }
    setText(status, statusText(receiver));
    status.dataset.state = receiver.state;
    status.classList.toggle("bad", ["sharer-left", "lost", "no-route", "tampered", "failed", "reconnecting"].includes(receiver.state));
    badge.update(receiver.link);
    details.update(receiver.link);
    for (; shownAlerts < receiver.alerts.length; shownAlerts++) {
      const a = receiver.alerts[shownAlerts];
      const text = ALERT_WORDS[a.code]?.(a) ?? a.code;
      if (text === lastAlert) continue; // the same news twice in a row is said once
      lastAlert = text;
      alerts.append(banner("error", text));
    }
    const receiving = [...receiver.downloads.values()].some((d) => !d.done && !d.error);
    awake.want(receiving);
    sleepy.show(receiving && !awake.supported);
    const files = [...receiver.files.values()];
    empty.hidden = files.length > 0;
    all.disabled = !receiver.connected || !files.length;
    const a = receiver.downloads.get("*");
    allBar.hidden = !a || a.done || !!a.error;
    if (a) allBar.value = a.meter.fraction;
    setText(allState, !a ? "" : a.error ? t("receive.zip-failed", { why: receiveErrorText(a.error) }) : a.done ? t("receive.zip-saved") : runningText(a, receiver.connected));
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
          h("button", { type: "button", class: "button primary", "data-testid": "continue", hidden: true, onclick: () => receiver.continueDownload(f.id) }, msg("receive.continue")),
          h("button", { type: "button", class: "button", "data-testid": "download", onclick: () => receiver.download(f.id) }, msg("receive.download")),
          h("button", { type: "button", class: "button", "data-testid": "share-file", hidden: true, onclick: () => passOn(f.name) }, msg("receive.share-file")),
          h("span", { class: "hidden-chars", "data-testid": "hidden-chars", role: "note", hidden: true }, msg("receive.hidden-chars")),
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
        const btn = row.querySelector("[data-testid=download]");
        const pass = row.querySelector("[data-testid=share-file]");
        pass.hidden = !(receiver.downloads.get(f.id)?.done && shareableCopy(f.name));
        pass.setAttribute("aria-label", t("receive.share-file-name", { name: name.text }));
        btn.setAttribute("aria-label", t("receive.download-name", { name: name.text }));
        const d = receiver.downloads.get(f.id);
        const busy = d && !d.done && !d.error;
        const saved = receiver.resumable.get(f.id);
        const more = row.querySelector("[data-testid=continue]");
        more.hidden = !saved || !!busy;
        more.disabled = !receiver.connected;
        more.setAttribute("aria-label", t("receive.continue-name", { name: name.text }));
        // Busy is aria-disabled, not disabled: disabling the focused button would drop keyboard focus.
        btn.disabled = !receiver.connected;
        btn.setAttribute("aria-disabled", busy ? "true" : "false");
        const bar = row.querySelector("progress");
        bar.setAttribute("aria-label", t("receive.progress", { name: name.text }));
        bar.hidden = !busy;
        if (d) bar.value = d.meter.fraction;
        let detail = "";
        if (d?.error) detail = t("receive.failed", { why: receiveErrorText(d.error) });
        else if (d?.done) detail = t("receive.saved");
        else if (d?.checking) detail = t("receive.checking");
        else if (d) detail = runningText(d, receiver.connected);
        else if (saved) detail = t("receive.saved-before", { size: formatBytes(saved.committed) });
        else if (memory && f.size > path.budget) detail = t("receive.too-large", { size: formatBytes(path.budget) });
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
  onLocaleChange(render);
  render();
  return root;
}

/** Hands a received file to another app through the browser's share sheet (Web Share API). */
async function passOn(name) {
  const file = shareableCopy(name);
  if (!file) return;
  try {
    await navigator.share({ files: [file] });
  } catch (err) {
    if (err?.name !== "AbortError") console.warn("pea: could not share the file on", err);
  }
}
