// @ts-check
// Hashes shared files off the main thread as soon as they are added, once per
// file: every later transfer of that file, to any number of receivers, then
// sends the known SHA-256 instead of hashing again while it sends. The page
// pauses it while a connection is being set up, so the two never compete.
import { createSHA256 } from "hash-wasm";

const BLOCK = 4 << 20;
const queue = [];
let paused = false;
/** @type {((v?: unknown) => void) | null} */
let resume = null;
let running = false;

self.onmessage = (e) => {
  const m = e.data || {};
  if (m.pause === true) paused = true;
  else if (m.pause === false) {
    paused = false;
    resume?.();
    resume = null;
  } else if (m.file) {
    queue.push(m);
    if (!running) run();
  }
};

async function run() {
  running = true;
  while (queue.length) {
    const { id, file } = queue.shift();
    try {
      const h = await createSHA256();
      h.init();
      for (let at = 0; at < file.size; at += BLOCK) {
        while (paused) await new Promise((r) => (resume = r));
        h.update(new Uint8Array(await file.slice(at, at + BLOCK).arrayBuffer()));
      }
      self.postMessage({ id, sha256: h.digest("hex") });
    } catch (err) {
      self.postMessage({ id, error: String(err?.message || err) });
    }
  }
  running = false;
}
