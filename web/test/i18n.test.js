// Messages and numbers in the person's language: the catalogue lookup, plurals from
// Intl.PluralRules, sizes and speeds from Intl.NumberFormat, and the choice of language.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { pickLocale, translate } from "../src/i18n/i18n.js";
import { formatBytes, formatDuration, formatSpeed } from "../src/ui/format.js";

const catalogue = (code) => JSON.parse(readFileSync(new URL(`../src/locales/${code}.json`, import.meta.url), "utf8"));

test("placeholders are filled, numbers written the locale's way", () => {
  const de = catalogue("de");
  assert.equal(translate(de, "de", "receiving.short", { name: "a.bin", received: 1234567, size: 2000000 }), "„a.bin“ kam mit 1.234.567 statt 2.000.000 Bytes an.");
  assert.equal(translate(catalogue("en"), "en", "receive.download-name", { name: "x.txt" }), "Download x.txt");
});

test("plural forms come from Intl.PluralRules: English one/other, Arabic six forms", () => {
  const en = catalogue("en");
  assert.equal(translate(en, "en", "share.status.sharing", { count: 1 }), "Sharing with 1 receiver. Keep this page open.");
  assert.equal(translate(en, "en", "share.status.sharing", { count: 3 }), "Sharing with 3 receivers. Keep this page open.");
  const ar = catalogue("ar");
  assert.match(translate(ar, "ar", "share.status.sharing", { count: 1 }), /مستلم واحد/);
  assert.match(translate(ar, "ar", "share.status.sharing", { count: 2 }), /مستلمَين/);
  assert.match(translate(ar, "ar", "share.status.sharing", { count: 5 }), /مستلمين/);
  assert.match(translate(ar, "ar", "share.status.sharing", { count: 11 }), /مستلمًا/);
});

test("a key missing from a catalogue falls back to English, an unknown key shows itself", () => {
  assert.equal(translate({}, "de", "share.copy"), "Copy link");
  assert.equal(translate({}, "de", "no.such.key"), "no.such.key");
});

test("sizes and speeds are SI units in the locale's words", () => {
  assert.equal(formatBytes(5.2e6, "en"), "5.2 MB");
  assert.equal(formatBytes(5.2e6, "de"), "5,2 MB");
  assert.match(formatBytes(5.2e6, "fr"), /^5,2\s+Mo$/); // a narrow no-break space
  assert.equal(formatBytes(999, "en"), "999 byte");
  assert.equal(formatSpeed(16e6, "en"), "16 MB/s");
  assert.equal(formatDuration(20, "en"), "20 sec");
  assert.match(formatDuration(20, "fr"), /^20\s+s$/);
});

test("the language: the one chosen, else the first of the browser's that pea has, else English", () => {
  assert.equal(pickLocale(["de-AT", "en"], null), "de");
  assert.equal(pickLocale(["ja", "pt-BR"], null), "pt");
  assert.equal(pickLocale(["ja"], null), "en");
  assert.equal(pickLocale(["de"], "ar"), "ar");
  assert.equal(pickLocale(["de"], "xx"), "de");
});
