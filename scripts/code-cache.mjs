/**
 * Runs a bundle built as one CommonJS file (the launcher's: scripts/build-bundles.mjs) from
 * V8's code cache, so a launcher start neither parses the bundle nor compiles again the
 * functions earlier launchers compiled. Measured (BENCHMARKS.md, "the launcher's code
 * cache"): ~50 ms less CPU per launcher from spawn through its first sync, of ~200-250 ms.
 *
 * Node 20 has no code cache for ES modules (module.enableCompileCache came with Node 22), so
 * the launcher bundle is one CommonJS file compiled here with node:vm, which takes and makes
 * V8 code caches. The build copies this file into the bundle directory; the bundle's
 * entry.mjs calls runFromCodeCache.
 *
 * The cache (`<bundle>.<node version>-<arch>.v8cache`, next to the bundle) is written once
 * by a process that found none, or found one V8 rejected (another Node, other V8 flags):
 * `writeAfterMs` after its start, so that it holds what a launcher compiles through its
 * first sync, not only what its start compiles. Written to a temporary file and renamed,
 * so concurrent writers never leave a torn cache. A read-only bundle directory (an
 * installed package) just runs without one. The cache is as trusted as the bundle itself:
 * same directory, same owner.
 *
 * One more thing this file does for the bundle: `import()` in code that V8 took from a code
 * cache has no loader in Node 20 (the script's host-defined options are not kept), so the
 * bundle's one import of an ES module at run time (the libvirt binding,
 * launcher/libvirt/native.ts) goes through IMPORT_PACKAGE_FILE, set here.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** `(packageName, pathInPackage) => import(<that file>)`, resolved from the bundle's directory; read by launcher/libvirt/native.ts. */
export const IMPORT_PACKAGE_FILE = Symbol.for('virtops.importPackageFile');

/** How long after its start a process that found no usable cache writes one. */
export const WRITE_CACHE_AFTER_MS = 10_000;

/**
 * Runs the CommonJS file `file` (module.exports unused) with the code cache next to it.
 * Returns whether a cache was used and, when this process writes one, a promise of its path
 * (for tests; the timer does not keep the process alive).
 */
export function runFromCodeCache(file, { writeAfterMs = WRITE_CACHE_AFTER_MS } = {}) {
  const cacheFile = `${file}.${process.version}-${process.arch}.v8cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // none yet
  }
  // The wrapper Node gives a CommonJS module, on the same line as the code (line numbers stay).
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  const script = new Script(source, { filename: file, cachedData });
  const cacheUsed = cachedData !== undefined && !script.cachedDataRejected;
  const written = cacheUsed ? undefined : new Promise((resolve) => setTimeout(() => resolve(writeCache(script, cacheFile)), writeAfterMs).unref());
  globalThis[IMPORT_PACKAGE_FILE] = (pkg, path) => import(new URL(path, import.meta.resolve(pkg)).href);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return { cacheUsed, written };
}

/** Writes the script's code cache atomically; returns its path, or undefined when it cannot (read-only directory). */
function writeCache(script, cacheFile) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cacheFile);
    return cacheFile;
  } catch {
    rmSync(tmp, { force: true });
    return undefined;
  }
}
