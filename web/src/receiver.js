// @ts-check
// The receiving side: finds the sharer in the room, keeps one PeerLink to it,
// collects the manifest, and runs downloads (one file, or all as a zip).
import { makeZip, predictLength } from "client-zip";
import { saveStream } from "./download.js";
import { ZipNames, safeFileName, safeMime } from "./names.js";
import { PeerLink } from "./peer.js";
import { readAdd } from "./transfer/manifest.js";
import { TransferError, parse } from "./transfer/protocol.js";
import { Download } from "./transfer/receive.js";
import { Meter, deferred } from "./util.js";

const NO_SHARER_MS = 8000;

/**
 * What the view needs to say, as codes (ui/receive-view.js has the sentences).
 * `state`: "connecting-server" | "server-offline" | "waiting" | "no-sharer" |
 * "connecting-peer" | "connected" | "sharer-left" | "lost" | "no-route" | "tampered" |
 * "failed"; `detail` qualifies it: for "no-route" "ice-failed" | "timeout"; for
 * "tampered" {code: "altered", kind} (a signal to us did not verify) or {code:
 * "refused-answer"} (the sharer saw ours altered); for "failed" {code: "refused",
 * message} (the server's words) or {code: "no-peer" | "setup", message} (the browser's).
 * `alerts`: {code: "tamper-ignored", kind} | {code: "remote-tamper-ignored"} |
 * {code: "mismatch", error}, oldest first. A download's `error` is a TransferError.
 */

export class Receiver extends EventTarget {
  constructor(room) {
    super();
    this.room = room;
    this.files = new Map();
    this.notes = [];
    this.state = "connecting-server";
    /** @type {any} */
    this.detail = "";
    /** @type {{code: string, kind?: string, error?: Error}[]} */
    this.alerts = [];
    this.impostor = false;
    this.sharer = null;
    this.link = null;
    this.sharerLeft = false;
    this.downloads = new Map(); // file id (or "*") → {meter, error, done}
    this.active = new Set(); // running transfers, aborted together if the sharer goes
    room.on("state", (s) => this.onServerState(s));
    room.on("welcome", (w) => this.onWelcome(w));
    room.on("peer-joined", ({ peer }) => {
      if (!this.connected) this.hello(peer);
    });
    room.on("peer-left", ({ peer }) => this.onPeerLeft(peer));
    room.on("message", ({ from, kind, payload }) => this.onMessage(from, kind, payload));
    room.on("tampered", (t) => this.onTampered(t));
    room.on("impostor", ({ from, kind }) => this.onImpostor(from, kind));
  }

  get connected() {
    return this.link?.state === "connected";
  }

  changed() {
    this.dispatchEvent(new Event("update"));
  }

  /** @param {string} state @param {any} [detail] see the typedef above */
  set(state, detail = "") {
    this.state = state;
    this.detail = detail;
    this.changed();
  }

  hello(peer) {
    this.room.send(peer, "hello", "receiver");
  }

  onServerState(s) {
    if (s.state === "offline" || s.state === "reconnecting") {
      this.serverTrouble = s;
      if (!this.connected && !this.final) this.set("server-offline");
      else this.changed();
    } else if (s.state === "refused") {
      this.set("failed", { code: "refused", message: s.message || "" });
      this.final = true;
    } else if (s.state === "joined") {
      this.serverTrouble = null;
      if (this.state === "server-offline") this.set(this.link ? "connecting-peer" : "waiting");
      else this.changed();
    }
  }

  onWelcome({ peers, resumed }) {
    performance.mark("pea:welcome");
    if (this.final || this.connected) return;
    if (resumed && this.link) return;
    if (!peers.length) {
      this.set("no-sharer");
      return;
    }
    if (this.state !== "connecting-peer") this.set("waiting");
    for (const p of peers) this.hello(p.peer);
    clearTimeout(this.noSharerTimer);
    this.noSharerTimer = setTimeout(() => {
      if (!this.link && !this.final && this.state !== "tampered") this.set("no-sharer");
    }, NO_SHARER_MS);
  }

  async onPeerLeft(peer) {
    if (peer !== this.sharer) return;
    this.sharerLeft = true;
    // A live direct link outlasts the server: believe "left" only if the sharer stops answering.
    const link = this.link;
    if (link && (await link.probe(3000))) return;
    if (this.link !== link) return;
    link?.fail("left");
    this.final = true;
    this.set("sharer-left");
  }

  /** @param {"left" | "lost"} why */
  abortAll(why) {
    for (const t of this.active) t.abort("vanished", { why });
  }

  /** A link holder sent what only the sharer may send, without the sharer's signature: never acted upon. */
  onImpostor(from, kind) {
    console.warn(`pea: ignored a ${kind} from peer ${from}, which is not signed by the sharer's key`);
    this.impostor = true;
    this.changed();
  }

  onTampered({ from, kind, claimsSharer }) {
    // Garbage from a peer that is not the sharer cannot hurt us (we act only on the sharer's
    // signed messages): ignore it rather than let any link holder abort the download.
    if (!claimsSharer && from !== this.sharer) {
      console.warn(`pea: ignored an invalid ${kind} from peer ${from}, which does not claim to be the sharer`);
      return;
    }
    this.room.send(from, "refuse", `bad signature on ${kind}`);
    if (this.connected) {
      // Already talking to a verified sharer: ignore the forgery, keep going, but say so.
      this.alerts.push({ code: "tamper-ignored", kind });
      this.changed();
      return;
    }
    if (this.link && this.link.remote === from) {
      // The connection being made is the one tampered with: give it up.
      this.link.close();
      this.final = true;
    }
    // Otherwise it names the sharer's key but comes from a peer we are not connecting with:
    // the server, or a link holder who copied the (public) key. Say so, but a valid offer
    // from the real sharer still connects, so no link holder can abort a download this way.
    this.set("tampered", { code: "altered", kind });
  }

  onMessage(from, kind, payload) {
    if (kind === "refuse") {
      if (this.connected) {
        // The verified direct link does not depend on signalling: the sharer saw a forgery, not us.
        this.alerts.push({ code: "remote-tamper-ignored" });
        this.changed();
        return;
      }
      if (from === this.sharer || !this.connected) {
        this.link?.close();
        this.final = true;
        this.set("tampered", { code: "refused-answer" });
      }
      return;
    }
    if (kind === "offer") {
      // A working direct link is never torn down by a new offer (for instance one the
      // sharer made after our failed resume gave us a new peer id).
      if (this.connected) return;
      performance.mark("pea:offer");
      this.link?.close();
      this.sharer = from;
      this.sharerLeft = false;
      this.final = false;
      clearTimeout(this.noSharerTimer);
      this.set("connecting-peer");
      let link;
      try {
        link = new PeerLink({ remote: from, role: "answerer", ...this.room.linkOptions(), send: (k, p) => this.room.send(from, k, p) });
      } catch (err) {
        // main.js checks for WebRTC first; this is for a browser that has it yet refuses here.
        this.final = true;
        this.set("failed", { code: "no-peer", message: err.message });
        return;
      }
      this.link = link;
      link.addEventListener("control", (e) => this.onControl(/** @type {CustomEvent} */ (e).detail));
      link.addEventListener("state", (e) => {
        if (this.link !== link) return;
        const { state, reason } = /** @type {CustomEvent} */ (e).detail;
        if (state === "connected") {
          performance.mark("pea:connected");
          this.set("connected");
        } else if (state === "failed") {
          this.final = true;
          this.abortAll(reason === "left" ? "left" : "lost");
          // "no-route" keeps the reason ("ice-failed" early, or "timeout"): the wording differs.
          if (reason === "lost" || reason === "left") this.set(reason === "lost" ? "lost" : "sharer-left");
          else this.set("no-route", reason);
        } else if (state === "closed") {
          this.final = true;
          this.abortAll("left");
          this.set("sharer-left");
        }
      });
    }
    if (from === this.sharer && this.link) {
      this.link.handle(kind, payload).catch((err) => this.set("failed", { code: "setup", message: err.message }));
    }
  }

  onControl(ch) {
    ch.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const add = readAdd(parse(ev.data));
      if (!add) return;
      for (const f of add.files) this.files.set(f.id, f);
      this.notes.push(...add.notes);
      if (!performance.getEntriesByName("pea:files").length) performance.mark("pea:files");
      this.changed();
    };
  }

  /** Start one file's transfer, counted among the active ones until it ends. */
  start(file, onProgress) {
    const t = new Download(this.link.pc, file);
    t.addEventListener("progress", (e) => onProgress(/** @type {CustomEvent} */ (e).detail.received));
    this.active.add(t);
    const forget = () => this.active.delete(t);
    t.done.then(forget, forget);
    return { t, done: t.run() };
  }

  track(key, total) {
    const d = { meter: new Meter(total), error: null, done: false, last: 0 };
    this.downloads.set(key, d);
    this.changed();
    return d;
  }

  progress(d, bytes) {
    d.meter.update(bytes);
    const now = performance.now();
    if (now - d.last > 250) {
      d.last = now;
      this.changed();
    }
  }

  finish(d, err) {
    if (d.error) return; // the first error is the cause; what follows (a cancel) is its consequence
    d.done = !err;
    d.error = err ?? null;
    if (err?.code === "mismatch") this.alerts.push({ code: "mismatch", error: err });
    this.changed();
  }

  async download(id) {
    const file = this.files.get(id);
    const running = this.downloads.get(id);
    if (!file || !this.connected || (running && !running.done && !running.error)) return;
    const d = this.track(id, file.size);
    /** @type {Download | null} */
    let t = null;
    try {
      const started = this.start(file, (b) => this.progress(d, b));
      t = started.t;
      const done = started.done;
      // "Saved" needs both: every byte verified, and the browser having taken the download.
      const saving = saveStream({ name: safeFileName(file.name), size: file.size, mime: safeMime(file.type), stream: started.t.stream, done });
      await Promise.all([saving, done]);
      this.finish(d);
    } catch (err) {
      t?.cancel(); // the browser never took the download: stop the transfer too
      this.finish(d, err);
    }
  }

  async downloadAll() {
    const running = this.downloads.get("*");
    if (!this.connected || !this.files.size || (running && !running.done && !running.error)) return;
    // Entry names the sharer cannot use to write outside the folder the zip is extracted to.
    const names = new ZipNames();
    const files = [...this.files.values()].map((f) => ({ ...f, entry: names.take(f.path) }));
    const total = files.reduce((a, f) => a + f.size, 0);
    const d = this.track("*", total);
    let before = 0;
    async function* entries(self) {
      for (const f of files) {
        const { t, done } = self.start(f, (b) => self.progress(d, before + b));
        yield { name: f.entry, lastModified: new Date(f.mtime), size: f.size, input: t.stream };
        await done;
        before += f.size;
      }
    }
    let length;
    try {
      length = Number(predictLength(files.map((f) => ({ name: f.entry, size: f.size }))));
    } catch {
      length = undefined;
    }
    // An error anywhere (a file that fails its SHA-256, a vanished sharer) errors the zip stream.
    const { stream, done } = watched(makeZip(entries(this)));
    try {
      await Promise.all([saveStream({ name: "pea-files.zip", size: length, mime: "application/zip", stream, done }), done]);
      this.finish(d);
    } catch (err) {
      this.finish(d, err);
    }
  }
}

/** Pass a stream through unchanged, with a promise for its end or its error (no tee: tee buffers without bound). */
function watched(src) {
  const reader = src.getReader();
  const settle = deferred();
  const done = settle.promise;
  const stream = new ReadableStream(
    {
      async pull(c) {
        try {
          const { value, done: end } = await reader.read();
          if (end) {
            c.close();
            settle.resolve();
          } else c.enqueue(value);
        } catch (err) {
          settle.reject(err);
          c.error(err);
        }
      },
      cancel(reason) {
        settle.reject(new TransferError("zip-cancelled"));
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 1 },
  );
  return { stream, done };
}
