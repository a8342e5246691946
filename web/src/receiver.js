// @ts-check
// The receiving side: finds the sharer in the room, keeps one PeerLink to it,
// collects the manifest, and runs downloads (one file, or all as a zip).
import { makeZip, predictLength } from "client-zip";
import { saveStream } from "./download.js";
import { ZipNames, safeFileName, safeMime } from "./names.js";
import { PeerLink } from "./peer.js";
import { dropStale, findRecord, forgetRecord, recordKey, saveRecord } from "./resume-store.js";
import { SaveFile, canSaveToFile, worthChoosing } from "./save-file.js";
import { holdFile } from "./file-lock.js";
import { BLOCK } from "./transfer/blocks.js";
import { readAdd, readHello } from "./transfer/manifest.js";
import { TransferError, parse } from "./transfer/protocol.js";
import { Download } from "./transfer/receive.js";
import { prepareChecks } from "./transfer/checker.js";
import { savedPrefix } from "./transfer/saved-prefix.js";
import { Meter, deferred } from "./util.js";

const NO_SHARER_MS = 8000;
export const RESUME_MS = 120000; // how long a lost connection is tried again before its downloads fail
const HELLO_EVERY_MS = 3000; // while reconnecting, remind the sharer we are here
const MANIFEST_MS = 5000; // after a new connection, how long a paused download's file may take to be listed
const RETRY_CHANNEL_MS = 1000; // a get channel the sharer closed on a live connection: ask again after this
const MAX_INTERRUPTS = 3; // …at most this many times in a row without a verified block in between
// A download into a chosen file that failed for these reasons can still be continued when
// the link is opened again (the sharer may come back): its record is kept. Any other
// failure (bad data, another file, cancelled) forgets it.
const KEEP_RECORD = new Set(["vanished", "no-such-file", "no-permission"]);

/** RESUME_MS, or a shorter wait a browser test sets (it cannot wait two minutes for a sentence). */
function resumeMs() {
  const forTests = /** @type {any} */ (globalThis).__peaResumeMs;
  return Number.isFinite(forTests) && forTests > 0 ? forTests : RESUME_MS;
}

/**
 * What the view needs to say, as codes (ui/receive-view.js has the sentences).
 * `state`: "connecting-server" | "server-offline" | "waiting" | "no-sharer" |
 * "connecting-peer" | "connected" | "reconnecting" | "sharer-left" | "lost" | "no-route" |
 * "tampered" | "failed"; `detail` qualifies it: for "no-route" "ice-failed" | "timeout"; for
 * "reconnecting" {why: "lost" | "left", since, deadline} (performance.now() times); for
 * "tampered" {code: "altered", kind} (a signal to us did not verify) or {code:
 * "refused-answer"} (the sharer saw ours altered); for "failed" {code: "refused",
 * message} (the server's words), {code: "version"} (the sharer's page speaks another
 * protocol version) or {code: "no-peer" | "setup", message} (the browser's).
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
    this.downloads = new Map(); // file id (or "*") → {meter, error, done, resumedAt, paused}
    /** @type {{why: "lost" | "left", away?: boolean, peer: string | null, since: number, deadline: number, timer: ReturnType<typeof setTimeout>, hellos: ReturnType<typeof setInterval>} | null} */
    this.reconnect = null;
    this.active = new Set(); // running transfers, aborted together if the sharer goes
    // Where the browser lets the page write to a chosen file, downloads go there and can be
    // continued after a reload (save-file.js, resume-store.js); elsewhere through download.js.
    this.toFile = canSaveToFile();
    /** @type {Map<string, import("./resume-store.js").ResumeRecord>} file id → a download saved before a reload */
    this.resumable = new Map();
    /** @type {Set<SaveFile>} */
    this.sinks = new Set();
    if (this.toFile) dropStale();
    prepareChecks();
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
    if (this.reconnect) {
      // Back on the server after losing the sharer: whoever is here may be it, under a new id.
      for (const p of peers) this.hello(p.peer);
      return;
    }
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
    // While reconnecting the sharer may be changing networks too (and come back with another
    // peer id): only the deadline ends the wait.
    if (peer !== this.sharer) return;
    if (this.reconnect) {
      // The link went first (Firefox can report a closing page's link as lost before the
      // server says it left): the page went away too, so it may be reloading, and its files
      // may take until the deadline to be added again.
      this.reconnect.away = true;
      return;
    }
    this.sharerLeft = true;
    // A live direct link outlasts the server: believe "left" only if the sharer stops answering.
    const link = this.link;
    if (link && (await link.probe(3000))) return;
    if (this.link !== link || this.reconnect) return; // meanwhile lost: the resume wait decides
    link?.fail("left");
    if (this.reconnect) return; // downloads were under way: it may be reloading, wait for it
    this.final = true;
    this.set("sharer-left");
  }

  /** @param {"left" | "lost" | "gave-up"} why */
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
      if (this.reconnect) this.changed();
      else this.set("connecting-peer");
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
      this.listedNow = new Set(); // nothing listed yet on this connection
      this.listedSince = undefined; // its control channel is not open yet
      link.addEventListener("control", (e) => this.onControl(/** @type {CustomEvent} */ (e).detail));
      link.addEventListener("state", (e) => {
        if (this.link !== link) return;
        const { state, reason } = /** @type {CustomEvent} */ (e).detail;
        if (state === "connected") this.onConnected();
        else if (this.reconnect && !this.final) {
          // One attempt at a new connection failed (the network may still be down): the
          // sharer offers again on our next hello, until the deadline.
        } else if (state === "failed" && reason === "lost" && !this.final) {
          this.lost("lost");
        } else if (((state === "failed" && reason === "left") || (state === "closed" && reason !== "local")) && !this.final && this.unfinished()) {
          // The sharer closed or reloaded its page: a reloaded share keeps its link, and
          // downloads continue if the same files are added again in time.
          this.lost("left");
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
    let first = true;
    // A new connection lists everything again: notes start over; files are listed by id, so
    // the same ids replace theirs (a reloaded sharer may number them anew: findFile copes),
    // and a paused download's file stays on screen while the sharer adds it again.
    this.notes = [];
    /** @type {Set<string>} files this connection has listed (the map may hold a reloaded sharer's old ones) */
    this.listedNow = new Set();
    this.listedSince = performance.now();
    this.armUnmatched();
    ch.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const m = parse(ev.data);
      if (first) {
        first = false;
        if (!readHello(m)) {
          // Another protocol version: its blocks and offsets would not mean what ours do.
          this.final = true;
          this.stopReconnecting();
          this.link?.close();
          this.abortAll("left");
          this.set("failed", { code: "version" });
          return;
        }
      }
      const add = readAdd(m);
      if (!add) return;
      for (const f of add.files) {
        this.files.set(f.id, f);
        this.listedNow.add(f.id);
      }
      this.notes.push(...add.notes);
      this.lookForSaved(add.files);
      if (!performance.getEntriesByName("pea:files").length) performance.mark("pea:files");
      this.resumePaused(this.listedNow);
      this.changed();
    };
  }

  onConnected() {
    performance.mark("pea:connected");
    this.reconnected();
    this.set("connected");
    // The new file list may have come first (the link counts as connected only once it
    // knows the pair in use): paused downloads look for their file in it now too, and the
    // wait for their file, armed when the list began, now knows the resume deadline.
    this.resumePaused(this.listedNow);
    if (this.listedSince !== undefined) this.armUnmatched();
  }

  /** Are downloads under way (a reason to wait for the sharer rather than give up at once)? */
  unfinished() {
    return this.active.size > 0;
  }

  /**
   * The direct connection was lost ("lost"), or the sharer's page went away ("left"): pause
   * every download and try to connect again, for a while.
   * @param {"lost" | "left"} why
   */
  lost(why) {
    for (const t of this.active) t.drop();
    for (const s of this.sinks) s.flush().catch(() => {}); // nothing arrives meanwhile: make what came safe (a failure shows on the next write)
    for (const d of this.downloads.values()) if (!d.done && !d.error) d.paused = true;
    const now = performance.now();
    if (!this.reconnect) {
      this.reconnect = {
        why,
        peer: this.sharer,
        since: now,
        deadline: now + resumeMs(),
        timer: setTimeout(() => this.giveUp(), resumeMs()),
        hellos: setInterval(() => this.sharer && this.hello(this.sharer), HELLO_EVERY_MS),
      };
    }
    // The network that dropped the direct link may have left the server connection half-open.
    this.room.checkServer();
    if (this.sharer) this.hello(this.sharer);
    this.set("reconnecting", { why: this.reconnect.why, since: this.reconnect.since, deadline: this.reconnect.deadline });
  }

  stopReconnecting() {
    if (!this.reconnect) return;
    clearTimeout(this.reconnect.timer);
    clearInterval(this.reconnect.hellos);
    this.reconnect = null;
  }

  /** No new connection in time: the paused downloads fail, saying why. */
  giveUp() {
    const left = this.reconnect?.why === "left";
    this.stopReconnecting();
    this.final = true;
    this.link?.close();
    this.abortAll(left ? "left" : "gave-up");
    if (left) this.set("sharer-left");
    else this.set("lost", "gave-up");
  }

  /**
   * A new connection is up: downloads continue once the sharer has listed their files again.
   * A sharer that reloaded its page lists them only when the person has added them again:
   * they may take until the end of the resume window to appear. A reloaded page has a new
   * peer id; the server's word that the old one left may come only after its grace period,
   * and Firefox may call the closed page's link lost rather than closed.
   */
  reconnected() {
    const r = this.reconnect;
    this.matchBy = r && (r.why === "left" || r.away || r.peer !== this.sharer) ? r.deadline : 0;
    this.stopReconnecting();
  }

  /**
   * The entry of the current manifest a paused download continues with: the same id, path,
   * size and modification time, else the same path, size and time (a sharer that reloaded
   * and added the same files again numbers them anew).
   * @param {{id: string, path?: string, size: number, mtime?: number}} want
   * @param {Set<string>} [listed] only files listed here (the map may still hold a reloaded sharer's old ones)
   */
  findFile(want, listed) {
    const same = (f) => f.path === want.path && f.size === want.size && f.mtime === want.mtime && (!listed || listed.has(f.id));
    const byId = this.files.get(want.id);
    if (byId && same(byId)) return byId;
    for (const f of this.files.values()) if (same(f)) return f;
    return null;
  }

  /** @param {Set<string>} [listed] only files listed here (those of the current connection) */
  resumePaused(listed) {
    if (!this.connected) return;
    for (const t of this.active) {
      if (!t.paused) continue;
      const f = this.findFile(t.file, listed);
      if (!f) continue;
      if (t.key !== undefined && t.key !== f.id) {
        this.downloads.set(f.id, this.downloads.get(t.key));
        this.downloads.delete(t.key);
        t.key = f.id;
      }
      t.file = f;
      t.attach(/** @type {PeerLink} */ (this.link).pc);
    }
  }

  /** When paused downloads stop waiting for the new connection to list their file. */
  matchDeadline() {
    return Math.max((this.listedSince ?? 0) + MANIFEST_MS, this.matchBy ?? 0);
  }

  armUnmatched() {
    clearTimeout(this.manifestTimer);
    this.manifestTimer = setTimeout(() => this.unmatched(), Math.max(0, this.matchDeadline() - performance.now()));
  }

  /** Paused downloads whose file the new connection does not list: they cannot resume. */
  unmatched() {
    if (!this.connected) return; // onConnected arms the wait again
    // Armed before the link counted as connected, the wait did not know the resume deadline yet.
    if (this.matchDeadline() > performance.now()) return this.armUnmatched();
    for (const t of this.active) if (t.paused && !this.findFile(t.file, this.listedNow)) t.abort("no-such-file");
  }

  /**
   * Start one file's transfer, counted among the active ones until it ends.
   * @param {any} file @param {(bytes: number) => void} onProgress @param {(at: number) => void} onResumed
   * @param {string} [key] its entry in `downloads`, moved if the file's id changes on a resume
   * @param {import("./transfer/receive.js").SavedPrefix | null} [saved] bytes already on disk
   */
  start(file, onProgress, onResumed, key, saved = null) {
    const t = new Download(file, saved);
    const link = /** @type {PeerLink} */ (this.link);
    let interrupts = 0;
    let verifiedAt = 0;
    t.addEventListener("progress", (e) => {
      onProgress(/** @type {CustomEvent} */ (e).detail.received);
      if (t.verified > verifiedAt) {
        verifiedAt = t.verified;
        interrupts = 0;
      }
    });
    t.key = key;
    t.addEventListener("attached", () => onResumed(t.verified));
    t.addEventListener("interrupted", () => {
      // The sharer closed this download's channel on a connection that is still up: ask again
      // shortly, a few times; if the connection is going, lost() pauses it instead.
      if (++interrupts > MAX_INTERRUPTS) {
        t.abort("vanished");
        return;
      }
      const on = this.link;
      setTimeout(() => {
        // Only on that same connection: a new one (a reloaded sharer page numbers its files
        // anew, and may not list this one yet) continues it through resumePaused.
        if (this.link === on && this.connected && t.paused) t.attach(on.pc);
      }, RETRY_CHANNEL_MS);
    });
    this.active.add(t);
    const forget = () => this.active.delete(t);
    t.done.then(forget, forget);
    return { t, done: t.run(link.pc) };
  }

  track(key, total) {
    const d = { meter: new Meter(total), error: null, done: false, last: 0, paused: false, resumedAt: -1, checking: false };
    this.downloads.set(key, d);
    this.changed();
    return d;
  }

  /** A paused download goes on from `at` (bytes of the whole download): progress and speed count from there. */
  resumed(d, at) {
    if (!d.paused) return;
    d.paused = false;
    d.resumedAt = at;
    d.meter.restart(at);
    this.changed();
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

  /** Is a download of this file (id) under way? */
  busy(id) {
    const d = this.downloads.get(id);
    return !!d && !d.done && !d.error;
  }

  /** Files this share lists that a download into a chosen file had started before a reload. @param {{id: string}[]} files */
  async lookForSaved(files) {
    if (!this.toFile) return;
    for (const f of files) {
      const rec = await findRecord(this.room.id, f);
      if (rec && this.files.get(f.id) === f && !this.busy(f.id)) {
        this.resumable.set(f.id, rec);
        this.changed();
      }
    }
  }

  async download(id) {
    const file = this.files.get(id);
    if (!file || !this.connected || this.busy(id)) return;
    if (this.toFile && worthChoosing(file.size)) {
      // Asked first, while the click still counts as the person's (the browser requires it).
      let handle = null;
      try {
        handle = await /** @type {any} */ (window).showSaveFilePicker({ suggestedName: safeFileName(file.name) });
      } catch (err) {
        if (err?.name === "AbortError") return; // the person closed the dialog
        console.warn("pea: cannot write to a chosen file here, downloading instead:", err?.message || err);
      }
      if (handle) {
        if (!this.connected || this.busy(id)) return;
        this.resumable.delete(id);
        const d = this.track(id, file.size);
        await this.alone(file, d, () => this.saveToFile(file, handle, null, d));
        return;
      }
    }
    const d = this.track(id, file.size);
    /** @type {Download | null} */
    let t = null;
    try {
      const started = this.start(
        file,
        (b) => this.progress(d, b),
        (at) => this.resumed(d, at),
        id,
      );
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

  /**
   * Continue a download saved into a chosen file before this page was reloaded: the bytes on
   * disk are checked block by block against the hashes the sharer announced then, and the
   * sharer is asked for the rest. Runs on a click: the browser may ask the person for
   * permission to write to that file again.
   * @param {string} id
   */
  async continueDownload(id) {
    const file = this.files.get(id);
    const rec = this.resumable.get(id);
    if (!file || !rec || !this.connected || this.busy(id)) return;
    this.resumable.delete(id);
    const d = this.track(id, file.size);
    await this.alone(file, d, () => this.continueSaved(file, rec, d));
  }

  /** @param {any} file @param {import("./resume-store.js").ResumeRecord} rec @param {any} d */
  async continueSaved(file, rec, d) {
    d.checking = true;
    this.changed();
    try {
      const mode = { mode: "readwrite" };
      if ((await rec.handle.queryPermission(mode)) !== "granted" && (await rec.handle.requestPermission(mode)) !== "granted") {
        throw new TransferError("no-permission", { name: file.name });
      }
      const disk = await rec.handle.getFile();
      const read = async (/** @type {number} */ start, /** @type {number} */ end) => new Uint8Array(await disk.slice(start, end).arrayBuffer());
      const { verified, whole } = await savedPrefix(read, disk.size, file.size, rec.hashes);
      d.checking = false;
      await this.saveToFile(file, rec.handle, { verified, whole, hashes: rec.hashes, sha256: rec.sha256 }, d);
    } catch (err) {
      d.checking = false;
      const why = fileError(err, file.name);
      if (!KEEP_RECORD.has(why.code)) await forgetRecord(rec.key);
      this.finish(d, why);
    }
  }

  /**
   * Run `work` (a save into a chosen file) only while no other tab of this browser saves the
   * same file of this share (file-lock.js); otherwise the download fails saying so.
   * @param {any} file @param {any} d @param {() => Promise<void>} work
   */
  async alone(file, d, work) {
    // A browser that refuses the lock here goes unguarded, as one without Web Locks does.
    const release = await holdFile(recordKey(this.room.id, file)).catch(() => () => {});
    if (!release) return this.finish(d, new TransferError("in-use", { name: file.name }));
    try {
      await work();
    } finally {
      release();
    }
  }

  /**
   * Download `file` into the chosen file `handle`, from the bytes already there (`saved`) or
   * from the start; commits are recorded so a reload can continue it.
   * @param {any} file @param {any} handle
   * @param {import("./transfer/receive.js").SavedPrefix | null} saved
   * @param {any} d its entry in `downloads`
   */
  async saveToFile(file, handle, saved, d) {
    const key = recordKey(this.room.id, file);
    const room = this.room.id;
    // A continued download says where it resumed (not one that starts again at 0).
    if (saved?.verified) d.paused = true;
    /** @type {Download | null} */
    let t = null;
    /** @type {SaveFile | null} */
    let sink = null;
    try {
      if (!this.connected) throw new TransferError("vanished", { name: file.name });
      const started = this.start(
        file,
        (b) => this.progress(d, b),
        (at) => this.resumed(d, at),
        file.id,
        saved,
      );
      const run = started.t;
      t = run;
      sink = new SaveFile(handle, {
        onCommit: (committed) =>
          saveRecord({
            key,
            room,
            path: file.path ?? file.name,
            name: file.name,
            size: file.size,
            mtime: file.mtime ?? 0,
            sha256: run.sha256,
            hashes: run.hashes.slice(0, Math.floor(committed / BLOCK)),
            committed,
            updated: Date.now(),
            handle,
          }),
      });
      this.sinks.add(sink);
      await sink.open(saved?.verified ?? 0);
      await Promise.all([sink.drain(run.stream), started.done]);
      await forgetRecord(key);
      this.finish(d);
    } catch (err) {
      t?.cancel();
      await sink?.abort();
      const why = fileError(err, file.name);
      if (!KEEP_RECORD.has(why.code)) await forgetRecord(key);
      this.finish(d, why);
    } finally {
      if (sink) this.sinks.delete(sink);
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
        const { t, done } = self.start(
          f,
          (b) => self.progress(d, before + b),
          (at) => self.resumed(d, before + at),
        );
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

/**
 * A transfer's own error as it is; the browser's (the chosen file cannot be read or written:
 * removed, disk full, permission gone) as "save-failed", with the browser's words.
 * @param {any} err @param {string} name
 */
function fileError(err, name) {
  if (err instanceof TransferError) return err;
  return new TransferError("save-failed", { name, said: String(err?.message || err).slice(0, 300) });
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
