// @ts-check
// The control channel's framing, as both sides use it (src/transfer/manifest.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MANIFEST_BATCH, addMessages, helloMessage, readAdd, readHello } from "../src/transfer/manifest.js";

const entry = (i) => ({ id: String(i), name: `f${i}.txt`, path: `dir/f${i}.txt`, size: i, type: "text/plain", mtime: 1732400000000 });

test("the sharer's hello is the documented one", () => {
  assert.deepEqual(helloMessage(), { t: "hello", v: 3, app: "pea-web" });
});

test("a receiver accepts only a version-3 hello (a version-2 sharer said v: 1)", () => {
  assert.equal(readHello(helloMessage()), true);
  for (const m of [{ t: "hello", v: 1, app: "pea-web" }, { t: "hello", v: 2 }, { t: "hello", v: "3" }, { t: "add", files: [] }, null]) assert.equal(readHello(m), false, JSON.stringify(m));
});

test("a large share goes in batches of at most MANIFEST_BATCH entries, files then notes, and reads back whole", () => {
  const files = Array.from({ length: 2 * MANIFEST_BATCH + 7 }, (_, i) => ({ ...entry(i), file: "not sent", sha256: "not sent" }));
  const notes = [{ id: "n1", text: "hello" }];
  const messages = addMessages({ files, notes });
  assert.equal(messages.length, 4);
  for (const m of messages) assert.ok(m.files.length + m.notes.length <= MANIFEST_BATCH);
  assert.deepEqual(messages[3], { t: "add", files: [], notes });
  // Only the documented fields go on the wire, never the File or anything else.
  assert.deepEqual(Object.keys(messages[0].files[0]).sort(), ["id", "mtime", "name", "path", "size", "type"]);
  const read = messages.map((m) => readAdd(JSON.parse(JSON.stringify(m))));
  assert.deepEqual(
    read.flatMap((r) => r?.files ?? []),
    files.map((_, i) => entry(i)),
  );
  assert.deepEqual(
    read.flatMap((r) => r?.notes ?? []),
    notes,
  );
});

test("the receiver drops each malformed entry, keeps the rest, and ignores other messages", () => {
  assert.equal(readAdd({ t: "hello" }), null);
  assert.equal(readAdd(null), null);
  const got = readAdd({
    t: "add",
    files: [null, { id: 1, name: "x", size: 1 }, { id: "a", name: "ok", size: -1 }, { id: "b", name: "big", size: 2 ** 60 }, { id: "c", name: "c.txt", size: 3, path: 7, type: {}, mtime: "soon" }],
    notes: [{ id: 5, text: "kept" }, { id: "x" }, "text"],
  });
  assert.equal(got?.files.length, 1);
  const f = got?.files[0];
  assert.equal(f?.path, "c.txt"); // a path that is not a string falls back to the name
  assert.equal(f?.type, "");
  assert.ok(Number.isFinite(f?.mtime));
  assert.deepEqual(got?.notes, [{ id: "5", text: "kept" }]);
  assert.deepEqual(readAdd({ t: "add", files: "many", notes: {} }), { files: [], notes: [] });
});
