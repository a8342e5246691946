// @ts-check
// WebSocket client of the signalling protocol v1.1 (docs/protocol.md). Keeps one membership in one room alive
// across lost connections (backoff, `reconnect`, `resume`), and reports its
// state as events the UI can put into words.
import { ERRORS } from "./errors.gen.js";
import { sleep } from "./util.js";

const CLOSE_RECONNECT = 4000; // not 1000/1001: those mean "I left" to the server
const PING_EVERY_MS = 15000;
const PONG_TIMEOUT_MS = 10000;
const CHECK_TIMEOUT_MS = 4000; // an explicit liveness check (after a lost direct link) waits this long

export class Signaling extends EventTarget {
  /** @param {{url: string, room: string, name?: string}} options */
  constructor({ url, room, name }) {
    super();
    this.url = url;
    this.room = room;
    this.name = name;
    this.ws = null;
    this.peer = null;
    this.resume = null;
    this.config = null;
    this.state = "idle";
    this.attempt = 0;
    this.stopped = false;
    this.queue = []; // signals sent while not joined, flushed if our peer id survives
    this.lastSeen = 0;
    this.checking = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state, detail = {}) {
    this.state = state;
    this.emit("state", { state, ...detail });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pinger);
    if (this.ws && this.ws.readyState <= 1) {
      try {
        this.ws.send(JSON.stringify({ type: "leave" }));
      } catch {}
      this.ws.close(1000, "bye");
    }
    this.setState("stopped");
  }

  connect() {
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry("no-socket", undefined, String(err));
      return;
    }
    this.ws = ws;
    this.lastSeen = Date.now();
    ws.onopen = () => {
      performance.mark("pea:ws-open");
      const join = { type: "join", room: this.room };
      if (this.name) join.name = this.name;
      if (this.resume) join.resume = this.resume;
      ws.send(JSON.stringify(join));
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (Date.now() - this.lastSeen > PING_EVERY_MS + PONG_TIMEOUT_MS) {
          ws.close(CLOSE_RECONNECT, "no answer"); // half-open connection: start over
          return;
        }
        if (ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
    };
    ws.onmessage = (ev) => {
      this.lastSeen = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg && typeof msg.type === "string") this.handle(ws, msg);
    };
    ws.onclose = (ev) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.scheduleRetry(ev.code === ERRORS.unavailable.close ? "unavailable" : "lost");
    };
  }

  /**
   * @param {"unavailable" | "lost" | "moved" | "no-socket"} reason a code: the views have the sentences
   * @param {number} [delay] @param {string} [message] the browser's own words, for "no-socket"
   */
  async scheduleRetry(reason, delay, message) {
    if (this.stopped) return;
    this.attempt++;
    // 0.5 s, 1 s, 2 s … capped at 15 s, with jitter so a restarted node is not stampeded.
    const base = delay ?? Math.min(15000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const wait = delay ?? Math.round(base * (0.75 + Math.random() * 0.5));
    this.setState("offline", { reason, message, retryInMs: wait, attempt: this.attempt });
    await sleep(wait);
    this.connect();
  }

  handle(ws, msg) {
    switch (msg.type) {
      case "welcome": {
        const same = this.peer !== null && msg.peer === this.peer;
        const first = this.peer === null;
        this.peer = msg.peer;
        this.resume = msg.resume ?? null;
        this.config = msg.config ?? {};
        this.attempt = 0;
        this.setState("joined");
        const queued = same ? this.queue : [];
        this.queue = [];
        for (const q of queued) this.rawSignal(q.to, q.data);
        this.emit("welcome", { peer: msg.peer, peers: msg.peers ?? [], resumed: same, first, config: this.config });
        break;
      }
      case "peer-joined":
        this.emit("peer-joined", { peer: msg.peer, name: msg.name });
        break;
      case "peer-left":
        this.emit("peer-left", { peer: msg.peer });
        break;
      case "signal":
        this.emit("signal", { from: msg.from, data: msg.data });
        break;
      case "reconnect":
        // The node is draining: go elsewhere now, keeping our seat with `resume`.
        this.ws = null;
        ws.close(CLOSE_RECONNECT, "reconnect");
        this.scheduleRetry("moved", Math.max(0, msg.after_ms ?? 0));
        break;
      case "error":
        this.emit("server-error", { code: msg.code, message: msg.message, ref: msg.ref });
        if (ERRORS[msg.code]?.final) {
          this.stopped = true;
          ws.close(1000);
          this.setState("refused", { code: msg.code, message: msg.message });
        }
        break;
      default:
        break;
    }
  }

  /**
   * Ping now and start over if nothing comes back soon: after the network changed, a
   * connection can look open for long without carrying anything.
   */
  checkAlive(timeoutMs = CHECK_TIMEOUT_MS) {
    const ws = this.ws;
    if (ws?.readyState !== 1 || this.checking) return;
    this.checking = true;
    const asked = Date.now();
    ws.send(JSON.stringify({ type: "ping" }));
    setTimeout(() => {
      this.checking = false;
      if (this.ws !== ws || this.lastSeen >= asked) return;
      // Forget it at once: a close handshake over a dead path can take long.
      this.ws = null;
      clearInterval(this.pinger);
      ws.close(CLOSE_RECONNECT, "no answer");
      this.scheduleRetry("lost");
    }, timeoutMs);
  }

  /** Report how a direct connection ended (protocol 1.1+; an older node would call it bad-message). */
  outcome(report) {
    const minor = /^1\.(\d+)$/.exec(String(this.config?.protocol ?? ""));
    if (!minor || Number(minor[1]) < 1) return;
    if (this.ws && this.ws.readyState === 1 && this.state === "joined") this.ws.send(JSON.stringify({ type: "outcome", ...report }));
  }

  rawSignal(to, data) {
    this.ws.send(JSON.stringify({ type: "signal", to, data }));
  }

  signal(to, data) {
    if (this.ws && this.ws.readyState === 1 && this.state === "joined") this.rawSignal(to, data);
    else this.queue.push({ to, data });
  }
}

export function signalingUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}
