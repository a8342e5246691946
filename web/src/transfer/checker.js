// @ts-check
// Where a download's checks run (block-check.js): in one worker shared by every download
// of the page (check-worker.js), or in the page itself where no worker starts (a browser
// without workers, Node's tests). A worker that dies is noticed: every check it owed
// fails, and the downloads behind them stop saying so; later downloads check in the page.
import { BlockCheck } from "./block-check.js";

const START_MS = 5000; // a worker that has not said it is ready by then is not used
const SPARES = 8; // block buffers the worker handed back, kept for the next copies

/**
 * @typedef {object} Checker
 * @property {(parts: Uint8Array[], length: number, at: number, hash: string) => Promise<boolean>} check
 *   the verdict on the block made of `parts` (the messages it came in, `length` bytes), at file offset `at`
 * @property {() => Promise<string>} digest the file's SHA-256 (hex) over the blocks taken
 * @property {() => void} close
 */

/** @type {Promise<Worker | null> | null} */
let started = null;
/** @type {Worker | null} */
let worker = null;
let sessions = 0;
let open = 0;
/** @type {ArrayBuffer[]} copies are made into these (a new buffer costs its page faults on every block) */
let spares = [];
let requests = 0;
/** @type {Map<number, {resolve: (v: any) => void, reject: (e: Error) => void}>} */
const pending = new Map();

/** Start the worker ahead of the first download (a receiving page): its first block need not wait for it. */
export function prepareChecks() {
  startWorker();
}

function startWorker() {
  if (started) return started;
  started = new Promise((resolve) => {
    if (typeof Worker !== "function" || typeof location === "undefined") return resolve(null);
    let w;
    try {
      w = new Worker("/check-worker.js");
    } catch {
      return resolve(null);
    }
    const timer = setTimeout(() => fallBack(), START_MS);
    const fallBack = () => {
      clearTimeout(timer);
      w.terminate();
      resolve(null);
    };
    w.onerror = fallBack;
    w.onmessage = (e) => {
      if (!e.data?.ready) return;
      clearTimeout(timer);
      worker = w;
      w.onmessage = (ev) => settle(ev.data);
      // From now on an error is the worker dying: what it owed fails, the next downloads check here.
      w.onerror = w.onmessageerror = () => died(w);
      resolve(w);
    };
  });
  return started;
}

/** @param {any} m */
function settle(m) {
  const p = pending.get(m?.n);
  if (!p) return;
  pending.delete(m.n);
  if (m.spare instanceof ArrayBuffer && spares.length < SPARES && open > 0) spares.push(m.spare);
  if ("error" in m) p.reject(new Error(String(m.error)));
  else p.resolve(m.value);
}

/** @param {Worker} w */
function died(w) {
  if (worker !== w) return;
  worker = null;
  started = Promise.resolve(null);
  w.terminate();
  for (const p of pending.values()) p.reject(new Error("the check worker stopped"));
  pending.clear();
}

/** @param {Worker} w @param {object} m @param {Transferable[]} [transfer] */
function ask(w, m, transfer = []) {
  if (worker !== w) return Promise.reject(new Error("the check worker stopped"));
  const n = ++requests;
  return new Promise((resolve, reject) => {
    pending.set(n, { resolve, reject });
    w.postMessage({ ...m, n }, transfer);
  });
}

/**
 * A checker for one download that has `verified` bytes already taken and hashed into `state`.
 * @param {number} [verified] @param {Uint8Array | null} [state] hash-wasm's save() of the file's SHA-256 so far
 * @returns {Promise<Checker>}
 */
export async function openChecker(verified = 0, state = null) {
  const w = await startWorker();
  if (w) {
    const id = ++sessions;
    try {
      await ask(w, { op: "open", id, verified, state });
      open++;
      let closed = false;
      return {
        // The worker gets its own copy: the page keeps the block for the download.
        check: (parts, length, at, hash) => {
          const i = spares.findIndex((b) => b.byteLength === length);
          const copy = join(parts, length, i >= 0 ? spares.splice(i, 1)[0] : undefined);
          return ask(w, { op: "check", id, block: copy.buffer, at, hash }, [copy.buffer]);
        },
        digest: () => ask(w, { op: "digest", id }),
        close: () => {
          if (closed) return;
          closed = true;
          // No download left: the spare buffers go too.
          if (--open === 0) spares = [];
          if (worker === w) w.postMessage({ op: "close", id });
        },
      };
    } catch {} // it died while opening: check here
  }
  const c = await BlockCheck.create(verified, state);
  return {
    check: (parts, length, at, hash) => c.check(parts.length === 1 ? parts[0] : join(parts, length), at, hash),
    digest: () => c.digest(),
    close: () => {},
  };
}

/**
 * One block from its messages, in `into` if given (a buffer used again: a new one costs a
 * page fault per 4 KiB on every block).
 * @param {Uint8Array[]} parts @param {number} length @param {ArrayBuffer} [into]
 */
function join(parts, length, into) {
  const out = into ? new Uint8Array(into) : new Uint8Array(length);
  let at = 0;
  for (const u of parts) {
    out.set(u, at);
    at += u.byteLength;
  }
  return out;
}
