// @ts-check
// The worker's half of the share target: the browser POSTs what another app shared to
// /share-target; the worker answers it here, in the browser, so the files never reach
// the server. It keeps them under a random id for a few minutes and sends the page to
// "/?share-target=<id>", which asks for them (share-target.js) and shares them at once.

const sw = /** @type {any} */ (self);
const ACTION = "/share-target";
const KEEP_MS = 5 * 60 * 1000;
/** @type {Map<string, {files: File[], text: string}>} */
const inbox = new Map();

sw.addEventListener("fetch", (/** @type {any} */ e) => {
  const url = new URL(e.request.url);
  if (url.origin !== sw.location.origin || url.pathname !== ACTION || e.request.method !== "POST") return;
  e.respondWith(receive(e.request));
});

/** @param {Request} request */
async function receive(request) {
  let form;
  try {
    form = await request.formData();
  } catch {
    return Response.redirect("/?share-target=lost", 303);
  }
  const files = form.getAll("files").filter((f) => f instanceof File && f.name !== "");
  // Apps put the words in title, text or url, in no fixed way: all of them become the note.
  const text = ["title", "text", "url"]
    .map((k) => form.get(k))
    .filter((v) => typeof v === "string" && v.trim())
    .join("\n");
  const id = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  inbox.set(id, { files, text });
  setTimeout(() => inbox.delete(id), KEEP_MS);
  return Response.redirect(`/?share-target=${id}`, 303);
}

sw.addEventListener("message", (/** @type {MessageEvent} */ e) => {
  const d = e.data;
  if (d?.type !== "pea-share-target" || typeof d.id !== "string") return;
  const got = inbox.get(d.id);
  inbox.delete(d.id); // handed over once
  e.ports[0]?.postMessage(got ?? { missing: true });
});

export {}; // a module: its names stay its own
