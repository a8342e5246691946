// @ts-check
// Hands a ReadableStream to the browser as a download. In a secure context a
// service worker streams it to disk; elsewhere (plain HTTP on a LAN address)
// there is no service worker, so the bytes are gathered in memory and saved
// as a Blob: it works, but the page says so and says how to avoid it.
import { downloadPath } from "./capabilities.js";
import { safeFileName, safeMime } from "./names.js";
import { TransferError } from "./transfer/protocol.js";
import { randomId } from "./util.js";

const START_TIMEOUT_MS = 15000; // the worker answers the download's request within a second when it works
/** @type {ServiceWorkerRegistration | null} */
let registration = null;
/** @type {"stream" | "memory" | null} */
let mode = null;

/** @typedef {{mode: "stream" | "memory", why: string}} DownloadPath */

/** @type {Promise<DownloadPath> | null} */
let setup = null;
/**
 * Register the download worker (once) and say how downloads will reach the disk: the
 * one answer to that question, which can only be known after registering (it fails
 * where the API exists, as in some private windows).
 * @returns {Promise<DownloadPath>}
 */
export function setupDownloads() {
  setup ??= register();
  return setup;
}

/** @returns {Promise<DownloadPath>} */
async function register() {
  const path = downloadPath();
  if (path.mode === "stream") {
    try {
      registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    } catch (err) {
      console.warn("pea: service worker unavailable, downloads will be kept in memory", err);
      Object.assign(path, { mode: "memory", why: "no-sw" });
    }
  }
  mode = /** @type {DownloadPath["mode"]} */ (path.mode);
  return /** @type {DownloadPath} */ (path);
}

async function activeWorker() {
  if (registration?.active) return registration.active;
  const ready = await Promise.race([navigator.serviceWorker.ready, new Promise((_, rej) => setTimeout(() => rej(new TransferError("worker-not-started")), 10000))]);
  return ready.active;
}

function ask(worker, message, transfer = []) {
  return new Promise((/** @type {(v?: unknown) => void} */ resolve, reject) => {
    const { port1, port2 } = new MessageChannel();
    const t = setTimeout(() => reject(new TransferError("worker-silent")), 10000);
    port1.onmessage = () => {
      clearTimeout(t);
      resolve();
    };
    worker.postMessage(message, [port2, ...transfer]);
  });
}

/** @type {ReturnType<typeof setInterval> | null} */
let keepAlive = null;
let active = 0;
function hold() {
  active++;
  if (!keepAlive)
    keepAlive = setInterval(() => {
      if (registration?.active) ask(registration.active, { type: "pea-ping" }).catch(() => {});
    }, 10000);
}
function release() {
  active--;
  if (active <= 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
}

/** The page side of a stream carried over a MessagePort: one chunk per "pull" from the worker. */
function pumpPort(stream) {
  const { port1, port2 } = new MessageChannel();
  const reader = stream.getReader();
  port1.onmessage = async (e) => {
    if (e.data?.cancel) {
      reader.cancel().catch(() => {});
      return;
    }
    try {
      const { value, done } = await reader.read();
      if (done) {
        port1.postMessage({ done: true });
        return;
      }
      const whole = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
      const buf = whole ? value.buffer : value.slice().buffer;
      port1.postMessage({ chunk: buf }, [buf]);
    } catch (err) {
      port1.postMessage({ error: String(err?.message || err) });
    }
  };
  return port2;
}

/** A promise for the worker's word that the browser's download request was answered (or could not be). */
function startSignal() {
  const { port1, port2 } = new MessageChannel();
  let timer;
  const started = new Promise((/** @type {(v?: unknown) => void} */ resolve, reject) => {
    timer = setTimeout(() => reject(new TransferError("not-started")), START_TIMEOUT_MS);
    port1.onmessage = (e) => {
      clearTimeout(timer);
      if (e.data?.started) resolve();
      else reject(new TransferError("start-failed", { said: String(e.data?.error || "") }));
    };
  });
  started.catch(() => {}).finally(() => port1.close());
  return { started, port: port2 };
}

// Received files up to this size are also kept in memory, once verified, so the Web
// Share API can pass them on to another app; larger ones only go to disk.
const SHARE_COPY_MAX = 64 * 1000 * 1000;
/** @type {Map<string, File>} */
const copies = new Map();

/** A received, verified file this browser can hand to another app (navigator.share), by the name it was saved under. */
export function shareableCopy(name) {
  return copies.get(safeFileName(name)) ?? null;
}

function canShareFiles() {
  try {
    return typeof navigator.canShare === "function" && navigator.canShare({ files: [new File(["x"], "x.txt", { type: "text/plain" })] });
  } catch {
    return false;
  }
}

/** `stream`, unchanged, keeping a copy of its bytes that becomes a File once `done` says they were verified. */
function keepCopy(stream, name, mime, size, done) {
  if (!(size <= SHARE_COPY_MAX) || !canShareFiles()) return stream;
  /** @type {Uint8Array<ArrayBuffer>[]} */
  const parts = [];
  const copied = stream.pipeThrough(
    new TransformStream({
      transform(chunk, c) {
        parts.push(chunk.slice()); // the original may be transferred (and emptied) on its way to the worker
        c.enqueue(chunk);
      },
    }),
  );
  done.then(
    () => copies.set(name, new File(parts, name, { type: mime })),
    () => {},
  );
  return copied;
}

/**
 * Save `stream` as a download called `name`; resolves when the browser has
 * started the download, rejects (and cancels the stream) when it could not.
 * Name and type are made safe here too, whoever the caller is.
 */
export async function saveStream({ name: rawName, size, mime: rawMime, stream: original, done }) {
  let stream = original;
  const name = safeFileName(rawName);
  const mime = safeMime(rawMime);
  stream = keepCopy(stream, name, mime, size, done);
  await setupDownloads();
  if (mode === "stream") {
    const worker = await activeWorker();
    const id = randomId(16);
    const meta = { type: "pea-download", id, name, size, mime };
    let start = startSignal();
    try {
      if (/** @type {any} */ (window).__peaForcePortPump) throw new DOMException("forced by a test", "DataCloneError");
      await ask(worker, { ...meta, stream, status: start.port }, [stream, start.port]);
    } catch (err) {
      if (err?.name !== "DataCloneError") throw err;
      // No transferable streams (Safari): the worker pulls chunks over a MessagePort instead.
      start = startSignal();
      const port = pumpPort(stream);
      await ask(worker, { ...meta, port, status: start.port }, [port, start.port]);
    }
    const frame = document.createElement("iframe");
    frame.hidden = true;
    frame.title = "download";
    // A navigation the worker answers; never <a download>, which bypasses the worker.
    frame.src = `/_pea/download/${id}/${encodeURIComponent(name)}`;
    document.body.append(frame);
    try {
      await start.started;
    } catch (err) {
      worker.postMessage({ type: "pea-cancel", id }); // the worker holds the stream: it cancels it
      setTimeout(() => frame.remove(), 5000);
      throw err;
    }
    hold();
    const cleanup = () => {
      release();
      setTimeout(() => frame.remove(), 5000);
    };
    done.then(cleanup, cleanup);
    return;
  }
  const parts = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    parts.push(value);
  }
  const url = URL.createObjectURL(new Blob(parts, { type: mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(url);
    a.remove();
  }, 60000);
}
