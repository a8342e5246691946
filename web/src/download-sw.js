// @ts-check
// Service worker whose only job is to turn a stream handed over by the page
// into a normal browser download, so a file of any size goes to disk instead
// of memory. It answers only URLs under /_pea/download/; everything else
// goes to the network untouched.
import { downloadHeaders } from "./names.js";

/** @typedef {Event & {waitUntil(p: Promise<unknown>): void}} ExtendableEvent */
/** @typedef {ExtendableEvent & {request: Request, respondWith(r: Response | Promise<Response>): void}} FetchEvent */
// The worker's global scope: its types (lib "webworker") cannot be loaded next to the page's ("dom").
const sw = /** @type {any} */ (self);

const PREFIX = "/_pea/download/";
const pending = new Map();

sw.addEventListener("install", () => sw.skipWaiting());
sw.addEventListener("activate", (/** @type {ExtendableEvent} */ e) => e.waitUntil(sw.clients.claim()));

self.addEventListener("message", (e) => {
  const d = e.data;
  if (!d || typeof d !== "object") return;
  if (d.type === "pea-download" && typeof d.id === "string" && (d.stream || d.port)) {
    pending.set(d.id, { ...d, stream: d.stream || portStream(d.port) });
    setTimeout(() => forget(d.id, "the download was never requested"), 60000);
    e.ports[0]?.postMessage({ ok: true });
  } else if (d.type === "pea-cancel" && typeof d.id === "string") {
    forget(d.id, "the page gave up on this download");
  } else if (d.type === "pea-ping") {
    // Each message keeps this worker alive while a long download runs.
    e.ports[0]?.postMessage({ ok: true });
  }
});

/** Where streams cannot be transferred, the page answers each "pull" with one chunk. */
function portStream(port) {
  /** @type {((m: any) => void) | null} */
  let waiting = null;
  port.onmessage = (e) => {
    const w = waiting;
    waiting = null;
    w?.(e.data || {});
  };
  return new ReadableStream({
    pull(c) {
      return new Promise((resolve) => {
        waiting = (m) => {
          if (m.error) c.error(new Error(m.error));
          else if (m.done) c.close();
          else c.enqueue(new Uint8Array(m.chunk));
          resolve();
        };
        port.postMessage({ pull: true });
      });
    },
    cancel() {
      port.postMessage({ cancel: true });
    },
  });
}

/** Drop a download nobody will fetch, cancelling its stream so the transfer behind it stops. */
function forget(id, why) {
  const d = pending.get(id);
  if (!d) return;
  pending.delete(id);
  d.stream.cancel(why).catch(() => {});
}

sw.addEventListener("fetch", (/** @type {FetchEvent} */ e) => {
  const url = new URL(e.request.url);
  if (url.origin !== sw.location.origin || !url.pathname.startsWith(PREFIX)) return;
  const id = url.pathname.slice(PREFIX.length).split("/")[0];
  const d = pending.get(id);
  if (!d) {
    e.respondWith(new Response("This download link has expired. Start the download again from the pea page.", { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" } }));
    return;
  }
  pending.delete(id);
  let response;
  try {
    // Made safe again here: this worker trusts no page message about what goes into a header.
    response = new Response(d.stream, { headers: downloadHeaders(d) });
  } catch (err) {
    // Say so to the page, which would otherwise believe the download had started.
    d.status?.postMessage({ error: String(err?.message || err) });
    d.stream.cancel("the download could not start").catch(() => {});
    e.respondWith(new Response("This download could not start. The pea page says why.", { status: 500, headers: { "Content-Type": "text/plain; charset=utf-8" } }));
    return;
  }
  d.status?.postMessage({ started: true });
  e.respondWith(response);
});
