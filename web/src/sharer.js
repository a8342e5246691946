// @ts-check
// The sharing side: owns the shared files and notes, and one PeerLink per
// receiver, each served independently. Emits "update" for the view.
import { CONNECT_TIMEOUT_MS, PeerLink } from "./peer.js";
import { MANIFEST_BATCH, chunkSize } from "./transfer/protocol.js";
import { Upload } from "./transfer/send.js";
import { Meter } from "./util.js";

// Why a receiver could not be reached, true in every engine: Firefox fails ICE within
// seconds where no path exists ("ice-failed"), Chromium may wait out our bound ("timeout").
const FAILED_WORDS = {
  lost: "the direct connection was lost.",
  "ice-failed": "no direct connection could be made: your browsers found no network path to each other (strict NAT or firewall between you; TURN relays are off by design).",
  timeout: `no direct connection could be made within ${CONNECT_TIMEOUT_MS / 1000} s (strict NAT or firewall between you; TURN relays are off by design).`,
};

export class Sharer extends EventTarget {
  constructor(room) {
    super();
    this.room = room;
    this.files = new Map();
    this.notes = [];
    this.receivers = new Map();
    this.count = 0;
    this.nextId = 1;
    this.alert = null;
    room.on("message", ({ from, kind, payload }) => this.onMessage(from, kind, payload));
    room.on("tampered", ({ from, kind }) => this.onTampered(from, kind));
    room.on("impostor", ({ from }) => this.onImpostor(from));
    room.on("peer-left", ({ peer }) => this.onPeerLeft(peer));
    // Offer at once rather than wait for the newcomer's hello: one trip through the cluster less.
    room.on("peer-joined", ({ peer }) => this.accept(peer));
    room.on("state", () => this.changed());
  }

  changed() {
    // Background hashing waits while any connection is being set up.
    const connecting = [...this.receivers.values()].some((r) => r.state === "connecting");
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
      const rec = { id, file, name: file.name, path: path || file.name, size: file.size, type: file.type || "", mtime: file.lastModified || Date.now() };
      this.files.set(id, rec);
      added.push(rec);
      this.prehash(rec);
    }
    this.broadcast({ files: added.map(describe) });
    this.changed();
    return added;
  }

  /** Queue a file for hashing in a worker; a transfer that starts before it is done hashes inline. */
  prehash(rec) {
    if (typeof Worker === "undefined") return;
    if (!this.hasher) {
      try {
        this.hasher = new Worker("/hash-worker.js");
        this.hashPaused = false;
      } catch {
        this.hasher = null;
        return;
      }
      this.hasher.onmessage = (e) => {
        const { id, sha256 } = e.data || {};
        const target = this.files.get(id);
        if (target && typeof sha256 === "string") target.sha256 = sha256;
      };
    }
    this.hasher.postMessage({ id: rec.id, file: rec.file });
  }

  addNote(text) {
    const note = { id: String(this.nextId++), text };
    this.notes.push(note);
    this.broadcast({ notes: [note] });
    this.changed();
  }

  manifestMessages({ files = [], notes = [] }) {
    const out = [];
    for (let i = 0; i < files.length; i += MANIFEST_BATCH) out.push({ t: "add", files: files.slice(i, i + MANIFEST_BATCH), notes: [] });
    for (let i = 0; i < notes.length; i += MANIFEST_BATCH) out.push({ t: "add", files: [], notes: notes.slice(i, i + MANIFEST_BATCH) });
    return out;
  }

  broadcast(delta) {
    for (const r of this.receivers.values()) if (r.control?.readyState === "open") for (const m of this.manifestMessages(delta)) r.control.send(JSON.stringify(m));
  }

  onMessage(from, kind, payload) {
    if (kind === "hello") {
      // Usually a duplicate: we offered as soon as the server said it joined.
      const known = this.receivers.get(from);
      if (known && (known.state === "connecting" || known.state === "connected")) return;
      this.accept(from);
      return;
    }
    const r = this.receivers.get(from);
    if (!r) return;
    if (kind === "refuse") {
      if (r.state === "connected") {
        // Its DTLS link to us is up and verified: a forgery it saw later changes nothing here.
        this.alert = `${r.label} reported a signal that did not verify (the server or the network is tampering). Its direct connection, already verified, is unaffected.`;
        this.changed();
        return;
      }
      r.state = "tampered";
      r.detail = "refused our offer: what it received from us had been altered on the way.";
      this.alert = "A receiver refused the connection because our signed offer was altered on the way: the server or the network is tampering with the connection. Nothing was sent to it.";
      r.link.close();
      this.changed();
      return;
    }
    r.link.handle(kind, payload).catch((err) => {
      r.state = "failed";
      r.detail = `could not connect (${err.message})`;
      this.changed();
    });
  }

  /** Another page with this link sent us an offer: it is acting as a sharer. Receivers ignore it (it cannot sign as us). */
  onImpostor(from) {
    console.warn(`pea: peer ${from} sent us an offer: another page with this link is acting as a sharer`);
    this.impostor = "Another page with this link is acting as a sharer. Your receivers ignore it: they accept only offers signed by this page.";
    this.changed();
  }

  onTampered(from, kind) {
    const r = this.receivers.get(from);
    if (r?.state === "connected") {
      // Like the receiver: a link whose DTLS fingerprints were verified does not need the
      // server any more, so a forged signal is refused and reported, and the link stays.
      this.room.send(from, "refuse", `bad signature on ${kind}`);
      this.alert = `Ignored a signed ${kind} that did not verify: it was altered on the way (the server or the network is tampering). The direct connection with ${r.label}, already verified, continues.`;
      this.changed();
      return;
    }
    if (r) {
      r.state = "tampered";
      r.detail = "its connection details were altered on the way; refused.";
      r.link.close();
    }
    this.room.send(from, "refuse", `bad signature on ${kind}`);
    this.alert = `Refused a connection: a signed ${kind} did not verify, so it was altered on the way (the server or the network is tampering). Nothing was sent to that peer.`;
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

  accept(peer) {
    const old = this.receivers.get(peer);
    old?.link.close();
    const r = old ?? { peer, label: `Receiver ${++this.count}`, uploads: new Set(), done: 0 };
    r.state = "connecting";
    r.detail = "";
    r.link = new PeerLink({ remote: peer, role: "offerer", iceServers: this.room.iceServers, send: (kind, payload) => this.room.send(peer, kind, payload) });
    this.receivers.set(peer, r);
    const link = r.link;
    link.addEventListener("control", (e) => {
      r.control = e.detail;
      r.control.send(JSON.stringify({ t: "hello", v: 1, app: "pea-web" }));
      for (const m of this.manifestMessages({ files: [...this.files.values()].map(describe), notes: this.notes })) r.control.send(JSON.stringify(m));
    });
    link.addEventListener("state", (e) => {
      if (r.link !== link) return;
      const { state, reason } = e.detail;
      if (state === "connected") r.state = "connected";
      else if (state === "failed") {
        r.state = "failed";
        r.detail = FAILED_WORDS[reason] || FAILED_WORDS.timeout;
      } else if (state === "closed" && r.state === "connected") {
        r.state = "left";
      }
      if (state === "failed" || state === "closed") {
        if (reason === "left" && r.state !== "tampered") r.state = "left";
        if (r.uploads.size) r.detail = "left during a transfer.";
        for (const t of r.uploads) t.up.abort();
      }
      this.changed();
    });
    link.addEventListener("datachannel", (e) => this.serve(r, e.detail));
    link.startOffer().catch((err) => {
      r.state = "failed";
      r.detail = `could not start a connection (${err.message})`;
      this.changed();
    });
    this.changed();
  }

  serve(r, channel) {
    const up = new Upload(channel, (id) => this.files.get(id), chunkSize(r.link.maxMessageSize));
    const t = { up, meter: null, name: "", error: null };
    up.addEventListener("start", (e) => {
      t.name = e.detail.path;
      t.meter = new Meter(e.detail.size);
      r.uploads.add(t);
      this.changed();
    });
    let last = 0;
    up.addEventListener("progress", (e) => {
      t.meter?.update(e.detail.acked);
      const now = performance.now();
      if (now - last > 250) {
        last = now;
        this.changed();
      }
    });
    up.run().then(
      () => {
        r.uploads.delete(t);
        r.done++;
        r.lastDone = t.name;
        this.changed();
      },
      (err) => {
        r.uploads.delete(t);
        if (t.name) {
          r.lastError = `“${t.name}”: ${err.message}`;
          if (err.code === "mismatch") this.alert = `${r.label}: ${r.lastError}`;
        }
        this.changed();
      },
    );
  }
}

function describe(rec) {
  return { id: rec.id, name: rec.name, path: rec.path, size: rec.size, type: rec.type, mtime: rec.mtime };
}
