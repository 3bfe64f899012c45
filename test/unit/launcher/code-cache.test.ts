/**
 * scripts/code-cache.mjs, which runs the launcher bundle (one CommonJS file) from V8's code
 * cache: each run is a fresh Node process, as each launcher is.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const RUNNER = join(REPO, 'scripts', 'code-cache.mjs');

/** A bundle that uses the CommonJS wrapper's names and imports an ES module through the runner's hook. */
const BUNDLE = `
const { platform } = require('node:os');
const importPackageFile = globalThis[Symbol.for('virtops.importPackageFile')];
importPackageFile('execa', './index.js').then((execa) => {
  process.stdout.write(JSON.stringify({ dirname: __dirname, file: __filename, platform: platform(), execa: typeof execa.execa, exportsIsModuleExports: exports === module.exports }) + '\\n');
});
`;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vo-code-cache-'));
  await writeFile(join(dir, 'bundle.cjs'), BUNDLE);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  cacheUsed: boolean;
  written: string | null;
  bundle: { dirname: string; file: string; platform: string; execa: string; exportsIsModuleExports: boolean };
}

/** One process: runs the bundle, waits for the cache it writes (immediately) and reports. */
async function run(): Promise<Run> {
  const script = `
    const { runFromCodeCache } = await import(${JSON.stringify(RUNNER)});
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk) => ((out += chunk), true);
    const { cacheUsed, written } = runFromCodeCache(${JSON.stringify(join(dir, 'bundle.cjs'))}, { writeAfterMs: 0 });
    const path = (await written) ?? null;
    while (!out.includes('\\n')) await new Promise((r) => setTimeout(r, 10));
    write(JSON.stringify({ cacheUsed, written: path, bundle: JSON.parse(out) }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO });
  return JSON.parse(stdout) as Run;
}

describe('runFromCodeCache', () => {
  it('runs the file as a CommonJS module; the first run writes the cache, the next runs use it and write none', async () => {
    const first = await run();
    expect(first.bundle).toEqual({ dirname: dir, file: join(dir, 'bundle.cjs'), platform: process.platform, execa: 'function', exportsIsModuleExports: true });
    expect(first.cacheUsed).toBe(false);
    const cacheFile = join(dir, `bundle.cjs.${process.version}-${process.arch}.v8cache`);
    expect(first.written).toBe(cacheFile);

    // From the cache, import() through the runner's hook still works (a plain import() would not).
    const second = await run();
    expect(second).toEqual({ ...first, cacheUsed: true, written: null });
    expect((await readdir(dir)).sort()).toEqual(['bundle.cjs', `bundle.cjs.${process.version}-${process.arch}.v8cache`]);
  });

  it('a cache V8 rejects (another bundle, another Node) is replaced', async () => {
    const cacheFile = join(dir, `bundle.cjs.${process.version}-${process.arch}.v8cache`);
    await writeFile(cacheFile, 'not a code cache');
    const first = await run();
    expect(first.cacheUsed).toBe(false);
    expect(first.written).toBe(cacheFile);
    expect((await run()).cacheUsed).toBe(true);
  });
});
