/**
 * Prebuilt bundles that `cli/bin.js` runs instead of tsx + the full CLI (tsx's loader costs
 * ~30 MiB RSS and ~100 ms per process; the full CLI loads every command's modules):
 *
 * - `launcher`: `virtops launcher-monitor` (the one process per VM, which runs the launcher
 *   in-process) and `virtops launcher`. Built from launcher/entry.ts as one CommonJS file,
 *   bundle.cjs, which its entry.mjs runs from V8's code cache (scripts/code-cache.mjs): a
 *   launcher start then neither parses it nor compiles again what earlier launchers
 *   compiled. The VMI schema's validation code is generated at build time by ajv,
 *   compiled as api/schema-validators.ts compiles it (launcher/precompiled/), so a launcher
 *   carries neither ajv's compiler nor the OpenAPI document.
 * - `reconciler`: the long-lived `virtops up`, `virtops controller` and `virtops agent`,
 *   built from reconciler/entry.ts (registers just those commands, with the same flags).
 *   Modules that locate repository files from import.meta.url (cli/bin.js, the project
 *   root) keep their source location (see sourceLocation below).
 * - `bench-pool` (benchmarks only, never packaged): bench/pool-entry.ts, `up` with the pool
 *   runtime injected and the pool's host process (bench/pool-bin.mjs runs it).
 * - `cli` (the npm package only; see BUNDLES below): every other command of the installed
 *   package, built from cli/main.ts.
 *
 * Never stale: a bundle lives in node_modules/.cache/virtops/<name>-<key>/, where <key>
 * hashes the content of every repository source file esbuild read, package.json,
 * package-lock.json (which pins every bundled dependency), tsconfig.json, this script and
 * esbuild's version. `cli/bin.js` checks the key at each start (comparing the files' stats
 * first: only changed stats make it read and hash them) and rebuilds in a child process on
 * a mismatch (~1.5 s), so a fresh clone, a `git pull` or an edit needs no build step. Old
 * bundle directories stay while a process may still load lazy chunks from them (or write
 * the launcher's code cache there): each
 * process touches its directory at start and every few hours, and directories untouched
 * for a week are pruned.
 *
 *   node scripts/build-bundles.mjs [launcher|reconciler|dashboard|bench-pool]   build (if stale) and print the bundle directory
 *   import { launcherBundle, reconcilerBundle } from '...'; what cli/bin.js calls (builds through the line above)
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(REPO, 'node_modules', '.cache', 'virtops');
const PRUNE_AFTER_MS = 7 * 24 * 3600 * 1000;

/**
 * The bundles: esbuild entry points (`entry` is what cli/bin.js imports) and whether the VMI
 * validators are precompiled (the launcher's per-VM start cost).
 */
const BUNDLES = {
  // Whitespace and comments removed as for `reconciler` below (names kept): one launcher runs
  // per VM, and V8 keeps every loaded module's source. 2.96 -> 2.10 MB on disk; -0.4 MiB RSS
  // and USS per launcher; start-up CPU unchanged within the noise.
  // One CommonJS file, run from V8's code cache (codeCache: scripts/code-cache.mjs): 40-70 ms
  // less CPU per launcher through its first sync than the split ES modules it replaced.
  launcher: { entryPoints: { entry: 'launcher/entry.ts' }, precompiledValidators: true, minifyWhitespace: true, codeCache: true },
  // Whitespace and comments removed (names kept, so stack traces still name functions): V8
  // keeps every loaded module's source for lazy compilation, for the life of these
  // long-lived processes. Unminified, @kubernetes/client-node alone is 13.5 MB of the
  // 14.3 MB main chunk, and a few non-Latin-1 characters in its comments made V8 hold
  // that source as UTF-16: 27.9 MiB of the controller's live heap. Minified: 5.6 MB, Latin-1.
  // Since clientNodeSlim (below) leaves client-node's generated models out: 2.4 MB in all.
  reconciler: { entryPoints: { entry: 'reconciler/entry.ts' }, precompiledValidators: false, minifyWhitespace: true },
  // Benchmarks only (bench/pool-bin.mjs; never in the npm package): `up` with the pool
  // runtime injected, and the pool's host process.
  // Built as `reconciler` is (minifyWhitespace), so the `up` and `agent` it runs measure as the product's.
  'bench-pool': { entryPoints: { entry: 'bench/pool-entry.ts' }, precompiledValidators: false, minifyWhitespace: true, benchOnly: true },
  // Every other command of the installed package (scripts/build-package.mjs): one chunk with
  // commander and the command definitions, each command's own modules in lazy chunks. Loading
  // ~15 chunks instead of ~200 compiled modules (yaml alone is 80 files) is most of the start
  // time of `virtops get` and `--help`. The DSL's construct libraries stay external: a
  // project's vms/ and the DSL must share one copy of constructs and cdk8s.
  // Package only: the checkout runs these commands through tsx (cli/bin.js).
  cli: { entryPoints: { entry: 'cli/main.ts' }, precompiledValidators: false, external: ['cdk8s', 'cdk8s-plus-33', 'constructs'] },
  // The web dashboard's browser assets (dashboard/README.md), served by `up --listen`: minified,
  // content-hashed scripts and styles, and the two HTML pages that name them.
  dashboard: { entryPoints: { app: 'dashboard/app.tsx', login: 'dashboard/login.ts' }, browser: true, pages: ['dashboard/index.html', 'dashboard/login.html'] },
};

/** The file a complete build of bundle `name` has (written last). */
const markerOf = (name) => (BUNDLES[name]?.browser ? 'index.html' : 'entry.mjs');

/**
 * Returns the fresh launcher bundle ({ dir, entry }), building it when the sources changed.
 * Returns undefined (after `warn`) when it cannot be built; the caller falls back to tsx.
 */
export function launcherBundle(opts) {
  return bundle('launcher', opts);
}

/** The dashboard's static assets ({ dir, entry: index.html }), for `up --listen` (reconciler/standalone/dashboard-server.ts). */
export function dashboardBundle(opts) {
  return bundle('dashboard', opts);
}

/** As launcherBundle, for `up`, `controller` and `agent` (reconciler/entry.ts). */
export function reconcilerBundle(opts) {
  return bundle('reconciler', opts);
}

/** As launcherBundle, for bench/pool-bin.mjs (bench/pool-entry.ts; benchmarks only). */
export function benchPoolBundle(opts) {
  return bundle('bench-pool', opts);
}

async function bundle(name, { warn = (msg) => process.stderr.write(`virtops: ${msg}\n`) } = {}) {
  try {
    let found = freshBundle(name);
    if (!found) {
      // One builder at a time: N launchers started right after a source edit would
      // otherwise run N esbuild builds of the same sources. The others wait for its result.
      const release = await buildLock(name);
      try {
        found = freshBundle(name);
        if (!found) {
          // Built in a child process: esbuild's API and the build's garbage would otherwise
          // stay in this (long-lived) process's heap.
          const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
          found = freshBundle(name);
          if (!found) throw new Error((r.stderr || r.error?.message || `exit code ${r.status}`).trim());
        }
      } finally {
        release();
      }
    }
    touch(found.dir);
    return found;
  } catch (err) {
    warn(`cannot build the ${name} bundle (${err instanceof Error ? err.message : String(err)}); running through tsx`);
    return undefined;
  }
}

const manifestOf = (name) => join(CACHE, `${name}.json`);

/**
 * An exclusive lock file (`<name>.lock`, holding the builder's pid) around a build; a lock
 * whose process is gone, or older than 5 min, is taken over. Hand-written (a dozen lines)
 * because this runs on every stale start of cli/bin.js, before any dependency is loaded.
 */
async function buildLock(name) {
  mkdirSync(CACHE, { recursive: true });
  const lock = join(CACHE, `${name}.lock`);
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let text = '';
    let age = 0;
    try {
      text = readFileSync(lock, 'utf8');
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // An empty file is a lock being written (open and write are two steps).
    const stale = text === '' ? age > 5000 : !pidAlive(Number(text));
    if (stale || age > 5 * 60_000) {
      rmSync(lock, { force: true });
      continue;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * The bundle recorded in the manifest, if its key still matches the sources. The manifest
 * also records the keyed files' stats (statsOf): while they are unchanged the files are not
 * read and hashed again (every launcher start goes through here).
 */
function freshBundle(name) {
  const known = readManifest(name);
  if (!known || !existsSync(join(known.dir, markerOf(name)))) return undefined;
  const found = { dir: known.dir, entry: join(known.dir, markerOf(name)) };
  const stats = statsOf(known.inputs);
  if (stats === known.stats) return found;
  if (keyOf(known.inputs) !== known.key) return undefined;
  // Same contents, new stats (a checkout or a save rewrote the files): remember them.
  try {
    writeManifest(name, { ...known, stats });
  } catch {
    // read-only cache: the next start hashes again
  }
  return found;
}

function readManifest(name) {
  try {
    const m = JSON.parse(readFileSync(manifestOf(name), 'utf8'));
    return Array.isArray(m.inputs) && typeof m.key === 'string' && typeof m.dir === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the manifest of bundle `name` atomically (concurrent starts each write a whole one). */
function writeManifest(name, manifest) {
  const tmp = `${manifestOf(name)}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(manifest, null, 1));
  renameSync(tmp, manifestOf(name));
}

/** The files a bundle's key covers (paths relative to the repository): the recipe, then `inputs`. */
const keyedFiles = (inputs) => ['scripts/build-bundles.mjs', 'package.json', 'package-lock.json', 'tsconfig.json', ...inputs];

/**
 * Size, mtime, ctime and inode of every file keyOf reads (and of esbuild's package.json),
 * as one string. Taken before the files are hashed, so a file changed meanwhile is hashed
 * again at the next start. Unchanged stats mean unchanged contents: every write moves the
 * ctime, which no tool can set back (unlike the mtime). Saves reading and hashing ~70 files
 * (4-20 ms) at every start of cli/bin.js, i.e. of every launcher.
 */
export function statsOf(inputs, repo = REPO) {
  return [...keyedFiles(inputs), ESBUILD_PACKAGE]
    .map((rel) => {
      try {
        const s = statSync(join(repo, rel), { bigint: true });
        return `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}`;
      } catch {
        return '-';
      }
    })
    .join(' ');
}

/** One hash over the contents of `inputs` (paths relative to `repo`) and the build recipe. */
export function keyOf(inputs, repo = REPO) {
  const h = createHash('sha256');
  // tsconfig.json and package.json steer how esbuild reads the sources; the lockfile pins
  // every bundled dependency (node_modules files are not hashed one by one).
  for (const rel of keyedFiles(inputs)) {
    h.update(rel).update('\0');
    try {
      h.update(readFileSync(join(repo, rel)));
    } catch {
      h.update('(missing)');
    }
    h.update('\0');
  }
  h.update(esbuildVersion());
  return h.digest('hex').slice(0, 16);
}

const ESBUILD_PACKAGE = 'node_modules/esbuild/package.json';

function esbuildVersion() {
  return JSON.parse(readFileSync(join(REPO, ESBUILD_PACKAGE), 'utf8')).version;
}

async function build(name) {
  mkdirSync(CACHE, { recursive: true });
  const tmp = join(CACHE, `${name}.tmp-${process.pid}-${Date.now()}`);
  try {
    const { inputs } = await buildInto(name, tmp, sourceLocation);
    const stats = statsOf(inputs);
    const key = keyOf(inputs);
    const dir = join(CACHE, `${name}-${key}`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another process built the same sources first: use theirs.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    }
    writeManifest(name, { key, dir, inputs, stats });
    prune(name, dir);
    return { dir, entry: join(dir, markerOf(name)) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The bundles of the npm package (scripts/build-package.mjs, at `npm pack`): each in
 * `build/bundles/<name>/`, where cli/bin.js of the installed package runs them. Modules that
 * locate package files from import.meta.url see the position of their compiled copy in the
 * installed package (`<package>/build/reconciler/standalone/up.js` → `<package>/build/cli/bin.js`),
 * as the compiled modules themselves do, never a path of this checkout.
 */
export async function buildPackageBundles(outRoot) {
  for (const name of Object.keys(BUNDLES).filter((n) => !BUNDLES[n].benchOnly)) {
    rmSync(join(outRoot, name), { recursive: true, force: true });
    await buildInto(name, join(outRoot, name), packageLocation, { validatorsLocated: true });
  }
}

/** Builds bundle `name` into `outdir`; returns the repository files it read. */
async function buildInto(name, outdir, location, { validatorsLocated = false } = {}) {
  const recipe = BUNDLES[name];
  if (!recipe) throw new Error(`unknown bundle ${JSON.stringify(name)}: expected one of ${Object.keys(BUNDLES).join(', ')}`);
  const esbuild = await import(join(REPO, 'node_modules', 'esbuild', 'lib', 'main.js'));
  if (recipe.browser) {
    try {
      return await buildBrowser(esbuild, recipe, outdir);
    } finally {
      await esbuild.stop();
    }
  }
  const gen = `${outdir}-gen`;
  const common = {
    absWorkingDir: REPO,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // CommonJS dependencies (pino, commander, ajv) call require() for node: built-ins.
    banner: { js: "import { createRequire as __virtopsRequire } from 'node:module'; const require = __virtopsRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
  };
  try {
    const generated = recipe.precompiledValidators ? await precompileValidators(esbuild, common, gen) : undefined;
    // The bundle; with precompiled validators, api/validate.ts takes its validators from that code.
    const result = await esbuild.build({
      ...common,
      ...(recipe.minifyWhitespace ? { minifyWhitespace: true } : {}),
      ...(recipe.codeCache ? oneCommonJsFile(recipe, outdir) : {
        entryPoints: recipe.entryPoints,
        outdir,
        splitting: true,
        outExtension: { '.js': '.mjs' },
        // Chunks sit next to the entries, named after their first module.
        chunkNames: '[name]-[hash]',
      }),
      // The native binding is loaded from node_modules (it is resolved from the cache dir upwards).
      // So is sockopt's (launcher/server/peer.ts): node-gyp-build finds its prebuild from its own dir.
      external: ['@unraid/libvirt', 'sockopt', ...(recipe.external ?? [])],
      plugins: generated
        ? [...generated.plugins, ...(validatorsLocated ? [location()] : []), clientNodeSlim()]
        : [location(), cjsNamedExports(['pino']), clientNodeSlim()],
    });
    if (recipe.codeCache) writeCodeCacheEntry(outdir);
    const inputs = [...Object.keys(generated?.metafile.inputs ?? {}), ...Object.keys(result.metafile.inputs), ...(recipe.codeCache ? [CODE_CACHE_RUNNER] : [])]
      .filter((p) => !p.includes('node_modules/'))
      .map((p) => relative(REPO, resolve(REPO, p)))
      .filter((p, i, all) => all.indexOf(p) === i)
      .sort();
    return { inputs };
  } finally {
    rmSync(gen, { recursive: true, force: true });
    // esbuild's API keeps a service child process alive (~75 MiB) until stopped.
    await esbuild.stop();
  }
}

const CODE_CACHE_RUNNER = 'scripts/code-cache.mjs';

/**
 * esbuild options for a bundle built as one CommonJS file, `bundle.cjs` (recipe.codeCache).
 * Its entry.mjs (writeCodeCacheEntry) runs it from V8's code cache, which Node 20 offers for
 * scripts but not for ES modules. Lazy imports are no longer separate files; V8 still
 * compiles each function only when it first runs. import.meta.url is the bundle file's URL.
 */
function oneCommonJsFile(recipe, outdir) {
  const entries = Object.values(recipe.entryPoints);
  if (entries.length !== 1) throw new Error('a codeCache bundle has exactly one entry point');
  return {
    entryPoints: entries,
    outfile: join(outdir, 'bundle.cjs'),
    format: 'cjs',
    banner: { js: "var __virtopsBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__virtopsBundleUrl' },
  };
}

/** The runner (scripts/code-cache.mjs) next to bundle.cjs, and the entry.mjs that calls it (written last: the complete build's marker). */
function writeCodeCacheEntry(outdir) {
  writeFileSync(join(outdir, 'code-cache.mjs'), readFileSync(join(REPO, CODE_CACHE_RUNNER)));
  writeFileSync(
    join(outdir, 'entry.mjs'),
    "// Runs bundle.cjs from V8's code cache (code-cache.mjs; scripts/build-bundles.mjs).\n" +
      "import { fileURLToPath } from 'node:url';\nimport { runFromCodeCache } from './code-cache.mjs';\n\nrunFromCodeCache(fileURLToPath(new URL('./bundle.cjs', import.meta.url)));\n",
  );
}

/**
 * A browser bundle (the dashboard): ES2020 modules, minified, names carrying a content hash
 * (served as immutable), CSS from the imported stylesheets (xterm's included); then each page
 * in `recipe.pages` with `{{app.js}}`-style placeholders replaced by the hashed names, and
 * sizes.json (raw and gzip bytes of each file). No source maps: the assets stay small.
 */
async function buildBrowser(esbuild, recipe, outdir) {
  const { gzipSync } = await import('node:zlib');
  const result = await esbuild.build({
    absWorkingDir: REPO,
    entryPoints: recipe.entryPoints,
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    // The console page's xterm.js is a lazy chunk: the overview does not load it.
    splitting: true,
    chunkNames: 'chunk-[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  // Entry name → hashed output file, e.g. app.js → app-5FJ2K.js, app.css → app-QW3E.css.
  const names = {};
  const base = (p) => p.slice(p.lastIndexOf('/') + 1);
  for (const [out, meta] of Object.entries(result.metafile.outputs)) {
    const entry = meta.entryPoint ? Object.entries(recipe.entryPoints).find(([, src]) => src === meta.entryPoint)?.[0] : undefined;
    if (!entry || !out.endsWith('.js')) continue;
    names[`${entry}.js`] = base(out);
    if (meta.cssBundle) names[`${entry}.css`] = base(meta.cssBundle);
  }
  const sizes = {};
  for (const page of recipe.pages) {
    let html = readFileSync(join(REPO, page), 'utf8');
    html = html.replace(/\{\{([\w.-]+)\}\}/g, (m, key) => {
      if (!names[key]) throw new Error(`${page}: ${m} names no built asset (built: ${Object.keys(names).join(', ')})`);
      return names[key];
    });
    writeFileSync(join(outdir, page.slice(page.lastIndexOf('/') + 1)), html);
  }
  for (const f of readdirSync(outdir)) {
    const body = readFileSync(join(outdir, f));
    sizes[f] = { bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
  }
  writeFileSync(join(outdir, 'sizes.json'), JSON.stringify(sizes, null, 1));
  const inputs = [...Object.keys(result.metafile.inputs), ...recipe.pages]
    .filter((p) => !p.includes('node_modules/'))
    .map((p) => relative(REPO, resolve(REPO, p)))
    .filter((p, i, all) => all.indexOf(p) === i)
    .sort();
  return { inputs };
}

/**
 * Precompiled validators: launcher/precompiled/generate.ts, bundled and run once, writes ajv's
 * standalone code for the definitions a launcher validates into `gen`. Returns the generator's
 * metafile and the plugins that make the bundle's api/validate.ts use that code
 * (launcher/precompiled/precompiled-validators.ts) instead of api/schema-validators.ts.
 */
async function precompileValidators(esbuild, common, gen) {
  const generator = await esbuild.build({
    ...common,
    entryPoints: { generate: 'launcher/precompiled/generate.ts' },
    outdir: gen,
    outExtension: { '.js': '.mjs' },
  });
  mkdirSync(join(gen, 'validators'));
  const run = spawnSync(process.execPath, [join(gen, 'generate.mjs'), join(gen, 'validators')], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`generating precompiled validators failed: ${run.stderr || run.error?.message}`);
  return {
    metafile: generator.metafile,
    plugins: [
      {
        name: 'precompiled-validators',
        setup(b) {
          // api/validate.ts takes its validators from the generated code, not from ajv's compiler.
          b.onResolve({ filter: /^\.\/schema-validators\.js$/ }, (args) =>
            args.importer === join(REPO, 'api', 'validate.ts') ? { path: join(REPO, 'launcher', 'precompiled', 'precompiled-validators.ts') } : undefined,
          );
          b.onResolve({ filter: /^virtops:precompiled-validators$/ }, () => ({ path: join(gen, 'validators', 'index.mjs') }));
        },
      },
    ],
  };
}

/**
 * An esbuild plugin: repository modules keep their source file as import.meta.url, so
 * `new URL('../../cli/bin.js', import.meta.url)` and the project root still point into
 * the repository, not into the cache directory.
 */
function sourceLocation() {
  return locatedAs('source-location', (rel) => JSON.stringify(pathToFileURL(join(REPO, rel)).href));
}

/** As sourceLocation, for the package's bundles in build/bundles/<name>/: the compiled module's URL in build/. */
function packageLocation() {
  return locatedAs('package-location', (rel) => `new URL(${JSON.stringify(`../../${rel.split('\\').join('/').replace(/\.ts$/, '.js')}`)}, import.meta.url).href`);
}

function locatedAs(name, urlOf) {
  return {
    name,
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!args.path.startsWith(REPO) || args.path.includes('/node_modules/')) return undefined;
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        return { contents: text.replaceAll('import.meta.url', urlOf(relative(REPO, args.path))), loader: 'ts' };
      });
    },
  };
}

/**
 * An esbuild plugin: @kubernetes/client-node without its generated API classes and models.
 * virtops imports three of its modules one by one (reconciler/cluster/kube.ts, informer.ts:
 * dist/config.js, watch.js, cache.js) and makes its requests itself. Two imports in them
 * reach the generated code, whose index loads every model and API class (~1.7 MB of source,
 * ~6–12 MiB of each daemon's memory, BENCHMARKS.md):
 * - config.js takes `createConfiguration` and `ServerConfiguration` from the generated index
 *   (for makeApiClient, which virtops does not call): answered by the two modules that define
 *   them, which load no models;
 * - cache.js takes the serializer for `ObjectSerializer.serialize(selector, 'string')`, a
 *   string returned as it is: answered by a module that does just that and throws on any
 *   other use, so a newer client-node that needs more fails loudly.
 * An import of the package index elsewhere is left alone. A client-node whose config.js
 * imports other names from the index fails the build ("No matching export").
 */
function clientNodeSlim() {
  const DIST = '/@kubernetes/client-node/dist/';
  return {
    name: 'client-node-slim',
    setup(build) {
      build.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (args) =>
        args.importer.endsWith(`${DIST}config.js`) ? { path: args.importer, namespace: 'client-node-config-gen' } : undefined);
      build.onResolve({ filter: /^\.\/serializer\.js$/ }, (args) =>
        args.importer.endsWith(`${DIST}cache.js`) ? { path: args.importer, namespace: 'client-node-cache-serializer' } : undefined);
      build.onLoad({ filter: /.*/, namespace: 'client-node-config-gen' }, (args) => ({
        contents: "export { createConfiguration } from './gen/configuration.js';\nexport { ServerConfiguration } from './gen/servers.js';\n",
        resolveDir: dirname(args.path),
      }));
      build.onLoad({ filter: /.*/, namespace: 'client-node-cache-serializer' }, () => ({
        contents: "export const ObjectSerializer = { serialize(value, type) { if (type !== 'string') throw new Error('client-node-slim (scripts/build-bundles.mjs): ListWatch serialized a ' + type + ', not a string; this client-node needs its serializer back'); return value; } };\n",
      }));
    },
  };
}

/**
 * An esbuild plugin: `await import('<package>')` of a CommonJS package yields its named
 * exports, as under Node. (esbuild's split chunk for a dynamically imported CommonJS module
 * exports only `default`, so `const { pino } = await import('pino')` would get undefined.)
 * The facade lists the names module.exports has at build time.
 */
function cjsNamedExports(packages) {
  const load = createRequire(join(REPO, 'package.json'));
  return {
    name: 'cjs-named-exports',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) =>
        args.kind === 'dynamic-import' && packages.includes(args.path) ? { path: args.path, namespace: 'cjs-named-exports' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'cjs-named-exports' }, (args) => {
        const names = Object.keys(load(args.path)).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n));
        const lines = [`import m from ${JSON.stringify(args.path)};`, 'export default m;', ...names.map((n) => `export const ${n} = m.${n};`)];
        return { contents: lines.join('\n'), loader: 'js', resolveDir: REPO };
      });
    },
  };
}

/** Marks a bundle directory as in use (pruning spares directories touched within a week). */
export function touch(dir) {
  try {
    const now = new Date();
    utimesSync(dir, now, now);
  } catch {
    // read-only cache: pruning is then someone else's business
  }
}

function prune(bundleName, keep) {
  const ours = new RegExp(`^${bundleName}(-[0-9a-f]{16}|\\.tmp-.*)$`);
  for (const name of readdirSync(CACHE)) {
    const p = join(CACHE, name);
    if (p === keep || !ours.test(name)) continue;
    try {
      if (Date.now() - statSync(p).mtimeMs > PRUNE_AFTER_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // raced with another pruner
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const name = process.argv[2] ?? 'launcher';
  try {
    const b = freshBundle(name) ?? (await build(name));
    process.stdout.write(`${name} bundle: ${b.dir} (${Math.round(performance.now() - t0)} ms)\n`);
  } catch (err) {
    process.stderr.write(`cannot build the ${name} bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
