// @ts-check
// Small helpers shared by several modules: encodings, formatting, timing.

export function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function randomId(bytes = 12) {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b); // available in insecure contexts too, unlike randomUUID
  return b64url(b);
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "?";
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${UNITS[i]}`;
}

export function formatDuration(s) {
  if (!Number.isFinite(s) || s < 0) return "";
  if (s < 1) return "under a second";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Speed over a sliding window, so the number a person reads follows reality within seconds. */
export class Meter {
  constructor(total, windowMs = 3000) {
    this.total = total;
    this.windowMs = windowMs;
    this.samples = [[performance.now(), 0]];
    this.done = 0;
  }
  update(done) {
    const now = performance.now();
    this.done = done;
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }
  get speed() {
    const [t0, d0] = this.samples[0];
    const [t1, d1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((d1 - d0) * 1000) / (t1 - t0) : 0;
  }
  get fraction() {
    return this.total > 0 ? Math.min(1, this.done / this.total) : 1;
  }
  describe() {
    const pct = Math.floor(this.fraction * 100);
    const sp = this.speed;
    const eta = sp > 0 ? formatDuration((this.total - this.done) / sp) : "";
    return `${pct}% · ${formatBytes(this.done)} of ${formatBytes(this.total)} · ${formatBytes(sp)}/s${eta ? ` · ${eta} left` : ""}`;
  }
}

/** A promise with its resolve/reject outside, for event-driven waits. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
