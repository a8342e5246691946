// @ts-check
// Hashes shared files off the main thread as soon as they are added, once per
// file: each 1 MiB block's SHA-256 and the whole file's, in one pass (protocol v3,
// transfer/blocks.js). Every later transfer of that file, to any number of
// receivers and from any offset, sends these. The page pauses it while a
// connection is being set up, so the two never compete, and moves a file to
// the front of the line when a receiver asks for it before its turn.
import { hashFile } from "./transfer/blocks.js";

/** @type {{id: string, file: Blob}[]} */
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
  } else if (typeof m.first === "string") {
    const at = queue.findIndex((q) => q.id === m.first);
    if (at > 0) queue.unshift(...queue.splice(at, 1));
  } else if (m.file) {
    queue.push({ id: m.id, file: m.file });
    if (!running) run();
  }
};

async function run() {
  running = true;
  while (queue.length) {
    const { id, file } = /** @type {{id: string, file: Blob}} */ (queue.shift());
    try {
      const read = async (/** @type {number} */ start, /** @type {number} */ end) => new Uint8Array(await file.slice(start, end).arrayBuffer());
      const pause = async () => {
        while (paused) await new Promise((r) => (resume = r));
      };
      const { sha256, blocks } = await hashFile(read, file.size, { pause });
      self.postMessage({ id, sha256, blocks }, { transfer: [blocks.buffer] });
    } catch (err) {
      self.postMessage({ id, error: String(err?.message || err) });
    }
  }
  running = false;
}
