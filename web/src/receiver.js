// @ts-check
// The receiving side: finds the sharer in the room, keeps one PeerLink to it,
// collects the manifest, and runs downloads (one file, or all as a zip).
import { makeZip, predictLength } from "client-zip";
import { saveStream } from "./download.js";
import { ZipNames, safeFileName, safeMime, visible } from "./names.js";
import { PeerLink } from "./peer.js";
import { parse } from "./transfer/protocol.js";
import { startDownload } from "./transfer/receive.js";
import { Meter } from "./util.js";

const NO_SHARER_MS = 8000;

export class Receiver extends EventTarget {
  constructor(room) {
    super();
    this.room = room;
    this.files = new Map();
    this.notes = [];
    this.state = "connecting-server";
    this.detail = "";
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
      this.set("failed", s.message || "The server refused to let us in.");
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

  abortAll(reason) {
    for (const t of this.active) t.abort("vanished", `${reason} in the middle of “${t.name}”; that download was stopped.`);
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
      this.alert = `Ignored a signed ${kind} that did not verify: it was altered on the way (the server or the network is tampering). The direct connection, already verified, continues.`;
      this.changed();
      return;
    }
    const text = `A signed ${kind} did not verify: it was altered on the way, so the server or the network is tampering with this connection. pea refused it. Nothing was downloaded.`;
    if (this.link && this.link.remote === from) {
      // The connection being made is the one tampered with: give it up.
      this.link.close();
      this.final = true;
    }
    // Otherwise it names the sharer's key but comes from a peer we are not connecting with:
    // the server, or a link holder who copied the (public) key. Say so, but a valid offer
    // from the real sharer still connects, so no link holder can abort a download this way.
    this.set("tampered", text);
  }

  onMessage(from, kind, payload) {
    if (kind === "refuse") {
      if (this.connected) {
        // The verified direct link does not depend on signalling: the sharer saw a forgery, not us.
        this.alert = "The sharer reported a signal that did not verify (the server or the network is tampering). The direct connection, already verified, is unaffected.";
        this.changed();
        return;
      }
      if (from === this.sharer || !this.connected) {
        this.link?.close();
        this.final = true;
        this.set("tampered", "The sharer refused our answer: it was altered on the way, so the server or the network is tampering with this connection. Nothing was downloaded.");
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
        link = new PeerLink({ remote: from, role: "answerer", iceServers: this.room.iceServers, send: (k, p) => this.room.send(from, k, p) });
      } catch (err) {
        // main.js checks for WebRTC first; this is for a browser that has it yet refuses here.
        this.final = true;
        this.set("failed", `This browser could not start a direct connection (${err.message}). Try a current Firefox, Chrome, Edge or Safari.`);
        return;
      }
      this.link = link;
      link.addEventListener("control", (e) => this.onControl(e.detail));
      link.addEventListener("state", (e) => {
        if (this.link !== link) return;
        const { state, reason } = e.detail;
        if (state === "connected") {
          performance.mark("pea:connected");
          this.set("connected");
        } else if (state === "failed") {
          this.final = true;
          this.abortAll(reason === "left" ? "The sharer left" : "The connection to the sharer was lost");
          // "no-route" keeps the reason ("ice-failed" early, or "timeout"): the wording differs.
          if (reason === "lost" || reason === "left") this.set(reason === "lost" ? "lost" : "sharer-left");
          else this.set("no-route", reason);
        } else if (state === "closed") {
          this.final = true;
          this.abortAll("The sharer left");
          this.set("sharer-left");
        }
      });
    }
    if (from === this.sharer && this.link) {
      this.link.handle(kind, payload).catch((err) => this.set("failed", `Could not set up the connection: ${err.message}`));
    }
  }

  onControl(ch) {
    ch.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const m = parse(ev.data);
      if (m?.t !== "add") return;
      for (const f of Array.isArray(m.files) ? m.files : []) {
        if (!f || typeof f.id !== "string" || typeof f.name !== "string" || !Number.isSafeInteger(f.size) || f.size < 0) continue;
        this.files.set(f.id, {
          id: f.id,
          name: f.name,
          path: typeof f.path === "string" ? f.path : f.name,
          size: f.size,
          type: typeof f.type === "string" ? f.type : "",
          mtime: Number(f.mtime) || Date.now(),
        });
      }
      for (const n of Array.isArray(m.notes) ? m.notes : []) if (n && typeof n.text === "string") this.notes.push({ id: String(n.id), text: n.text });
      if (!performance.getEntriesByName("pea:files").length) performance.mark("pea:files");
      this.changed();
    };
  }

  run(t, file) {
    t.name = visible(file.name).text; // for messages: a name never reorders the sentence around it
    this.active.add(t);
    const forget = () => this.active.delete(t);
    t.done.then(forget, forget);
    return t;
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
    d.error = err ? err.message : null;
    if (err && err.code === "mismatch") this.alert = err.message;
    this.changed();
  }

  async download(id) {
    const file = this.files.get(id);
    const running = this.downloads.get(id);
    if (!file || !this.connected || (running && !running.done && !running.error)) return;
    const d = this.track(id, file.size);
    let t = null;
    try {
      t = this.run(await startDownload(this.link.pc, file, { onProgress: (b) => this.progress(d, b) }), file);
      // "Saved" needs both: every byte verified, and the browser having taken the download.
      const saving = saveStream({ name: safeFileName(file.name), size: file.size, mime: safeMime(file.type), stream: t.stream, done: t.done });
      await Promise.all([saving, t.done]);
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
    const pc = this.link.pc;
    let before = 0;
    async function* entries(self) {
      for (const f of files) {
        const t = self.run(await startDownload(pc, f, { onProgress: (b) => self.progress(d, before + b) }), f);
        yield { name: f.entry, lastModified: new Date(f.mtime), size: f.size, input: t.stream };
        await t.done;
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
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
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
        settle.reject(new Error("The zip download was cancelled."));
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 1 },
  );
  return { stream, done };
}
