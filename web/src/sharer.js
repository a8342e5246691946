// @ts-check
// The sharing side: owns the shared files and notes, and one PeerLink per
// receiver, each served independently. Emits "update" for the view.
import { PeerLink } from "./peer.js";
import { hashFile } from "./transfer/blocks.js";
import { addMessages, helloMessage } from "./transfer/manifest.js";
import { chunkSize } from "./transfer/protocol.js";
import { Upload } from "./transfer/send.js";
import { Slots } from "./transfer/slots.js";
import { Meter, deferred } from "./util.js";

/**
 * What the view needs to say, as codes (ui/share-view.js has the sentences).
 * A receiver: state "connecting" | "connected" | "left" | "failed" | "tampered", and
 * `problem`, why it failed or was refused: "lost", "ice-failed", "timeout" (no direct
 * connection), "refused-offer" (it saw our offer altered), "altered" (its signals to us
 * were), "setup" or "start" (info.message: the browser's own error), "left-mid-transfer".
 * `lastError` is {name, error}: its last failed upload, and the TransferError why.
 * `alerts`: {code: "tamper-ignored" | "tamper-refused" | "refused-offer" |
 * "remote-tamper-ignored" | "mismatch", kind?, number? (of the receiver), error?}, oldest first.
 * @typedef {{code: string, info?: {message?: string}}} Problem
 */

export class Sharer extends EventTarget {
  constructor(room) {
    super();
    this.room = room;
    this.files = new Map();
    this.notes = [];
    this.receivers = new Map();
    this.count = 0;
    this.nextId = 1;
    /** @type {{code: string, kind?: string, number?: number, name?: string, error?: Error}[]} */
    this.alerts = [];
    this.impostor = false;
    /** @type {Worker | null | undefined} undefined until the first file, null where workers cannot start */
    this.hasher = undefined;
    this.hashPaused = false;
    this.hashWaiters = 0; // uploads waiting for a file's hashes
    room.on("message", ({ from, kind, payload }) => this.onMessage(from, kind, payload));
    room.on("tampered", ({ from, kind }) => this.onTampered(from, kind));
    room.on("impostor", ({ from }) => this.onImpostor(from));
    room.on("peer-left", ({ peer }) => this.onPeerLeft(peer));
    // Offer at once rather than wait for the newcomer's hello: one trip through the cluster less.
    // Its hello may have come first: a second offer would cross the first one's answer.
    room.on("peer-joined", ({ peer }) => {
      if (!this.busy(peer)) this.accept(peer);
    });
    room.on("state", () => this.changed());
  }

  changed() {
    // Background hashing waits while any connection is being set up, unless a transfer waits for it.
    const connecting = this.hashWaiters === 0 && [...this.receivers.values()].some((r) => r.state === "connecting");
    if (this.hasher && connecting !== this.hashPaused) {
      this.hashPaused = connecting;
      this.hasher.postMessage({ pause: connecting });
    }
    this.dispatchEvent(new Event("update"));
  }

  addFiles(entries) {
    const added = [];
    for (const { file, path } of entries) {
      const id = String(this.nextId++);
      const rec = { id, file, name: file.name, path: path || file.name, size: file.size, type: file.type || "", mtime: file.lastModified || Date.now(), hashes: deferred() };
      rec.hashes.promise.catch(() => {}); // an unreadable file is said when someone asks for it
      this.files.set(id, rec);
      added.push(rec);
      this.prehash(rec);
    }
    this.broadcast({ files: added });
    this.changed();
    return added;
  }

  /**
   * Hash a file once, as it is added: its block hashes and whole-file SHA-256, in a
   * worker (on this page where there is none). A transfer asking for it first waits.
   */
  prehash(rec) {
    if (!this.hasher && this.hasher !== null) {
      try {
        this.hasher = new Worker("/hash-worker.js");
        this.hashPaused = false;
        this.hasher.onmessage = (e) => {
          const { id, sha256, blocks, error } = e.data || {};
          const target = this.files.get(id);
          if (!target) return;
          if (typeof sha256 === "string" && blocks instanceof Uint8Array) target.hashes.resolve({ sha256, blocks });
          else target.hashes.reject(new Error(error || "hashing failed"));
        };
      } catch {
        this.hasher = null; // no workers here: hash on this page
      }
    }
    if (this.hasher) {
      this.hasher.postMessage({ id: rec.id, file: rec.file });
      return;
    }
    const read = async (start, end) => new Uint8Array(await rec.file.slice(start, end).arrayBuffer());
    hashFile(read, rec.size).then(rec.hashes.resolve, rec.hashes.reject);
  }

  /** The file's hashes, moved to the front of the worker's line when a receiver asks before its turn. */
  hashesOf(rec) {
    this.hasher?.postMessage({ first: rec.id });
    this.hashWaiters++;
    this.changed();
    const done = () => {
      this.hashWaiters--;
      this.changed();
    };
    rec.hashes.promise.then(done, done);
    return rec.hashes.promise;
  }

  addNote(text) {
    const note = { id: String(this.nextId++), text };
    this.notes.push(note);
    this.broadcast({ notes: [note] });
    this.changed();
  }

  broadcast(delta) {
    for (const r of this.receivers.values()) if (r.control?.readyState === "open") for (const m of addMessages(delta)) r.control.send(JSON.stringify(m));
  }

  onMessage(from, kind, payload) {
    if (kind === "hello") {
      // Usually a duplicate: we offered as soon as the server said it joined.
      if (!this.busy(from)) this.accept(from);
      return;
    }
    const r = this.receivers.get(from);
    if (!r) return;
    if (kind === "refuse") {
      if (r.state === "connected") {
        // Its DTLS link to us is up and verified: a forgery it saw later changes nothing here.
        this.alerts.push({ code: "remote-tamper-ignored", number: r.number });
        this.changed();
        return;
      }
      r.state = "tampered";
      r.problem = { code: "refused-offer" };
      this.alerts.push({ code: "refused-offer" });
      r.link.close();
      this.changed();
      return;
    }
    r.link.handle(kind, payload).catch((err) => {
      r.state = "failed";
      r.problem = { code: "setup", info: { message: err.message } };
      this.changed();
    });
  }

  /** Another page with this link sent us an offer: it is acting as a sharer. Receivers ignore it (it cannot sign as us). */
  onImpostor(from) {
    console.warn(`pea: peer ${from} sent us an offer: another page with this link is acting as a sharer`);
    this.impostor = true;
    this.changed();
  }

  onTampered(from, kind) {
    const r = this.receivers.get(from);
    if (r?.state === "connected") {
      // Like the receiver: a link whose DTLS fingerprints were verified does not need the
      // server any more, so a forged signal is refused and reported, and the link stays.
      this.room.send(from, "refuse", `bad signature on ${kind}`);
      this.alerts.push({ code: "tamper-ignored", kind, number: r.number });
      this.changed();
      return;
    }
    if (r) {
      r.state = "tampered";
      r.problem = { code: "altered" };
      r.link.close();
    }
    this.room.send(from, "refuse", `bad signature on ${kind}`);
    this.alerts.push({ code: "tamper-refused", kind });
    this.changed();
  }

  async onPeerLeft(peer) {
    const r = this.receivers.get(peer);
    if (!r) return;
    const link = r.link;
    // A receiver still answering directly keeps its downloads, whatever the server says.
    if (r.state === "connected" && (await link.probe(3000))) return;
    if (r.link !== link) return;
    link.fail("left");
    if (r.state !== "tampered") r.state = "left";
    this.changed();
  }

  /** A connection with this peer is being made or is up: no new offer. */
  busy(peer) {
    const known = this.receivers.get(peer);
    return known?.state === "connecting" || known?.state === "connected";
  }

  accept(peer) {
    const old = this.receivers.get(peer);
    old?.link.close();
    const r = old ?? { peer, number: ++this.count, uploads: new Set(), slots: new Slots(), done: 0, problem: null, lastError: null };
    r.state = "connecting";
    r.problem = null;
    r.link = new PeerLink({ remote: peer, role: "offerer", ...this.room.linkOptions(), send: (kind, payload) => this.room.send(peer, kind, payload) });
    this.receivers.set(peer, r);
    const link = r.link;
    link.addEventListener("control", (e) => {
      r.control = e.detail;
      r.control.send(JSON.stringify(helloMessage()));
      for (const m of addMessages({ files: [...this.files.values()], notes: this.notes })) r.control.send(JSON.stringify(m));
    });
    link.addEventListener("state", (e) => {
      if (r.link !== link) return;
      const { state, reason } = e.detail;
      if (state === "connected") r.state = "connected";
      else if (state === "failed") {
        r.state = "failed";
        r.problem = { code: reason === "lost" || reason === "ice-failed" ? reason : "timeout" };
      } else if (state === "closed" && r.state === "connected") {
        r.state = "left";
      }
      if (state === "failed" || state === "closed") {
        if (reason === "left" && r.state !== "tampered") r.state = "left";
        if (r.uploads.size) r.problem = { code: "left-mid-transfer" };
        for (const t of r.uploads) t.up.abort();
      }
      this.changed();
    });
    link.addEventListener("datachannel", (e) => this.serve(r, e.detail));
    link.startOffer().catch((err) => {
      r.state = "failed";
      r.problem = { code: "start", info: { message: err.message } };
      this.changed();
    });
    this.changed();
  }

  serve(r, channel) {
    const slot = r.slots.acquire();
    if (slot === null) {
      refuseBusy(channel);
      return;
    }
    const up = new Upload(
      channel,
      (id) => this.files.get(id),
      chunkSize(r.link.maxMessageSize),
      (rec) => this.hashesOf(rec),
    );
    /** @type {{up: Upload, meter: Meter | null, name: string}} */
    const t = { up, meter: null, name: "" };
    up.addEventListener("start", (e) => {
      const rec = /** @type {CustomEvent} */ (e).detail;
      t.name = rec.path;
      t.meter = new Meter(rec.size);
      t.meter.restart(up.from); // a resumed download: speed and time left count from where it starts
      r.uploads.add(t);
      this.changed();
    });
    let last = 0;
    up.addEventListener("progress", (e) => {
      t.meter?.update(/** @type {CustomEvent} */ (e).detail.acked);
      const now = performance.now();
      if (now - last > 250) {
        last = now;
        this.changed();
      }
    });
    let release = () => {};
    slot
      .then((free) => {
        release = free;
        return up.run();
      })
      .then(
        () => {
          release();
          r.uploads.delete(t);
          r.done++;
          this.changed();
        },
        (err) => {
          release();
          r.uploads.delete(t);
          if (t.name) {
            r.lastError = { name: t.name, error: err };
            if (err.code === "mismatch") this.alerts.push({ code: "mismatch", number: r.number, name: t.name, error: err });
          }
          this.changed();
        },
      );
  }
}

/** @param {RTCDataChannel} channel */
function refuseBusy(channel) {
  const refuse = () => {
    channel.send(JSON.stringify({ t: "error", code: "busy", message: "Too many downloads at once from this sharer; try again when one has finished." }));
    channel.close();
  };
  if (channel.readyState === "open") refuse();
  else channel.addEventListener("open", refuse, { once: true });
}
