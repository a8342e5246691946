// @ts-check
// Entry point: a URL with a secret in its fragment receives; anything else
// is the start page, which becomes a share as soon as something is picked.
import { fragmentOf, fromB64url, newShare, parseFragment, warmUp } from "./auth.js";
import { downloadPath, memoryBudget, MEMORY_LIMIT_BYTES, missingForTransfer } from "./capabilities.js";
import { setupDownloads } from "./download.js";
import { msg, pickLocale, setLocale } from "./i18n/i18n.js";
import { Receiver } from "./receiver.js";
import { Room } from "./room.js";
import { Sharer } from "./sharer.js";
import { sharedWithUs } from "./share-target.js";
import { banner, h } from "./ui/dom.js";
import { acceptDrops, filesFromInput } from "./ui/pickers.js";
import { receiveView, refusedLinkView } from "./ui/receive-view.js";
import { shareView, startView } from "./ui/share-view.js";
import { installButton, labelPage, languageSwitcher, offlineNotice } from "./ui/page.js";
import { unsupportedView } from "./ui/unsupported.js";
import { b64url } from "./util.js";

const app = /** @type {HTMLElement} */ (document.getElementById("app"));

function show(view) {
  const focused = app.contains(document.activeElement);
  app.replaceChildren(view);
  // Keyboard and screen reader users land on the new page's heading, not on <body>.
  if (focused && !app.contains(document.activeElement)) {
    const heading = view.querySelector("h1");
    heading?.setAttribute("tabindex", "-1");
    (heading ?? app).focus({ preventScroll: true });
  }
}

// The share's secret and private key, kept for this tab only, so a reload (or a tab the
// browser discarded) keeps the link working: receivers continue once the files are back.
const KEPT = "pea-share";

function keptShare() {
  try {
    const k = JSON.parse(sessionStorage.getItem(KEPT) ?? "null");
    const seed = fromB64url(k?.seed);
    if (seed?.length === 32 && fromB64url(k.secret)?.length === 16) return newShare(seed, k.secret);
  } catch {}
  return null;
}

function keep(share) {
  try {
    sessionStorage.setItem(KEPT, JSON.stringify({ secret: share.secret, seed: b64url(share.secretKey) }));
  } catch {} // storage off: the share works, it just does not outlive a reload
}

function startPage(incoming = sharedWithUs()) {
  const input = h("input", { type: "file", multiple: true, id: "pick-files", class: "visually-hidden" });
  /** @type {Promise<Sharer> | null} */
  let sharing = null;
  const kept = keptShare();
  const begin = () => {
    sharing ??= (async () => {
      const share = kept ?? newShare();
      keep(share);
      const room = new Room(share);
      const sharer = new Sharer(room);
      const link = `${location.origin}/#${fragmentOf(share.secret, share.commit)}`;
      show(shareView({ sharer, link, input, onFiles, onNote, restored: kept !== null }));
      room.start();
      addEventListener("beforeunload", (e) => {
        if ([...sharer.receivers.values()].some((r) => r.state === "connected")) e.preventDefault();
      });
      return sharer;
    })();
    return sharing;
  };
  const onFiles = async (entries) => (await begin()).addFiles(entries);
  const onNote = async (text) => (await begin()).addNote(text);
  input.addEventListener("change", () => {
    const entries = filesFromInput(input);
    input.value = ""; // picking the same file again still fires "change"
    if (entries.length) onFiles(entries);
  });
  acceptDrops(document.body, onFiles);
  if (kept) begin();
  else show(startView({ input, onFiles, onNote }));
  // Shared to pea from another app (the manifest's share target): share it at once.
  incoming?.then((got) => {
    if (got.files.length) onFiles(got.files.map((file) => ({ file, path: file.name })));
    if (got.text) onNote(got.text);
    if (got.problem) {
      const b = banner("warn", msg(`share-target.${got.problem}`));
      b.dataset.testid = "share-target-problem";
      notices.append(b);
    }
  });
  // The app shell (offline start page, share target) needs the worker; it starts once this
  // page has drawn, so it never delays the first paint.
  setTimeout(() => setupDownloads(), 1000);
}

function receivePage({ secret, commit }) {
  performance.mark("pea:start");
  const path = { ...downloadPath(), budget: MEMORY_LIMIT_BYTES };
  const room = new Room({ secret, commit });
  performance.mark("pea:keys");
  const receiver = new Receiver(room);
  const inMemory = () =>
    memoryBudget().then((b) => {
      path.budget = b;
      receiver.changed();
    });
  if (path.mode === "memory") inMemory();
  // The service worker starts once the sharer is reached: starting it earlier competes
  // with connecting, and the file list is what a person waits for.
  // download.js has the last word: registration can fail where the API exists (some
  // private windows), and then the page says so, with the limit.
  const later = () =>
    setupDownloads().then((found) => {
      if (found.mode === "memory" && path.mode === "stream") {
        Object.assign(path, found);
        inMemory();
      }
    });
  receiver.addEventListener("update", () => receiver.files.size && later(), { once: false });
  setTimeout(later, 3000);
  show(receiveView({ receiver, path }));
  room.start();
  setTimeout(warmUp, 0);
}

addEventListener("hashchange", () => location.reload());

await setLocale(pickLocale());
labelPage();
// After the page's own content in the focus order: the first Tab stops stay brand, then files.
document.querySelector(".foot-tools")?.append(installButton(), languageSwitcher());
const notices = /** @type {HTMLElement} */ (document.getElementById("notices"));
const offline = h("div");
notices.append(offline); // its own box: other notices stay
offlineNotice(offline);

const fragment = location.hash.slice(1);
const parsed = fragment ? parseFragment(fragment) : null;
// A browser that cannot take part is told so at once, before anything reaches the server.
const missing = missingForTransfer();
if (missing.length && (parsed?.version === 3 || !fragment)) show(unsupportedView(missing, fragment ? "receiver" : "sharer"));
else if (parsed?.version === 3) receivePage(parsed);
else if (parsed?.version === 2) show(refusedLinkView("v2"));
else if (parsed?.version === 1) show(refusedLinkView("v1"));
else if (fragment) show(refusedLinkView("incomplete"));
else startPage();
