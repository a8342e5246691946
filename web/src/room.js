// @ts-check
// A room membership whose peer-to-peer messages are sealed and judged by
// SignalAuth: the only place that turns server frames into trusted messages,
// or into "tampered" (altered on the way), "impostor" (a link holder posing as
// the sharer) or a refused replay (logged and counted, nothing else).
import { SignalAuth } from "./auth.js";
import { Signaling, signalingUrl } from "./signaling.js";

export class Room extends EventTarget {
  /** share: {secret, commit} for a receiver; plus {secretKey, publicKey} for the sharer. */
  constructor(share) {
    super();
    this.auth = new SignalAuth(share);
    this.id = this.auth.room;
    this.refused = { replay: 0 };
    this.sig = new Signaling({ url: signalingUrl(), room: this.id });
    for (const type of ["state", "welcome", "peer-joined", "peer-left", "server-error"]) this.sig.addEventListener(type, (e) => this.emit(type, /** @type {CustomEvent} */ (e).detail));
    this.sig.addEventListener("signal", (e) => this.onSignal(/** @type {CustomEvent} */ (e).detail));
  }

  onSignal({ from, data }) {
    const r = this.auth.open(data, from, this.sig.peer);
    if (r.ok) this.emit("message", { from, kind: r.kind, payload: r.payload });
    else if (r.why === "impostor") this.emit("impostor", { from, kind: r.kind });
    else if (r.why === "replay") {
      this.refused.replay++;
      console.warn(`pea: refused a replayed or reordered ${r.kind} from peer ${from} (${this.refused.replay} so far)`);
    } else this.emit("tampered", { from, kind: r.kind, why: r.why, claimsSharer: r.claimsSharer });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, fn) {
    this.addEventListener(type, (e) => fn(/** @type {CustomEvent} */ (e).detail));
  }

  get config() {
    return this.sig.config ?? {};
  }

  get iceServers() {
    return Array.isArray(this.config.ice_servers) ? this.config.ice_servers : [];
  }

  start() {
    this.sig.start();
  }

  /** Make sure the server connection is alive (a network change can leave it half-open). */
  checkServer() {
    this.sig.checkAlive();
  }

  send(to, kind, payload) {
    this.sig.signal(to, this.auth.seal(kind, this.sig.peer, to, payload));
  }
}
