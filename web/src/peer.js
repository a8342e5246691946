// @ts-check
// One RTCPeerConnection with one remote peer. Roles are fixed, not "perfect
// negotiation": the sharer always offers (it creates the control channel),
// the receiver always answers, so glare cannot happen. Everything this sends
// through the server goes through `send`, which the caller signs.
//
// It also keeps what a person needs to tell why a connection did or did not
// come up (candidate types found on each side, the pair in use; never an
// address), and reports the outcome once through `report`.

export const CONNECT_TIMEOUT_MS = 20000;
const PING_MS = 2000; // heartbeat on the control channel…
// A lost connection now costs a resume, not the downloads: notice it soon.
const SILENCE_MS = 8000; // …whose absence this long means the peer is gone (a closed tab sends nothing)
const DISCONNECTED_MS = 4000; // ICE "disconnected" this long counts as lost
const STATS_MS = 1000; // reading the pair in use may not hold up the connection longer
export const CANDIDATE_TYPES = ["host", "srflx", "prflx", "relay"];
const BEST_FIRST = ["relay", "srflx", "prflx", "host"];

/** The ICE type of a candidate line ("… typ srflx raddr …"), or null. */
export function candidateType(line) {
  const m = /\btyp (host|srflx|prflx|relay)\b/.exec(typeof line === "string" ? line : "");
  return m ? m[1] : null;
}

/** The best type among those counted (relay > srflx > prflx > host), or "none". */
function best(counts) {
  return BEST_FIRST.find((t) => counts[t] > 0) ?? "none";
}

/** STUN and TURN servers, minus every TURN URL when relaying is forbidden. */
export function serversFor(iceServers, relay) {
  const servers = Array.isArray(iceServers) ? iceServers : [];
  if (relay !== "forbidden") return servers;
  return servers.map((s) => ({ ...s, urls: [s.urls].flat().filter((u) => typeof u === "string" && !/^turns?:/i.test(u)) })).filter((s) => s.urls.length > 0);
}

export class PeerLink extends EventTarget {
  /**
   * relay: the server's policy ("on", "off", "forbidden": relay candidates are dropped both ways);
   * report: gets the protocol's `outcome` fields once, when this link connects or fails.
   */
  constructor({ remote, role, iceServers, send, relay = "off", report = (/** @type {object} */ _o) => {}, connectTimeoutMs = CONNECT_TIMEOUT_MS }) {
    super();
    this.remote = remote;
    this.role = role;
    this.send = send;
    this.relay = relay;
    this.report = report;
    this.reported = false;
    /** Candidate types found here and received from the peer, counted. */
    this.found = { local: { host: 0, srflx: 0, prflx: 0, relay: 0 }, remote: { host: 0, srflx: 0, prflx: 0, relay: 0 } };
    /** @type {{local: string, remote: string, protocol: string} | null} the pair in use once connected */
    this.path = null;
    /** @type {string | null} why it failed */
    this.failure = null;
    this.state = "connecting";
    /** @type {RTCDataChannel | null} */
    this.control = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.discTimer = undefined;
    this.heard = performance.now();
    this.pendingCandidates = [];
    this.haveRemote = false;
    this.pc = new RTCPeerConnection({ iceServers: serversFor(iceServers, relay) });
    this.pc.onicecandidate = (ev) => {
      // Trickle ICE: each candidate goes out as soon as it is found.
      if (!ev.candidate?.candidate) return;
      const type = candidateType(ev.candidate.candidate);
      if (type === "relay" && relay === "forbidden") return;
      if (type) this.found.local[type]++;
      this.send("candidate", JSON.stringify(ev.candidate.toJSON()));
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
    if (reason === "ice-failed" || reason === "timeout") {
      this.failure = reason;
      this.tell({ result: "failed", local: best(this.found.local), remote: best(this.found.remote), reason });
    }
    clearTimeout(this.timer);
    clearInterval(this.beat);
    this.setState("failed", reason);
    this.close(false);
  }

  tell(outcome) {
    if (this.reported) return;
    this.reported = true;
    try {
      this.report(outcome);
    } catch {}
  }

  /** Which candidate pair carries the connection, from the browser's stats (bounded). */
  async readPath() {
    const stats = await Promise.race([this.pc.getStats(), new Promise((resolve) => setTimeout(() => resolve(null), STATS_MS))]).catch(() => null);
    if (!stats) return null;
    const all = [...stats.values()];
    const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
    const pair = transport ? stats.get(transport.selectedCandidatePairId) : all.find((s) => s.type === "candidate-pair" && (s.selected || (s.nominated && s.state === "succeeded")));
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    if (!local || !remote || !CANDIDATE_TYPES.includes(local.candidateType) || !CANDIDATE_TYPES.includes(remote.candidateType)) return null;
    return { local: local.candidateType, remote: remote.candidateType, protocol: String(local.relayProtocol || local.protocol || "udp") };
  }

  /** Data goes through a TURN relay (still end-to-end encrypted: DTLS). */
  get relayed() {
    return this.path?.local === "relay" || this.path?.remote === "relay";
  }

  adoptControl(ch) {
    this.control = ch;
    ch.onopen = async () => {
      clearTimeout(this.timer);
      this.heard = performance.now();
      this.beat = setInterval(() => this.heartbeat(), PING_MS);
      // At once: the peer may already be sending on the channel.
      this.emit("control", ch);
      // "connected" waits (a moment, bounded) for the pair in use, so whoever shows it can say how.
      this.path = await this.readPath();
      if (this.state !== "connecting") return;
      if (this.path) this.tell({ result: "connected", local: this.path.local, remote: this.path.remote });
      this.setState("connected");
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
      const type = candidateType(cand?.candidate);
      if (type === "relay" && this.relay === "forbidden") return;
      if (type) this.found.remote[type]++;
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
