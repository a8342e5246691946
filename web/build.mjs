// Builds the static bundle that `pea serve` ships: signal/pea/static/.
// One ESM bundle for the page, one classic script for the service worker
// (it must sit at /sw.js to control the whole origin), plus html/css/icons,
// the web app manifest, the PNG icons rendered from the SVGs, and the message
// catalogues other than English (which is bundled into app.js).
import { Resvg } from "@resvg/resvg-js";
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const out = join(here, "..", "signal", "pea", "static");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "locales"), { recursive: true });

/** @type {import("esbuild").BuildOptions} */
const common = {
  bundle: true,
  minify: !process.env.PEA_NO_MINIFY,
  sourcemap: "linked",
  target: ["chrome100", "firefox100", "safari15"],
  legalComments: "linked",
  logLevel: "warning",
};
await build({ ...common, entryPoints: [join(src, "main.js")], format: "esm", outfile: join(out, "app.js") });
await build({ ...common, entryPoints: [join(src, "hash-worker.js")], format: "iife", outfile: join(out, "hash-worker.js") });
await build({ ...common, entryPoints: [join(src, "check-worker.js")], format: "iife", outfile: join(out, "check-worker.js") });
await build({ ...common, entryPoints: [join(src, "style.css")], outfile: join(out, "style.css") });
for (const f of ["index.html", "icon.svg", "manifest.webmanifest"]) cpSync(join(src, f), join(out, f));

// Catalogues: fetched by i18n.js when a person's language is not English.
for (const f of readdirSync(join(src, "locales"))) {
  if (!f.endsWith(".json") || f === "en.json") continue;
  writeFileSync(join(out, "locales", f), JSON.stringify(JSON.parse(readFileSync(join(src, "locales", f), "utf8"))));
}

// Icons for the manifest, rendered here from the SVGs so they never drift from them.
for (const [svg, name] of [
  ["icon.svg", "icon"],
  ["icon-maskable.svg", "icon-maskable"],
]) {
  for (const size of [192, 512]) {
    const png = new Resvg(readFileSync(join(src, svg)), { fitTo: { mode: "width", value: size } }).render().asPng();
    writeFileSync(join(out, `${name}-${size}.png`), png);
  }
}
writeFileSync(join(out, "apple-touch-icon.png"), new Resvg(readFileSync(join(src, "icon-maskable.svg")), { fitTo: { mode: "width", value: 180 } }).render().asPng());

// The app shell the worker caches, and a version that changes whenever one of them does
// (a new cache replaces the old one when the new worker activates).
const shell = [
  "/",
  ...readdirSync(out, { recursive: true })
    .map(String)
    .filter((f) => !f.endsWith(".map") && !f.endsWith(".txt") && f !== "index.html" && !f.endsWith("locales")),
]
  .map((f) => (f.startsWith("/") ? f : `/${f}`))
  .sort();
const hash = createHash("sha256");
for (const f of shell) hash.update(f).update(readFileSync(join(out, f === "/" ? "index.html" : f.slice(1))));
const version = hash.digest("hex").slice(0, 16);
await build({
  ...common,
  entryPoints: [join(src, "sw", "main.js")],
  format: "iife",
  outfile: join(out, "sw.js"),
  define: { __SHELL_FILES__: JSON.stringify(shell), __SHELL_VERSION__: JSON.stringify(version) },
});
console.log(`web bundle written to ${out} (app shell ${version}: ${shell.length} files)`);
