// Hashes shared files off the main thread as soon as they are added, once per
// file: every later transfer of that file, to any number of receivers, then
// sends the known SHA-256 instead of hashing again while it sends.
import { createSHA256 } from "hash-wasm";

const BLOCK = 4 << 20;

self.onmessage = async (e) => {
  const { id, file } = e.data || {};
  try {
    const h = await createSHA256();
    h.init();
    for (let at = 0; at < file.size; at += BLOCK) {
      h.update(new Uint8Array(await file.slice(at, at + BLOCK).arrayBuffer()));
    }
    self.postMessage({ id, sha256: h.digest("hex") });
  } catch (err) {
    self.postMessage({ id, error: String(err?.message || err) });
  }
};
