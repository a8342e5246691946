// The catalogue check over the real catalogues (this is what fails `make test` when a
// sentence is added to en.json and not to the others), and the check itself against
// catalogues broken on purpose.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkCatalogues } from "../src/i18n/check.js";
import { LOCALES } from "../src/i18n/i18n.js";
import { loadForCheck } from "./catalogue-files.js";

test("every catalogue has every key, the plural forms of its language and English's placeholders", () => {
  const { catalogues, sources, alsoUsed } = loadForCheck();
  assert.deepEqual(checkCatalogues(catalogues, sources, alsoUsed), []);
});

test("the switcher offers exactly the catalogues there are, English, German, French, Spanish, Portuguese, Dutch and Arabic among them", () => {
  const { catalogues } = loadForCheck();
  assert.deepEqual(Object.keys(LOCALES).sort(), Object.keys(catalogues).sort());
  for (const code of ["en", "de", "fr", "es", "pt", "nl", "ar"]) assert.ok(code in catalogues, code);
});

const en = { "a.hello": "Hello {name}", "a.files": { one: "{count} file", other: "{count} files" } };
const src = { "x.js": 't("a.hello"); t("a.files", { count })' };

test("the check finds a missing key, a stray key and a key the code asks for that English lacks", () => {
  const got = checkCatalogues({ en, de: { "a.files": { one: "{count} Datei", other: "{count} Dateien" }, "a.bye": "Tschüss" } }, { ...src, "y.js": 't("a.gone")' });
  assert.ok(got.includes('de: missing key "a.hello"'), got.join("\n"));
  assert.ok(got.includes('de: stray key "a.bye" (not in en.json)'), got.join("\n"));
  assert.ok(got.includes('the code asks for "a.gone", which en.json does not have'), got.join("\n"));
});

test("the check finds placeholders that differ from English", () => {
  const got = checkCatalogues({ en, de: { "a.hello": "Hallo {nom}", "a.files": { one: "{count} Datei", other: "Dateien" } } }, src);
  assert.ok(got.includes('de: "a.hello" has {nom}, which English does not'), got.join("\n"));
  assert.ok(got.includes('de: "a.hello" lacks {name}'), got.join("\n"));
  assert.ok(got.includes('de: "a.files" (other) lacks {count}'), got.join("\n"));
});

test("the check holds each plural message to the forms Intl.PluralRules gives its language", () => {
  const got = checkCatalogues({ en, ar: { "a.hello": "مرحبًا {name}", "a.files": { one: "ملف واحد", other: "{count} ملف" } } }, src);
  assert.ok(
    got.some((p) => p.startsWith('ar: "a.files" lacks the plural forms') && ["zero", "two", "few", "many"].every((f) => p.includes(f))),
    got.join("\n"),
  );
  const extra = checkCatalogues({ en, de: { "a.hello": "Hallo {name}", "a.files": { one: "{count} Datei", few: "{count} Dateien", other: "{count} Dateien" } } }, src);
  assert.ok(extra.includes('de: "a.files" has plural forms its language does not use: few'), extra.join("\n"));
});

test("an English key nothing in the code asks for is reported", () => {
  const got = checkCatalogues({ en: { ...en, "a.unused": "x" } }, src);
  assert.deepEqual(got, ['en: "a.unused" is asked for nowhere in the code']);
});
