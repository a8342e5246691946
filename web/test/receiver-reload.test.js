// @ts-check
// A paused download after the sharer reloaded its page: the receiver still holds the old
// page's file list, and must continue only with a file the new connection lists (an old
// entry would send a request the reloaded page refuses, failing the download for good).
import assert from "node:assert/strict";
import { test } from "node:test";
import { VERSION } from "../src/transfer/protocol.js";
import { Receiver } from "../src/receiver.js";
import { FakePC } from "./fake-sharer.js";

const OLD = { id: "f1", name: "again.bin", path: "again.bin", size: 24 << 20, type: "", mtime: 1700000000000 };

function setup() {
  const room = { id: "room", on() {}, send() {}, checkServer() {} };
  const r = new Receiver(room);
  r.files.set(OLD.id, OLD); // listed by the page before its reload
  /** @type {any[]} */
  const attached = [];
  /** @type {string[]} */
  const aborted = [];
  const t = { paused: true, file: OLD, key: OLD.id, drop() {}, attach: () => attached.push(t.file), abort: (/** @type {string} */ why) => aborted.push(why) };
  r.active.add(t);
  r.downloads.set(OLD.id, { paused: true });
  r.link = /** @type {any} */ ({ state: "connected", pc: {} });
  /** @type {any} */
  const ch = { onmessage: null };
  r.onControl(ch);
  const deliver = (/** @type {any} */ m) => ch.onmessage({ data: JSON.stringify(m) });
  deliver({ t: "hello", v: VERSION, app: "pea-web" });
  return { r, t, attached, aborted, deliver };
}

/** The first wait for the file list (5 s) is over. */
function listWaitOver(/** @type {any} */ r) {
  r.listedSince = performance.now() - 5001;
}

test("a reloaded sharer's empty list leaves the download paused, not asking for the old file", () => {
  const { r, attached, aborted, deliver } = setup();
  deliver({ t: "add", files: [], notes: [{ id: "n", text: "hi" }] });
  assert.deepEqual(attached, []);
  listWaitOver(r);
  r.unmatched(); // the wait for the file ran out: the new page does not offer it
  assert.deepEqual(aborted, ["no-such-file"]);
  clearTimeout(r.manifestTimer);
});

test("the same file added again (a new id) continues the paused download under that id", () => {
  const { r, t, attached, aborted, deliver } = setup();
  const again = { ...OLD, id: "f7" };
  deliver({ t: "add", files: [again], notes: [] });
  assert.equal(attached.length, 1);
  assert.equal(attached[0].id, "f7");
  assert.equal(t.key, "f7");
  assert.ok(r.downloads.has("f7") && !r.downloads.has("f1"));
  listWaitOver(r);
  r.unmatched();
  assert.deepEqual(aborted, []);
  clearTimeout(r.manifestTimer);
});

test("another file under the old id is not taken for the paused one", () => {
  const { attached, r, deliver } = setup();
  deliver({ t: "add", files: [{ ...OLD, size: OLD.size + 1 }], notes: [] });
  assert.deepEqual(attached, []);
  clearTimeout(r.manifestTimer);
});

test("a connection with a new sharer page (another peer id) waits for the file until the resume deadline, even after a 'lost' link", () => {
  const room = { id: "room", on() {}, send() {}, checkServer() {} };
  const r = new Receiver(room);
  for (const { sharer, wait } of [
    { sharer: "p-old", wait: false },
    { sharer: "p-new", wait: true },
  ]) {
    r.sharer = "p-old";
    r.lost("lost");
    const deadline = /** @type {any} */ (r.reconnect).deadline;
    r.sharer = sharer; // the offer of the new connection came from this peer
    r.reconnected();
    assert.equal(r.matchBy, wait ? deadline : 0, sharer);
    assert.equal(r.reconnect, null);
  }
});

test("a control channel that opens before the link counts as connected still waits for the file until the resume deadline", () => {
  const { r, aborted } = setup(); // connected: only to build the paused download
  r.sharer = "p-old";
  r.lost("left"); // the sharer's page reloaded
  r.sharer = "p-new";
  /** @type {any} */
  const link = { state: "connecting", pc: {}, close() {} };
  r.link = link;
  r.listedSince = undefined;
  r.onControl(/** @type {any} */ ({ onmessage: null })); // Firefox: the channel opens first
  link.state = "connected";
  r.onConnected();
  assert.ok((r.matchBy ?? 0) > performance.now() + 5000, "the resume deadline is the wait's end");
  listWaitOver(r);
  r.unmatched(); // the 5 s timer armed when the channel opened
  assert.deepEqual(aborted, [], "not failed while the person may still add the file again");
  r.matchBy = 0; // the resume window is over too
  r.unmatched();
  assert.deepEqual(aborted, ["no-such-file"]);
  clearTimeout(r.manifestTimer);
});

test("a get channel closed as the sharer's page reloads is asked again only on that same connection", async () => {
  const room = { id: "room", on() {}, send() {}, checkServer() {} };
  const r = new Receiver(room);
  r.files.set(OLD.id, OLD);
  const oldPage = new FakePC();
  r.link = /** @type {any} */ ({ state: "connected", pc: oldPage });
  const nothing = () => {};
  const { t, done } = r.start(OLD, nothing, nothing, OLD.id);
  done.catch(() => {});
  for (let i = 0; i < 100 && !oldPage.channels.length; i++) await new Promise((ok) => setTimeout(ok, 10));
  assert.equal(oldPage.channels.length, 1);
  oldPage.channels[0].onclose(); // the page closed it: interrupted, asked again in 1 s…
  const newPage = new FakePC();
  r.link = /** @type {any} */ ({ state: "connected", pc: newPage }); // …but the page reloaded meanwhile
  await new Promise((ok) => setTimeout(ok, 1200));
  assert.equal(newPage.channels.length, 0, "no get for a file the reloaded page has not listed");
  assert.ok(t.paused, "still paused: resumePaused continues it once the file is listed again");
  t.abort("cancelled");
});
