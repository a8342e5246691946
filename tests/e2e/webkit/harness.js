// Test page for WebKitGTK (tests/e2e/test_webkit.py): pea's own download code
// (web/src/download.js and the service worker) fed with bytes made here, since no
// WebKit build installable on Debian has WebRTC to receive them from a sharer.
import { saveStream } from "../../../web/src/download.js";

/** size bytes of (offset % 251), made only when the download pulls (as a transfer would). */
function pattern(size, onEnd) {
  let sent = 0;
  return new ReadableStream(
    {
      pull(c) {
        if (sent >= size) {
          c.close();
          onEnd();
          return;
        }
        const n = Math.min(65536, size - sent);
        const b = new Uint8Array(n);
        for (let i = 0; i < n; i++) b[i] = (sent + i) % 251;
        sent += n;
        c.enqueue(b);
      },
    },
    { highWaterMark: 1 },
  );
}

/** Can a ReadableStream be transferred to a worker? Safari and WebKitGTK: no. */
window.peaStreamsTransferable = () => {
  try {
    const s = new ReadableStream();
    structuredClone(s, { transfer: [s] });
    return true;
  } catch {
    return false;
  }
};

window.peaSave = async (name, size) => {
  let end;
  const done = new Promise((resolve) => {
    end = resolve;
  });
  try {
    await saveStream({ name, size, mime: "application/octet-stream", stream: pattern(size, end), done });
    await done;
    return "saved";
  } catch (err) {
    return `error: ${err.message}`;
  }
};
