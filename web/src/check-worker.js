// @ts-check
// The receiver's block checks and whole-file SHA-256, off the page's thread
// (transfer/block-check.js), for every download of the page at once: each has a
// session number. The page hands each block over as its own buffer (transferred, not
// copied) and gets, per request number, a verdict, a digest or an error.
import { BlockCheck } from "./transfer/block-check.js";

/** @type {Map<number, Promise<BlockCheck>>} */
const sessions = new Map();

/**
 * @param {number} n @param {Promise<unknown>} p
 * @param {ArrayBuffer} [spare] a block's buffer, handed back once checked: the page copies the next block into it
 */
function answer(n, p, spare) {
  p.then(
    (value) => (spare ? self.postMessage({ n, value, spare }, { transfer: [spare] }) : self.postMessage({ n, value })),
    (err) => self.postMessage({ n, error: String(err?.message || err) }),
  );
}

self.onmessage = (e) => {
  const m = e.data || {};
  const session = sessions.get(m.id);
  if (m.op === "open") {
    const check = BlockCheck.create(m.verified, m.state ?? null);
    sessions.set(m.id, check);
    answer(
      m.n,
      check.then(() => true),
    );
  } else if (m.op === "close") {
    sessions.delete(m.id);
  } else if (!session) {
    answer(m.n, Promise.reject(new Error("no such check")));
  } else if (m.op === "check") {
    answer(
      m.n,
      session.then((c) => c.check(new Uint8Array(m.block), m.at, m.hash)),
      m.block,
    );
  } else if (m.op === "digest") {
    answer(
      m.n,
      session.then((c) => c.digest()),
    );
  }
};
self.postMessage({ ready: true });
