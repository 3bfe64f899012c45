/**
 * The launcher bundle: `virtops launcher` and `virtops launcher-monitor` run once per VM, so
 * they skip tsx (its loader costs ~34 MiB RSS and ~100 ms per process) and the full CLI,
 * and run plain JavaScript built by esbuild from launcher/entry.ts (plus the prepare
 * worker). Code splitting keeps lazy imports lazy: the monitor never loads the launcher's
 * modules, and loads the cleanup code only after a crash. The VMI schema's validation code
 * is generated at build time by ajv from api/validate.ts itself (launcher/precompiled/),
 * so a launcher does not compile it at every start.
 *
 * Never stale: the bundle lives in node_modules/.cache/virtops/launcher-<key>/, where <key>
 * hashes the content of every repository source file esbuild read, package.json,
 * package-lock.json (which pins every bundled dependency), tsconfig.json, this script and
 * esbuild's version. `cli/bin.js` checks the key at each start (~60 files, a few ms) and
 * rebuilds in a child process on a mismatch (~1.5 s), so a fresh clone, a `git pull` or an
 * edit needs no build step. Old bundle directories stay while a process may still load
 * lazy chunks from them: each process touches its directory at start and every few hours,
 * and directories untouched for a week are pruned.
 *
 *   node scripts/build-bundles.mjs          build (if stale) and print the bundle directory
 *   import { launcherBundle } from '...';    what cli/bin.js calls (builds through the line above)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(REPO, 'node_modules', '.cache', 'virtops');
const MANIFEST = join(CACHE, 'launcher.json');
const PRUNE_AFTER_MS = 7 * 24 * 3600 * 1000;

const ENTRY_POINTS = { entry: 'launcher/entry.ts', 'prepare-worker': 'launcher/prepare-worker.ts' };

/**
 * Returns the fresh bundle ({ dir, entry }), building it when the sources changed.
 * Returns undefined (after `warn`) when it cannot be built; the caller falls back to tsx.
 */
export async function launcherBundle({ warn = (msg) => process.stderr.write(`virtops: ${msg}\n`) } = {}) {
  try {
    let bundle = freshBundle();
    if (!bundle) {
      // Built in a child process: esbuild's API and the build's garbage would otherwise
      // stay in this (long-lived, per-VM) process's heap.
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      bundle = freshBundle();
      if (!bundle) throw new Error((r.stderr || r.error?.message || `exit code ${r.status}`).trim());
    }
    touch(bundle.dir);
    return bundle;
  } catch (err) {
    warn(`cannot build the launcher bundle (${err instanceof Error ? err.message : String(err)}); running through tsx`);
    return undefined;
  }
}

/** The bundle recorded in the manifest, if its key still matches the sources. */
function freshBundle() {
  const known = readManifest();
  if (known && existsSync(join(known.dir, 'entry.mjs')) && keyOf(known.inputs) === known.key) {
    return { dir: known.dir, entry: join(known.dir, 'entry.mjs') };
  }
  return undefined;
}

function readManifest() {
  try {
    const m = JSON.parse(readFileSync(MANIFEST, 'utf8'));
    return Array.isArray(m.inputs) && typeof m.key === 'string' && typeof m.dir === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** One hash over the contents of `inputs` (paths relative to `repo`) and the build recipe. */
export function keyOf(inputs, repo = REPO) {
  const h = createHash('sha256');
  // tsconfig.json and package.json steer how esbuild reads the sources; the lockfile pins
  // every bundled dependency (node_modules files are not hashed one by one).
  for (const rel of ['scripts/build-bundles.mjs', 'package.json', 'package-lock.json', 'tsconfig.json', ...inputs]) {
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

function esbuildVersion() {
  return JSON.parse(readFileSync(join(REPO, 'node_modules', 'esbuild', 'package.json'), 'utf8')).version;
}

async function build() {
  const esbuild = await import(join(REPO, 'node_modules', 'esbuild', 'lib', 'main.js'));
  mkdirSync(CACHE, { recursive: true });
  const tmp = join(CACHE, `launcher.tmp-${process.pid}-${Date.now()}`);
  const gen = `${tmp}-gen`;
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
    // 1. Precompiled validators: api/validate.ts bundled with a recording `ajv`, run once;
    //    it writes ajv's standalone code for the schemas it compiled (launcher/precompiled/).
    const generator = await esbuild.build({
      ...common,
      entryPoints: { generate: 'launcher/precompiled/generate.ts' },
      outdir: gen,
      outExtension: { '.js': '.mjs' },
      plugins: [ajvFor('launcher/precompiled/recording-ajv.ts')],
    });
    mkdirSync(join(gen, 'validators'));
    const run = spawnSync(process.execPath, [join(gen, 'generate.mjs'), join(gen, 'validators')], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`generating precompiled validators failed: ${run.stderr || run.error?.message}`);

    // 2. The bundle, with api/validate.ts's `ajv` answering compile() from that code.
    const result = await esbuild.build({
      ...common,
      entryPoints: ENTRY_POINTS,
      outdir: tmp,
      splitting: true,
      outExtension: { '.js': '.mjs' },
      // Chunks sit next to the entries: launcher code finds entry.mjs and
      // prepare-worker.mjs as siblings of import.meta.url (see launcher/bundled.ts).
      chunkNames: '[name]-[hash]',
      // The native binding is loaded from node_modules (it is resolved from the cache dir upwards).
      external: ['@unraid/libvirt'],
      plugins: [
        ajvFor('launcher/precompiled/precompiled-ajv.ts'),
        {
          name: 'precompiled-validators',
          setup(b) {
            b.onResolve({ filter: /^virtops:precompiled-validators$/ }, () => ({ path: join(gen, 'validators', 'index.mjs') }));
          },
        },
      ],
    });
    const inputs = [...Object.keys(generator.metafile.inputs), ...Object.keys(result.metafile.inputs)]
      .filter((p) => !p.includes('node_modules/'))
      .map((p) => relative(REPO, resolve(REPO, p)))
      .filter((p, i, all) => all.indexOf(p) === i)
      .sort();
    const key = keyOf(inputs);
    const dir = join(CACHE, `launcher-${key}`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another process built the same sources first: use theirs.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    }
    const manifestTmp = `${MANIFEST}.${process.pid}`;
    writeFileSync(manifestTmp, JSON.stringify({ key, dir, inputs }, null, 1));
    renameSync(manifestTmp, MANIFEST);
    prune(dir);
    return { dir, entry: join(dir, 'entry.mjs') };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(gen, { recursive: true, force: true });
    // esbuild's API keeps a service child process alive (~75 MiB) until stopped.
    await esbuild.stop();
  }
}

/** An esbuild plugin: `ajv` as api/validate.ts imports it resolves to `replacement` (other importers keep ajv). */
function ajvFor(replacement) {
  return {
    name: 'ajv-for-validate',
    setup(b) {
      b.onResolve({ filter: /^ajv$/ }, (args) =>
        args.importer === join(REPO, 'api', 'validate.ts') ? { path: join(REPO, replacement) } : undefined,
      );
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

function prune(keep) {
  for (const name of readdirSync(CACHE)) {
    const p = join(CACHE, name);
    if (p === keep || !/^launcher(-[0-9a-f]{16}|\.tmp-.*)$/.test(name)) continue;
    try {
      if (Date.now() - statSync(p).mtimeMs > PRUNE_AFTER_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // raced with another pruner
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  try {
    const b = freshBundle() ?? (await build());
    process.stdout.write(`launcher bundle: ${b.dir} (${Math.round(performance.now() - t0)} ms)\n`);
  } catch (err) {
    process.stderr.write(`cannot build the launcher bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
