// Bundle the web app into the Python package (src/vibetunnel/web/), which git ignores.
//
//   node build.mjs            minified production build
//   node build.mjs --dev      readable output with inline source maps
//
// Output: web/index.html, web/assets/app.js (+ lazily loaded chunks), web/assets/app.css,
// web/assets/favicon.svg.
// Type checking is a separate step (`tsc --noEmit`), run first by `npm run build`.
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const webDir = join(here, "..", "src", "vibetunnel", "web");
const assetsDir = join(webDir, "assets");
const dev = process.argv.includes("--dev");

// Start clean so stale chunks from an earlier build are not served, but keep web/__init__.py.
await rm(assetsDir, { recursive: true, force: true });
await mkdir(assetsDir, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: [
    { in: "src/main.ts", out: "app" },
    { in: "src/style.css", out: "app" },
  ],
  outdir: assetsDir,
  bundle: true,
  format: "esm",
  splitting: true, // xterm.js and asciinema-player load only on the pages that use them
  chunkNames: "chunk-[hash]",
  target: ["es2022", "chrome100", "firefox100", "safari15"],
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
  define: { "process.env.NODE_ENV": JSON.stringify(dev ? "development" : "production") },
});

// Files served as they are.
await copyFile(join(here, "favicon.svg"), join(assetsDir, "favicon.svg"));

// Cache-bust the two fixed names: index.html is always fetched fresh, assets may be cached.
const hash = createHash("sha256");
for (const name of ["app.js", "app.css"]) hash.update(await readFile(join(assetsDir, name)));
const version = hash.digest("hex").slice(0, 12);
const html = await readFile(join(here, "index.html"), "utf8");
await writeFile(join(webDir, "index.html"), html.replaceAll("__VERSION__", version));

const outputs = Object.entries(result.metafile.outputs).filter(([f]) => !f.endsWith(".map"));
const total = outputs.reduce((n, [, o]) => n + o.bytes, 0);
console.log(`built ${outputs.length} files (${(total / 1024).toFixed(0)} KiB) into ${webDir}`);
