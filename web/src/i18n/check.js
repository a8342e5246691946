// @ts-check
// The catalogue check (run by `make test` through test/catalogues.test.js, and by hand
// with `node i18n-check.mjs`): every catalogue has exactly English's keys, each message
// has the plural forms its language has (Intl.PluralRules says which) and the same
// placeholders as English, every key the code asks for exists, and no English key is
// left that nothing asks for. Pure: it is given the catalogues and the sources.

const PLACEHOLDER = /\{(\w+)\}/g;

/** @param {string} s */
const placeholders = (s) => new Set([...s.matchAll(PLACEHOLDER)].map((m) => m[1]));

/**
 * @param {Record<string, Record<string, unknown>>} catalogues by locale code, "en" included
 * @param {Record<string, string>} sources file name → text of the code that asks for messages
 * @param {string[]} [alsoUsed] keys asked for in ways the sources do not spell out
 * @returns {string[]} problems, one sentence each; [] when all is well
 */
export function checkCatalogues(catalogues, sources, alsoUsed = []) {
  const problems = [];
  const en = catalogues.en;
  if (!en) return ["there is no English catalogue (en.json): it is the list of keys"];
  const enKeys = Object.keys(en);
  for (const [code, cat] of Object.entries(catalogues)) {
    const pluralForms = new Intl.PluralRules(code).resolvedOptions().pluralCategories;
    for (const key of enKeys) if (!(key in cat)) problems.push(`${code}: missing key "${key}"`);
    for (const [key, value] of Object.entries(cat)) {
      const english = en[key];
      if (english === undefined) {
        problems.push(`${code}: stray key "${key}" (not in en.json)`);
        continue;
      }
      const want = new Set();
      for (const s of typeof english === "string" ? [english] : Object.values(/** @type {object} */ (english))) for (const p of placeholders(String(s))) want.add(p);
      /** @type {[string, unknown][]} */
      let forms;
      if (typeof english === "string") {
        if (typeof value !== "string") {
          problems.push(`${code}: "${key}" must be a string, as in English`);
          continue;
        }
        forms = [["", value]];
      } else {
        if (!value || typeof value !== "object" || Array.isArray(value)) {
          problems.push(`${code}: "${key}" must have plural forms, as in English`);
          continue;
        }
        const has = Object.keys(value);
        const missing = pluralForms.filter((f) => !has.includes(f));
        const extra = has.filter((f) => !pluralForms.includes(/** @type {Intl.LDMLPluralRule} */ (f)));
        if (missing.length) problems.push(`${code}: "${key}" lacks the plural forms ${missing.join(", ")}`);
        if (extra.length) problems.push(`${code}: "${key}" has plural forms its language does not use: ${extra.join(", ")}`);
        forms = Object.entries(value);
      }
      for (const [form, text] of forms) {
        const where = form ? `"${key}" (${form})` : `"${key}"`;
        if (typeof text !== "string" || !text.trim()) {
          problems.push(`${code}: ${where} is empty`);
          continue;
        }
        const got = placeholders(text);
        for (const p of got) if (!want.has(p)) problems.push(`${code}: ${where} has {${p}}, which English does not`);
        // A plural form for one exact number ("one", "two", …) may say the number in words.
        for (const p of want) if (!got.has(p) && !(p === "count" && form && form !== "other")) problems.push(`${code}: ${where} lacks {${p}}`);
      }
    }
  }
  // What the code asks for: t("key") / msg("key") must exist. A key counts as used where
  // the code spells it as a string anywhere (keys chosen by a condition or a table), or
  // where a template spells its beginning (`share.problem.${code}`).
  const asked = new Set();
  const spelled = new Set(alsoUsed);
  const prefixes = new Set();
  for (const text of Object.values(sources)) {
    for (const m of text.matchAll(/\b(?:t|msg)\(\s*"([^"]+)"/g)) asked.add(m[1]);
    for (const m of text.matchAll(/"([\w.-]+)"/g)) spelled.add(m[1]);
    for (const m of text.matchAll(/`([a-z][\w-]*\.[\w.-]*)\$\{/g)) prefixes.add(m[1]);
  }
  for (const key of asked) if (!(key in en)) problems.push(`the code asks for "${key}", which en.json does not have`);
  for (const key of enKeys) if (!spelled.has(key) && ![...prefixes].some((p) => key.startsWith(p))) problems.push(`en: "${key}" is asked for nowhere in the code`);
  return problems;
}
