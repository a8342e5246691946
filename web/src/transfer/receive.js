// @ts-check
// Receiver side of one file: opens a `get` channel, hashes bytes as they
// arrive, and exposes them as a pull-based ReadableStream; an `ack` goes back
// only for bytes the consumer (the download) has taken, so memory stays
// bounded by the sender's window whatever the file size.
import { createSHA256 } from "hash-wasm";
import { visible } from "../names.js";
import { ACK_EVERY, GET_LABEL, TransferError, parse } from "./protocol.js";

const COALESCE = 2 << 20;
const PIECE = 1 << 20;

export async function startDownload(pc, file, { onProgress } = {}) {
  const hasher = await createSHA256();
  hasher.init();
  const ch = pc.createDataChannel(GET_LABEL, { ordered: true });
  // The sharer's name, as put into sentences: hidden and direction-changing characters shown, not obeyed.
  const name = visible(file.name).text;
  ch.binaryType = "arraybuffer";
  const queue = [];
  let received = 0;
  let consumed = 0;
  let queued = 0;
  let lastAck = 0;
  let verified = false;
  let error = null;
  let finished = false;
  let wakeup = null;
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => {}); // callers that only read the stream still see the error there
  const wake = () => {
    const w = wakeup;
    wakeup = null;
    w?.();
  };
  const fail = (code, message) => {
    if (error || finished) return;
    error = new TransferError(code, message);
    settle.reject(error);
    wake();
    try {
      ch.close();
    } catch {}
  };
  const send = (obj) => {
    if (ch.readyState === "open") ch.send(JSON.stringify(obj));
  };

  ch.onopen = () => send({ t: "get", file: file.id });
  ch.onclose = () => {
    if (!verified) fail("vanished", `The sharer vanished in the middle of “${name}” (closed the page or lost the network).`);
  };
  ch.onmessage = (ev) => {
    if (error) return;
    if (typeof ev.data !== "string") {
      const u = new Uint8Array(ev.data);
      received += u.byteLength;
      if (received > file.size) {
        fail("size", `“${name}” came with more bytes than announced; discarded.`);
        return;
      }
      hasher.update(u);
      queue.push(u);
      queued += u.byteLength;
      onProgress?.(received);
      wake();
      return;
    }
    const m = parse(ev.data);
    if (!m) return;
    if (m.t === "end") {
      const sha256 = hasher.digest("hex");
      if (received !== file.size || m.size !== file.size) {
        send({ t: "bad", sha256 });
        fail("size", `“${name}” arrived with ${received} bytes instead of ${file.size}.`);
      } else if (typeof m.sha256 !== "string" || m.sha256.toLowerCase() !== sha256) {
        send({ t: "bad", sha256 });
        fail("mismatch", `SHA-256 mismatch for “${name}”: the bytes received are not the bytes sent. The download was stopped.`);
      } else {
        verified = true;
        settle.sha256 = sha256;
        wake();
      }
    } else if (m.t === "error") {
      // The sharer's own words, shown as text: bounded, and with nothing hidden in them.
      const said = typeof m.message === "string" && m.message ? visible(m.message.slice(0, 300)).text : "The sharer could not send this file.";
      fail(typeof m.code === "string" ? m.code.slice(0, 40) : "sender-error", said);
    }
  };

  const stream = new ReadableStream(
    {
      async pull(controller) {
        // Wait for a piece worth a hop to the service worker (or the end): fewer, larger chunks.
        while (queued < PIECE && !verified && !error) {
          await new Promise((r) => {
            wakeup = r;
          });
        }
        if (error) {
          controller.error(error);
          return;
        }
        if (queue.length) {
          // Hand the download fewer, larger pieces: each one costs a hop to the service worker.
          let u = queue.shift();
          if (queue.length && u.byteLength < COALESCE) {
            const parts = [u];
            let n = u.byteLength;
            while (queue.length && n + queue[0].byteLength <= COALESCE) {
              n += queue[0].byteLength;
              parts.push(queue.shift());
            }
            u = new Uint8Array(n);
            let at = 0;
            for (const p of parts) {
              u.set(p, at);
              at += p.byteLength;
            }
          }
          controller.enqueue(u);
          queued -= u.byteLength;
          consumed += u.byteLength;
          if (consumed - lastAck >= ACK_EVERY) {
            lastAck = consumed;
            send({ t: "ack", bytes: consumed });
          }
          return;
        }
        finished = true;
        controller.close();
        send({ t: "ok", sha256: settle.sha256 });
        settle.resolve({ sha256: settle.sha256, size: received });
        setTimeout(() => ch.close(), 1000); // let `ok` leave before the channel goes
      },
      cancel() {
        send({ t: "cancel" });
        fail("cancelled", `The download of “${name}” was cancelled.`);
      },
    },
    { highWaterMark: 1 },
  );
  return {
    stream,
    done,
    cancel: () => fail("cancelled", `The download of “${name}” was cancelled.`),
    abort: (code, message) => fail(code, message ?? `The sharer vanished in the middle of “${name}”.`),
  };
}
