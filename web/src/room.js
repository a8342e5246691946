// A room membership whose peer-to-peer messages are signed: the only place
// that turns server frames into trusted messages (or into "tampered").
import { Signer, deriveKeys } from "./auth.js";
import { Signaling, signalingUrl } from "./signaling.js";

export class Room extends EventTarget {
  static async open(secret) {
    const { room, key } = await deriveKeys(secret);
    return new Room(room, await Signer.create(key));
  }

  constructor(room, signer) {
    super();
    this.id = room;
    this.signer = signer;
    this.sig = new Signaling({ url: signalingUrl(), room });
    for (const type of ["state", "welcome", "peer-joined", "peer-left", "server-error"])
      this.sig.addEventListener(type, (e) => this.emit(type, e.detail));
    this.sig.addEventListener("signal", (e) => {
      const { from, data } = e.detail;
      const payload = this.signer.open(data, from, this.sig.peer);
      if (payload === null) this.emit("tampered", { from, kind: typeof data?.kind === "string" ? data.kind : "?" });
      else this.emit("message", { from, kind: data.kind, payload });
    });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, fn) {
    this.addEventListener(type, (e) => fn(e.detail));
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

  send(to, kind, payload) {
    this.sig.signal(to, this.signer.seal(kind, this.sig.peer, to, payload));
  }
}
