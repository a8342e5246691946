// @ts-check
// The app shell: the files that make the page (html, script, style, icons, catalogues)
// are cached when the worker installs, so pea opens with no network and says that
// sharing needs it (ui/page.js). Network first: online, a person always gets the pea
// the server has now (and the cache is refreshed); the cache answers only when the
// network does not, within a few seconds.

const sw = /** @type {any} */ (self);
const FILES = __SHELL_FILES__; // both defined by build.mjs (build-constants.d.ts)
const CACHE = `pea-shell-${__SHELL_VERSION__}`;
const NETWORK_WAIT_MS = 4000;
const SHELL = new Set(FILES);

// Best effort, and never in the way of the downloads this worker also carries: installing
// does not fail when a file cannot be fetched (the server went away; the network answers
// each file again later anyway), nor waits more than a few seconds for them.
const PRECACHE_WAIT_MS = 3000;
sw.addEventListener("install", (/** @type {any} */ e) => {
  const precache = caches.open(CACHE).then((c) => Promise.allSettled(FILES.map((f) => c.add(f))));
  e.waitUntil(Promise.race([precache, new Promise((resolve) => setTimeout(resolve, PRECACHE_WAIT_MS))]).catch(() => {}));
});

sw.addEventListener("activate", (/** @type {any} */ e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith("pea-shell-") && k !== CACHE).map((k) => caches.delete(k)))));
});

sw.addEventListener("fetch", (/** @type {any} */ e) => {
  const req = /** @type {Request} */ (e.request);
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin) return;
  // Any navigation to the page (a share link's fragment never reaches here; a query may).
  const key = req.mode === "navigate" && (url.pathname === "/" || url.pathname === "/index.html") ? "/" : url.pathname;
  if (!SHELL.has(key)) return;
  e.respondWith(networkFirst(req, key));
});

/** @param {Request} req @param {string} key */
async function networkFirst(req, key) {
  const cache = await caches.open(CACHE);
  const fromNet = fetch(req).then((r) => {
    if (r.ok && r.type === "basic") cache.put(key, r.clone()).catch(() => {});
    return r;
  });
  fromNet.catch(() => {}); // a late failure after the cache answered is nobody's error
  try {
    return await Promise.race([fromNet, new Promise((_, reject) => setTimeout(() => reject(new Error("slow")), NETWORK_WAIT_MS))]);
  } catch {
    const hit = await cache.match(key);
    if (hit) return hit;
    return fromNet; // nothing cached: the network's answer (or its failure), however long it takes
  }
}

export {}; // a module: its names stay its own
