// The catalogue check by hand: `node i18n-check.mjs` lists what a catalogue lacks or has
// too many of (the same check runs in `make test`). See docs/i18n.md.
import { loadForCheck } from "./test/catalogue-files.js";
import { checkCatalogues } from "./src/i18n/check.js";

const { catalogues, sources, alsoUsed } = loadForCheck();
const problems = checkCatalogues(catalogues, sources, alsoUsed);
for (const p of problems) console.log(p);
console.log(problems.length ? `${problems.length} problem(s)` : `catalogues complete: ${Object.keys(catalogues).join(", ")}`);
process.exitCode = problems.length ? 1 : 0;
