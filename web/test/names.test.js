// @ts-check
// Names from a sharer's manifest are hostile: what they become on disk, in a zip and on screen.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FALLBACK_MIME, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, ZipNames, downloadHeaders, safeFileName, safeMime, safeZipPath, visible } from "../src/names.js";

const bytes = (s) => new TextEncoder().encode(s).length;

/** What any extractor on any common system must be able to write inside the target folder. */
function assertSafeEntry(name) {
  assert.ok(name.length > 0, "empty name");
  assert.ok(!name.startsWith("/"), `absolute: ${name}`);
  assert.ok(!name.includes("\\"), `backslash: ${name}`);
  assert.ok(!/^[A-Za-z]:/.test(name), `drive: ${name}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this asserts are absent.
  assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(name), `control character: ${JSON.stringify(name)}`);
  assert.ok(!/[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\u2060\ufeff]/.test(name), `invisible: ${JSON.stringify(name)}`);
  assert.ok(bytes(name) <= MAX_PATH_BYTES, `too long: ${bytes(name)}`);
  for (const seg of name.split("/")) {
    assert.ok(seg !== "" && seg !== "." && seg !== "..", `bad segment in ${name}`);
    assert.ok(!/[. ]$/.test(seg), `trailing dot or space: ${name}`);
    assert.ok(!seg.includes(":"), `colon: ${name}`);
    assert.ok(!/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(seg), `reserved: ${name}`);
    assert.ok(bytes(seg) <= MAX_SEGMENT_BYTES + 8, `segment too long: ${bytes(seg)}`);
  }
}

const HOSTILE = [
  "../../x",
  "../../../../etc/passwd",
  "/etc/cron.d/x",
  "//server/share/x",
  "C:\\Windows\\System32\\x.dll",
  "C:x",
  "c:/x",
  "..\\..\\x",
  "a/./b/../../c",
  "a//b///c",
  "./",
  ".",
  "..",
  "",
  "/",
  "...",
  "\u0000evil\u0007.txt",
  "line\r\nbreak.txt",
  "del\u007f\u0085\u009f.txt",
  "invoice\u202efdp.exe",
  "a\u2066b\u2069c\u200e\u200f\u061c.txt",
  "zero\u200b\u200c\u200d\u2060\ufeffwidth.txt",
  "CON",
  "con.txt",
  "folder/NUL.tar.gz",
  "LPT1",
  "com9.log",
  "evil.exe .",
  "trailing.  ",
  "dir. /x",
  "report.pdf:hidden.exe",
  `${"x".repeat(5000)}.txt`,
  `${(`${"d".repeat(100)}/`).repeat(200)}f.txt`,
  `${"日本語".repeat(300)}.txt`,
  "lone\ud800surrogate.txt",
  "\udc00",
];

test("every hostile path becomes a safe zip entry", () => {
  const names = new ZipNames();
  const seen = new Set();
  for (const p of HOSTILE) {
    const name = names.take(p);
    assertSafeEntry(name);
    assert.ok(!seen.has(name.toLowerCase()), `duplicate ${name}`);
    seen.add(name.toLowerCase());
  }
});

test("zip paths keep what is harmless", () => {
  assert.equal(safeZipPath("notes/deep/data.bin"), "notes/deep/data.bin");
  assert.equal(safeZipPath("résumé 日本語 ✓.txt"), "résumé 日本語 ✓.txt");
  assert.equal(safeZipPath("../../x"), "x");
  assert.equal(safeZipPath("/etc/cron.d/x"), "etc/cron.d/x");
  assert.equal(safeZipPath("C:\\x"), "C_/x");
  assert.equal(safeZipPath("a\\b\\c.txt"), "a/b/c.txt");
  assert.equal(safeZipPath("invoice\u202efdp.exe"), "invoicefdp.exe");
  assert.equal(safeZipPath("con.txt"), "_con.txt");
  assert.equal(safeZipPath("evil.exe ."), "evil.exe");
  assert.equal(safeZipPath("../.."), "file");
  const long = safeZipPath(`${"x".repeat(5000)}.txt`);
  assert.ok(long.endsWith(".txt") && bytes(long) <= MAX_SEGMENT_BYTES, "a long name is cut, its extension kept");
  const cut = safeZipPath("😀".repeat(300));
  assert.ok(cut.length > 0 && bytes(cut) <= MAX_SEGMENT_BYTES);
  encodeURIComponent(cut); // throws if the cut split a surrogate pair
});

test("duplicates in one zip are numbered, without regard to case, and never clash with a folder", () => {
  const names = new ZipNames();
  assert.equal(names.take("a.txt"), "a.txt");
  assert.equal(names.take("a.txt"), "a (2).txt");
  assert.equal(names.take("A.TXT"), "A (3).TXT");
  assert.equal(names.take("../a.txt"), "a (4).txt");
  assert.equal(names.take("/a.txt"), "a (5).txt");
  assert.equal(names.take("dir/x"), "dir/x");
  assert.equal(names.take("dir"), "dir (2)", "a file may not take a folder's name");
  assert.equal(names.take("f"), "f");
  assert.equal(names.take("f/y"), "f (2)/y", "a folder may not take a file's name");
  assert.equal(names.take("f/z"), "f (2)/z");
  assert.equal(names.take(".hidden"), ".hidden");
  assert.equal(names.take(".hidden"), ".hidden (2)");
});

test("a single download's name is one safe segment", () => {
  assert.equal(safeFileName("../../x"), ".._.._x");
  assert.equal(safeFileName("/etc/passwd"), "_etc_passwd");
  assert.equal(safeFileName("C:\\x"), "C__x");
  assert.equal(safeFileName(".."), "download");
  assert.equal(safeFileName(""), "download");
  assert.equal(safeFileName("invoice\u202efdp.exe"), "invoicefdp.exe");
  assert.equal(safeFileName("a\r\nb.txt"), "a__b.txt");
  assert.equal(safeFileName("nul"), "_nul");
  assert.equal(safeFileName("résumé ✓.txt"), "résumé ✓.txt");
  assert.equal(safeFileName("a\ud800b"), "a\ufffdb");
  for (const p of HOSTILE) {
    const n = safeFileName(p);
    assert.ok(!n.includes("/") && !n.includes("\\"), n);
    assertSafeEntry(n);
    encodeURIComponent(n); // throws on a lone surrogate
  }
});

test("hidden characters are shown, never acted on", () => {
  assert.deepEqual(visible("invoice\u202efdp.exe"), { text: "invoice⟨U+202E⟩fdp.exe", hidden: true });
  for (const c of [
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u0000",
    "\u001b",
    "\u007f",
    "\u0085",
    "\u00ad",
    "\u{e0041}",
  ]) {
    const v = visible(`a${c}b`);
    const code = (c.codePointAt(0) ?? 0).toString(16);
    assert.equal(v.hidden, true, `U+${code}`);
    assert.ok(!v.text.includes(c), `U+${code} left raw`);
    assert.match(v.text, /^a⟨U\+[0-9A-F]{4,5}⟩b$/);
  }
  assert.deepEqual(visible("a\ud800"), { text: "a⟨U+D800⟩", hidden: true });
  assert.deepEqual(visible("résumé 日本語 ✓ שלום.txt"), { text: "résumé 日本語 ✓ שלום.txt", hidden: false });
  // Emoji joined into one picture are not a trick.
  assert.equal(visible("👨\u200d👩\u200d👧 ❤️.txt").hidden, false);
});

test("MIME types: a strict type/subtype or application/octet-stream", () => {
  for (const ok of ["text/plain", "application/pdf", "image/svg+xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Text/HTML"])
    assert.equal(safeMime(ok), ok.toLowerCase());
  for (const bad of [
    "",
    "text/plain\r\nX-Evil: 1",
    "text/plain\nSet-Cookie: a=b",
    "text/html; charset=utf-8",
    "text",
    "/plain",
    "text/",
    "a/b/c",
    "text/plain ",
    " text/plain",
    "tëxt/plain",
    "text/pla\u0000in",
    `x/${"y".repeat(300)}`,
    null,
    undefined,
    42,
    { toString: () => "text/plain" },
  ])
    assert.equal(safeMime(bad), FALLBACK_MIME, JSON.stringify(bad));
});

test("download headers cannot be split or injected by a name or a type", () => {
  for (const name of [...HOSTILE, 'a"; filename="evil.exe', "x\r\nSet-Cookie: a=b", "100%.txt", "it's (1) *.txt"]) {
    for (const mime of ["text/plain\r\nX-Evil: 1", "text/plain", "text/html; charset=utf-8\nA: b"]) {
      const h = downloadHeaders({ name, mime, size: 12 });
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this asserts are absent.
      for (const v of Object.values(h)) assert.ok(!/[\u0000-\u001f\u007f]/.test(v), JSON.stringify(v));
      new Headers(h); // what the service worker's Response does: throws on a bad value
      const d = h["Content-Disposition"];
      assert.match(d, /^attachment; filename="[^"\\]*"; filename\*=UTF-8''[A-Za-z0-9!#$&+.^_`|~%-]*$/);
      assert.equal(decodeURIComponent(d.split("''")[1]), safeFileName(name));
    }
  }
  assert.equal(downloadHeaders({ name: "a", mime: "text/plain\r\nX: y" })["Content-Type"], FALLBACK_MIME);
  assert.equal(downloadHeaders({ name: "a", mime: "image/png", size: -1 })["Content-Length"], undefined);
  assert.equal(downloadHeaders({ name: "résumé.txt", mime: "", size: 3 })["Content-Disposition"], `attachment; filename="r_sum_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`);
});
