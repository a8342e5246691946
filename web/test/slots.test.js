// @ts-check
// A receiver cannot make the sharer run (and buffer for) more than a few uploads at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Slots } from "../src/transfer/slots.js";

test("at most `active` run, `waiting` wait, the rest are refused", async () => {
  const slots = new Slots(2, 3);
  const running = [await slots.acquire(), await slots.acquire()];
  const waiting = [slots.acquire(), slots.acquire(), slots.acquire()];
  assert.ok(waiting.every((w) => w instanceof Promise));
  assert.equal(slots.acquire(), null, "a sixth upload is refused while five are in");
  let started = 0;
  for (const w of waiting) w?.then(() => started++);
  await Promise.resolve();
  assert.equal(started, 0, "nobody waiting starts while both slots are taken");
  running[0]?.();
  running[0]?.(); // releasing twice frees one slot only
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(started, 1);
  assert.equal(slots.running, 2);
});

test("slots come back when uploads end", async () => {
  const slots = new Slots(1, 0);
  const release = await slots.acquire();
  assert.equal(slots.acquire(), null);
  release?.();
  assert.ok(slots.acquire() instanceof Promise);
});
