// @ts-check
// One RTCPeerConnection with one remote peer. Roles are fixed, not "perfect
// negotiation": the sharer always offers (it creates the control channel),
// the receiver always answers, so glare cannot happen. Everything this sends
// through the server goes through `send`, which the caller signs.

export const CONNECT_TIMEOUT_MS = 20000;
const PING_MS = 2000; // heartbeat on the control channel…
// A lost connection now costs a resume, not the downloads: notice it soon.
const SILENCE_MS = 8000; // …whose absence this long means the peer is gone (a closed tab sends nothing)
const DISCONNECTED_MS = 4000; // ICE "disconnected" this long counts as lost

export class PeerLink extends EventTarget {
  constructor({ remote, role, iceServers, send, connectTimeoutMs = CONNECT_TIMEOUT_MS }) {
    super();
    this.remote = remote;
    this.role = role;
    this.send = send;
    this.state = "connecting";
    /** @type {RTCDataChannel | null} */
    this.control = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.discTimer = undefined;
    this.heard = performance.now();
    this.pendingCandidates = [];
    this.haveRemote = false;
    this.pc = new RTCPeerConnection({ iceServers: iceServers ?? [] });
    this.pc.onicecandidate = (ev) => {
      // Trickle ICE: each candidate goes out as soon as it is found.
      if (ev.candidate?.candidate) this.send("candidate", JSON.stringify(ev.candidate.toJSON()));
    };
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      clearTimeout(this.discTimer);
      if (s === "failed") this.fail(this.state === "connected" ? "lost" : "ice-failed");
      else if (s === "disconnected" && this.state === "connected") this.discTimer = setTimeout(() => this.pc.connectionState === "disconnected" && this.fail("lost"), DISCONNECTED_MS);
    };
    this.pc.ondatachannel = (ev) => {
      if (ev.channel.label === "control") this.adoptControl(ev.channel);
      else this.emit("datachannel", ev.channel);
    };
    this.timer = setTimeout(() => {
      if (this.state === "connecting") this.fail("timeout");
    }, connectTimeoutMs);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state, reason) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state, reason });
  }

  fail(reason) {
    if (this.state === "failed" || this.state === "closed") return;
    clearTimeout(this.timer);
    clearInterval(this.beat);
    this.setState("failed", reason);
    this.close(false);
  }

  adoptControl(ch) {
    this.control = ch;
    ch.onopen = () => {
      clearTimeout(this.timer);
      this.heard = performance.now();
      this.beat = setInterval(() => this.heartbeat(), PING_MS);
      this.setState("connected");
      this.emit("control", ch);
    };
    ch.onclose = () => {
      clearInterval(this.beat);
      if (this.state !== "connected") return;
      // A peer that closes its page closes the channel over a live path; a channel that dies
      // with the path (the browser gave up on the association) is a lost connection.
      const ice = this.pc.iceConnectionState;
      if (ice === "connected" || ice === "completed") this.setState("closed", "channel-closed");
      else this.fail("lost");
    };
    ch.addEventListener("message", (ev) => {
      this.heard = performance.now();
      if (typeof ev.data !== "string" || ev.data.length > 64) return;
      if (ev.data === '{"t":"ping"}') this.sendControl({ t: "pong" });
      else if (ev.data === '{"t":"pong"}') this.onPong?.();
    });
    if (ch.readyState === "open") ch.onopen();
  }

  sendControl(obj) {
    if (this.control?.readyState === "open") this.control.send(JSON.stringify(obj));
  }

  heartbeat() {
    if (performance.now() - this.heard > SILENCE_MS) this.fail("lost");
    else this.sendControl({ t: "ping" });
  }

  /** Does the peer still answer directly? (The server said it left: check before believing it.) */
  probe(timeoutMs = 3000) {
    if (this.state !== "connected") return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.onPong = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.sendControl({ t: "ping" });
    });
  }

  get maxMessageSize() {
    return this.pc.sctp?.maxMessageSize || 65536;
  }

  async startOffer() {
    this.adoptControl(this.pc.createDataChannel("control", { ordered: true }));
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.send("offer", /** @type {RTCSessionDescription} */ (this.pc.localDescription).sdp);
  }

  async handle(kind, payload) {
    if (this.state === "failed" || this.state === "closed") return;
    if (kind === "offer" && this.role === "answerer") {
      await this.pc.setRemoteDescription({ type: "offer", sdp: payload });
      await this.flushCandidates();
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      this.send("answer", /** @type {RTCSessionDescription} */ (this.pc.localDescription).sdp);
    } else if (kind === "answer" && this.role === "offerer") {
      await this.pc.setRemoteDescription({ type: "answer", sdp: payload });
      await this.flushCandidates();
    } else if (kind === "candidate") {
      let cand;
      try {
        cand = JSON.parse(payload);
      } catch {
        return;
      }
      if (this.haveRemote) await this.addCandidate(cand);
      else this.pendingCandidates.push(cand);
    }
  }

  async flushCandidates() {
    this.haveRemote = true;
    for (const c of this.pendingCandidates.splice(0)) await this.addCandidate(c);
  }

  async addCandidate(c) {
    try {
      await this.pc.addIceCandidate(c);
    } catch {
      // A candidate we cannot use (other address family, stale generation) is not an error.
    }
  }

  close(markClosed = true) {
    clearTimeout(this.timer);
    clearTimeout(this.discTimer);
    clearInterval(this.beat);
    if (markClosed && this.state !== "failed") this.setState("closed", "local");
    try {
      this.pc.close();
    } catch {}
  }
}
