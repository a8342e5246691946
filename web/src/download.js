// Hands a ReadableStream to the browser as a download. In a secure context a
// service worker streams it to disk; elsewhere (plain HTTP on a LAN address)
// there is no service worker, so the bytes are gathered in memory and saved
// as a Blob: it works, but the page says so and says how to avoid it.
import { randomId } from "./util.js";

export const MEMORY_WARN_BYTES = 512 << 20;
let registration = null;
let mode = null;

let setup = null;
export function setupDownloads() {
  setup ??= register();
  return setup;
}

async function register() {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) {
    mode = "memory";
    return mode;
  }
  try {
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    mode = "stream";
  } catch (err) {
    console.warn("pea: service worker unavailable, downloads will be kept in memory", err);
    mode = "memory";
  }
  return mode;
}

export function downloadMode() {
  return mode;
}

async function activeWorker() {
  if (registration?.active) return registration.active;
  const ready = await Promise.race([
    navigator.serviceWorker.ready,
    new Promise((_, rej) => setTimeout(() => rej(new Error("service worker did not start")), 10000)),
  ]);
  return ready.active;
}

function ask(worker, message, transfer = []) {
  return new Promise((resolve, reject) => {
    const { port1, port2 } = new MessageChannel();
    const t = setTimeout(() => reject(new Error("service worker did not answer")), 10000);
    port1.onmessage = () => {
      clearTimeout(t);
      resolve();
    };
    worker.postMessage(message, [port2, ...transfer]);
  });
}

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

/** Save `stream` as a download called `name`; resolves when the bytes have been handed over. */
export async function saveStream({ name, size, mime, stream, done }) {
  await setupDownloads();
  if (mode === "stream") {
    const worker = await activeWorker();
    const id = randomId(16);
    const meta = { type: "pea-download", id, name, size, mime };
    try {
      if (window.__peaForcePortPump) throw new DOMException("forced by a test", "DataCloneError");
      await ask(worker, { ...meta, stream }, [stream]);
    } catch (err) {
      if (err?.name !== "DataCloneError") throw err;
      // No transferable streams (Safari): the worker pulls chunks over a MessagePort instead.
      const port = pumpPort(stream);
      await ask(worker, { ...meta, port }, [port]);
    }
    hold();
    const frame = document.createElement("iframe");
    frame.hidden = true;
    frame.title = "download";
    // A navigation the worker answers; never <a download>, which bypasses the worker.
    frame.src = `/_pea/download/${id}/${encodeURIComponent(name)}`;
    document.body.append(frame);
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
  const url = URL.createObjectURL(new Blob(parts, { type: mime || "application/octet-stream" }));
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
