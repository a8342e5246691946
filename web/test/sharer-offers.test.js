// @ts-check
// One offer per receiver's connection attempt: the sharer offers on `peer-joined` and on a
// `hello` from a peer it has no connection with. A hello that overtook its peer-joined
// must not bring a second offer: its answer would cross the first's, and neither
// connection would ever be made.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Sharer } from "../src/sharer.js";

class FakePeerConnection {
  constructor() {
    this.connectionState = "new";
    /** @type {any} */
    this.localDescription = null;
  }
  createDataChannel() {
    return Object.assign(new EventTarget(), { readyState: "connecting", close() {} });
  }
  async createOffer() {
    return { type: "offer", sdp: `v=0 offer ${++offers}` };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
  }
  close() {}
}
let offers = 0;
// @ts-expect-error: a stand-in for the browser's
globalThis.RTCPeerConnection = FakePeerConnection;

function sharerInRoom() {
  /** @type {Record<string, (e: any) => void>} */
  const on = {};
  /** @type {{to: string, kind: string}[]} */
  const sent = [];
  const room = {
    on: (/** @type {string} */ type, /** @type {(e: any) => void} */ fn) => (on[type] = fn),
    send: (/** @type {string} */ to, /** @type {string} */ kind) => sent.push({ to, kind }),
    linkOptions: () => ({ iceServers: [] }),
  };
  const sharer = new Sharer(room);
  const offered = async () => {
    await new Promise((r) => setTimeout(r, 10));
    return sent.filter((s) => s.kind === "offer").map((s) => s.to);
  };
  const done = () => {
    for (const r of sharer.receivers.values()) r.link.close();
  };
  return { on, sharer, offered, done };
}

test("a peer-joined and then the newcomer's hello: one offer", async () => {
  const { on, offered, done } = sharerInRoom();
  on["peer-joined"]({ peer: "r1" });
  on.message({ from: "r1", kind: "hello", payload: "receiver" });
  assert.deepEqual(await offered(), ["r1"]);
  done();
});

test("a hello that overtook its peer-joined: still one offer", async () => {
  const { on, sharer, offered, done } = sharerInRoom();
  on.message({ from: "r1", kind: "hello", payload: "receiver" });
  const link = sharer.receivers.get("r1").link;
  on["peer-joined"]({ peer: "r1" });
  assert.deepEqual(await offered(), ["r1"]);
  assert.equal(sharer.receivers.get("r1").link, link, "the first connection attempt is kept");
  done();
});

test("after a failed attempt, the receiver's hello gets a new offer", async () => {
  const { on, sharer, offered, done } = sharerInRoom();
  on["peer-joined"]({ peer: "r1" });
  sharer.receivers.get("r1").link.fail("timeout");
  assert.equal(sharer.receivers.get("r1").state, "failed");
  on.message({ from: "r1", kind: "hello", payload: "receiver" });
  assert.deepEqual(await offered(), ["r1", "r1"]);
  done();
});
