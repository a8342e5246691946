// Builds the static bundle that `pea serve` ships: signal/pea/static/.
// One ESM bundle for the page, one classic script for the service worker
// (it must sit at /sw.js to control the whole origin), plus html/css/icon.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "signal", "pea", "static");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/** @type {import("esbuild").BuildOptions} */
const common = {
  bundle: true,
  minify: true,
  sourcemap: "linked",
  target: ["chrome100", "firefox100", "safari15"],
  legalComments: "linked",
  logLevel: "warning",
};
await build({ ...common, entryPoints: [join(here, "src", "main.js")], format: "esm", outfile: join(out, "app.js") });
await build({ ...common, entryPoints: [join(here, "src", "download-sw.js")], format: "iife", outfile: join(out, "sw.js") });
await build({ ...common, entryPoints: [join(here, "src", "hash-worker.js")], format: "iife", outfile: join(out, "hash-worker.js") });
await build({ ...common, entryPoints: [join(here, "src", "style.css")], outfile: join(out, "style.css") });
for (const f of ["index.html", "icon.svg"]) cpSync(join(here, "src", f), join(out, f));
console.log(`web bundle written to ${out}`);
