// @ts-check
// Reads what the catalogue check needs from disk: every catalogue, and every source file
// that asks for messages.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ERRORS } from "../src/errors.gen.js";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");

export function loadForCheck() {
  /** @type {Record<string, Record<string, unknown>>} */
  const catalogues = {};
  for (const f of readdirSync(join(web, "src", "locales"))) if (f.endsWith(".json")) catalogues[f.slice(0, -5)] = JSON.parse(readFileSync(join(web, "src", "locales", f), "utf8"));
  /** @type {Record<string, string>} */
  const sources = {};
  for (const f of readdirSync(join(web, "src"), { recursive: true }).map(String)) if (f.endsWith(".js") && !f.includes("check.js")) sources[f] = readFileSync(join(web, "src", f), "utf8");
  // Every error code the server can send has a sentence (ui/server-words.js picks it by code).
  const alsoUsed = Object.keys(ERRORS).map((c) => `server-error.${c}`);
  return { catalogues, sources, alsoUsed };
}
