// @ts-check
// The page's half of the share target (manifest.webmanifest `share_target`): another app
// shares files or text to pea, the browser POSTs them to /share-target, and the service
// worker (sw/share-target.js) keeps them and sends this page to "/?share-target=<id>".
// The page asks the worker for them by id. The bytes go from the worker to this page and
// never to the server.

const ASK_TIMEOUT_MS = 5000;
const MAX_TEXT = 20000; // as the note fields

/** @typedef {{files: File[], text: string, problem?: "lost" | "refused"}} Shared */

/**
 * What another app shared with this page, or null when this page was not opened by a share.
 * @returns {Promise<Shared> | null}
 */
export function sharedWithUs(loc = location) {
  const id = new URLSearchParams(loc.search).get("share-target");
  if (id === null) return null;
  history.replaceState(null, "", "/"); // a reload must not ask again
  // The server's answer to a share that reached it instead of the worker (see http.py).
  if (id === "refused") return Promise.resolve({ files: [], text: "", problem: "refused" });
  return fetchShared(id).catch((err) => {
    console.warn("pea: what was shared did not reach the page", err);
    return { files: [], text: "", problem: "lost" };
  });
}

/** @param {string} id @returns {Promise<Shared>} */
async function fetchShared(id) {
  const sw = navigator.serviceWorker;
  if (!sw) throw new Error("no service workers here");
  const worker = sw.controller ?? (await within(sw.ready, "the worker did not start")).active;
  if (!worker) throw new Error("no active worker");
  const { port1, port2 } = new MessageChannel();
  const answer = new Promise((resolve) => {
    port1.onmessage = (e) => resolve(e.data);
  });
  worker.postMessage({ type: "pea-share-target", id }, [port2]);
  const got = /** @type {any} */ (await within(answer, "the worker did not answer"));
  port1.close();
  if (!got || got.missing) throw new Error("the worker no longer holds it");
  const files = Array.isArray(got.files) ? got.files.filter((f) => f instanceof File) : [];
  const text = typeof got.text === "string" ? got.text.trim().slice(0, MAX_TEXT) : "";
  if (!files.length && !text) throw new Error("nothing was shared");
  return { files, text };
}

/** @template T @param {Promise<T>} p @param {string} why @returns {Promise<T>} */
function within(p, why) {
  return Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(why)), ASK_TIMEOUT_MS))]);
}
