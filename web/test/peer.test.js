// @ts-check
// What PeerLink keeps and tells about ICE (src/peer.js), against a stand-in RTCPeerConnection:
// the relay policy both ways, and the one outcome it reports.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PeerLink, candidateType, serversFor } from "../src/peer.js";

class FakePeerConnection {
  /** @param {any} config */
  constructor(config) {
    this.config = config;
    /** @type {any[]} */
    this.added = [];
    this.connectionState = "new";
    /** @type {any} */
    this.onicecandidate = null;
  }
  async addIceCandidate(c) {
    this.added.push(c);
  }
  async setRemoteDescription() {}
  close() {}
}
// @ts-expect-error: a stand-in for the browser's
globalThis.RTCPeerConnection = FakePeerConnection;

const line = (type) => `candidate:1 1 udp 2122260223 192.0.2.2 54321 typ ${type} generation 0`;
const found = (type) => ({ candidate: { candidate: line(type), toJSON: () => ({ candidate: line(type), sdpMid: "0" }) } });

function link(relay) {
  /** @type {{kind: string, payload: string}[]} */
  const sent = [];
  /** @type {any[]} */
  const reports = [];
  const l = new PeerLink({
    remote: "p",
    role: "answerer",
    iceServers: [{ urls: ["stun:s.example", "turn:t.example"], username: "u", credential: "c" }],
    relay,
    send: (kind, payload) => sent.push({ kind, payload }),
    report: (o) => reports.push(o),
  });
  return { l, sent, reports, pc: /** @type {any} */ (l.pc) };
}

test("candidate types are read from candidate lines, and nothing else", () => {
  assert.equal(candidateType(line("srflx")), "srflx");
  assert.equal(candidateType(line("relay")), "relay");
  assert.equal(candidateType("candidate:1 1 udp 1 x.local 1 typ host"), "host");
  assert.equal(candidateType("typ banana"), null);
  assert.equal(candidateType(undefined), null);
});

test("forbidding relay removes every TURN URL and keeps STUN", () => {
  const servers = [{ urls: ["stun:s.example", "turn:t.example", "TURNS:t.example"] }, { urls: "turn:only.example" }];
  assert.deepEqual(serversFor(servers, "forbidden"), [{ urls: ["stun:s.example"] }]);
  assert.equal(serversFor(servers, "on"), servers);
});

test("with relay forbidden, relay candidates go neither out nor in", async () => {
  const { l, sent, pc } = link("forbidden");
  assert.deepEqual(pc.config.iceServers, [{ urls: ["stun:s.example"], username: "u", credential: "c" }]);
  pc.onicecandidate(found("relay"));
  pc.onicecandidate(found("srflx"));
  assert.deepEqual(
    sent.map((s) => candidateType(JSON.parse(s.payload).candidate)),
    ["srflx"],
  );
  await l.flushCandidates();
  await l.handle("candidate", JSON.stringify({ candidate: line("relay") }));
  await l.handle("candidate", JSON.stringify({ candidate: line("host") }));
  assert.deepEqual(
    pc.added.map((c) => candidateType(c.candidate)),
    ["host"],
  );
  l.close();
});

test("a failed attempt is reported once, with the best candidate type of each side", async () => {
  const { l, reports, pc } = link("on");
  pc.onicecandidate(found("host"));
  pc.onicecandidate(found("srflx"));
  await l.handle("candidate", JSON.stringify({ candidate: line("host") }));
  l.fail("ice-failed");
  l.fail("timeout");
  assert.deepEqual(reports, [{ result: "failed", local: "srflx", remote: "host", reason: "ice-failed" }]);
  assert.equal(l.failure, "ice-failed");
});

test("losing a link that was never reported as failed reports nothing", () => {
  const { l, reports } = link("off");
  l.fail("lost");
  assert.deepEqual(reports, []);
});
