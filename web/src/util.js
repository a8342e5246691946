// @ts-check
// Small helpers shared by several modules: encodings, timing, a speed meter.

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
  /** Measure again from `done` (a resumed transfer): the bytes before it are not speed. */
  restart(done) {
    this.done = done;
    this.samples = [[performance.now(), done]];
  }
  get speed() {
    const [t0, d0] = this.samples[0];
    const [t1, d1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((d1 - d0) * 1000) / (t1 - t0) : 0;
  }
  get fraction() {
    return this.total > 0 ? Math.min(1, this.done / this.total) : 1;
  }
}

/**
 * A promise with its resolve/reject outside, for event-driven waits.
 * @template [T=void]
 * @returns {{promise: Promise<T>, resolve: (value: T) => void, reject: (reason: unknown) => void}}
 */
export function deferred() {
  /** @type {(value: T) => void} */
  let resolve = () => {};
  /** @type {(reason: unknown) => void} */
  let reject = () => {};
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
