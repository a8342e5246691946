// The screen wake lock: asked for when a transfer starts, released when it ends, asked for
// again when the page comes back into view, and nothing asked of a browser without it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { StayAwake } from "../src/wake.js";

function fakes() {
  const calls = [];
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const nav = {
    wakeLock: {
      request: async (type) => {
        calls.push(`request:${type}`);
        const s = /** @type {EventTarget & {release?: () => Promise<void>}} */ (new EventTarget());
        s.release = async () => {
          calls.push("release");
          s.dispatchEvent(new Event("release"));
        };
        return s;
      },
    },
  };
  return { calls, doc, nav };
}
const settle = () => new Promise((r) => setTimeout(r, 0));

test("held while a transfer runs, released when it ends, once each however often asked", async () => {
  const { calls, doc, nav } = fakes();
  const awake = new StayAwake(nav, doc);
  assert.equal(awake.supported, true);
  awake.want(true);
  awake.want(true);
  await settle();
  assert.deepEqual(calls, ["request:screen"]);
  awake.want(false);
  awake.want(false);
  await settle();
  assert.deepEqual(calls, ["request:screen", "release"]);
});

test("a transfer that ends while the browser decides still lets go", async () => {
  const { calls, doc, nav } = fakes();
  const awake = new StayAwake(nav, doc);
  awake.want(true);
  awake.want(false);
  await settle();
  assert.deepEqual(calls, ["request:screen", "release"]);
});

test("asked again when the page is visible again (the browser drops it when hidden)", async () => {
  const { calls, doc, nav } = fakes();
  const awake = new StayAwake(nav, doc);
  awake.want(true);
  await settle();
  await awake.sentinel.release(); // what the browser does when the page is hidden
  doc.dispatchEvent(new Event("visibilitychange"));
  await settle();
  assert.deepEqual(calls, ["request:screen", "release", "request:screen"]);
});

test("a browser without the API is asked nothing and reported unsupported", async () => {
  const { doc } = fakes();
  const awake = new StayAwake({}, doc);
  assert.equal(awake.supported, false);
  awake.want(true);
  await settle();
  assert.equal(awake.sentinel, null);
});
