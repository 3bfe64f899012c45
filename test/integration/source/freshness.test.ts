/**
 * The opt-in synth verifier on a repository made by `virtops init` (from the packed
 * tarball): it installs the virtops version the commit's package-lock.json pins into a
 * cache keyed by the lockfile, synthesizes with it in the sandbox, accepts a fresh dist/,
 * refuses a hand-edited one, and refuses a commit whose pinned version cannot be installed
 * (naming the version and npm's error) or that has no lockfile.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initProject } from '../../../cli/commands/init.js';
import { GitSource, type FreshnessOptions } from '../../../reconciler/source/index.js';
import { npmEnv, packedTarball, REPO } from '../package/tarball.js';
import { nextEvent, sh } from './helpers.js';

let tmp: string;
let work: string;
let installRoot: string;
let freshness: FreshnessOptions;

beforeAll(async () => {
  const tarball = await packedTarball();
  tmp = mkdtempSync(join(tmpdir(), 'virtops-fresh-'));
  installRoot = join(tmp, 'installs');
  freshness = { installRoot, timeoutMs: 240_000 };
  work = join(tmp, 'my-vms');
  await initProject({ dir: work, virtopsFrom: tarball });
  const install = await execa('npm', ['install', '--loglevel=error'], { cwd: work, env: npmEnv, extendEnv: false, reject: false, all: true });
  expect(install.exitCode, install.all).toBe(0);
  const synth = await execa(join(work, 'node_modules/.bin/virtops'), ['synth'], { cwd: work, env: npmEnv, extendEnv: false, reject: false, all: true });
  expect(synth.exitCode, synth.all).toBe(0);
  sh(work, 'add', '-A');
  sh(work, 'commit', '--quiet', '-m', 'lockfile and synthesized dist/');
}, 900_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function commit(files: Record<string, string | null>, message: string): string {
  for (const [rel, text] of Object.entries(files)) {
    if (text === null) rmSync(join(work, rel));
    else writeFileSync(join(work, rel), text);
  }
  sh(work, 'add', '-A');
  sh(work, 'commit', '--quiet', '-m', message);
  return sh(work, 'rev-parse', 'HEAD');
}

describe('GitSource opt-in synth verifier: the virtops version the commit pins, in the sandbox', () => {
  it('installs the pinned version once per lockfile, accepts a freshly synthesized dist/ and refuses a hand-edited one', async () => {
    const fresh = sh(work, 'rev-parse', 'HEAD');
    const source = new GitSource({ repo: work, logger: pino({ level: 'silent' }), debounceMs: 100, freshness, cacheDir: join(tmp, 'cache') });
    try {
      await source.start();
      expect(source.counters.errors).toBe(0);
      expect(source.counters.refused).toBe(0);
      expect(source.current?.sha).toBe(fresh);
      // One install, keyed by the lockfile, holding the version it pins (not this checkout).
      const installs = readdirSync(installRoot);
      expect(installs).toHaveLength(1);
      const installed = JSON.parse(readFileSync(join(installRoot, installs[0]!, 'node_modules/virtops/package.json'), 'utf8')) as { version: string };
      expect(installed.version).toBe((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
      expect(existsSync(join(installRoot, installs[0]!, 'node_modules/virtops/cli/main.ts'))).toBe(false);

      // Hand-edit a VM manifest in dist/: still valid, but no longer what vms/ synthesize.
      const file = join(work, 'dist/hello.k8s.yaml');
      const ev = nextEvent(source, 240_000);
      const stale = commit({ 'dist/hello.k8s.yaml': readFileSync(file, 'utf8').replace(/guest: \S+/, 'guest: 999Mi') }, 'hand-edit dist/');
      const e = await ev;
      expect(e.type).toBe('refused');
      expect(e.type === 'refused' && e.refused.sha).toBe(stale);
      const errors = e.type === 'refused' ? e.refused.errors.join('\n') : '';
      expect(errors).toMatch(/stale/);
      expect(errors).toContain('hello.k8s.yaml');
      expect(errors).toMatch(/--verify-synth/);
      expect(source.current?.sha).toBe(fresh);
      expect(readdirSync(installRoot)).toEqual(installs); // same lockfile: no second install
    } finally {
      await source.stop();
      sh(work, 'reset', '--quiet', '--hard', fresh);
    }
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('virtops-verify-'))).toEqual([]);
  }, 600_000);

  it('refuses a commit whose pinned virtops cannot be installed, naming the version and npm\'s error, and one without a lockfile', async () => {
    const base = sh(work, 'rev-parse', 'HEAD');
    const lock = JSON.parse(readFileSync(join(work, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; resolved?: string; integrity?: string; dependencies?: Record<string, string> }> };
    const pkg = JSON.parse(readFileSync(join(work, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const missing = join(tmp, 'gone', 'virtops-9.9.9.tgz');
    pkg.dependencies['virtops'] = `file:${missing}`;
    lock.packages['']!.dependencies!['virtops'] = `file:${missing}`;
    // An integrity no cached tarball has (npm would otherwise take the cached 0.1.0 by its hash).
    const integrity = `sha512-${createHash('sha512').update('virtops 9.9.9 was never packed').digest('base64')}`;
    lock.packages['node_modules/virtops'] = { ...lock.packages['node_modules/virtops'], version: '9.9.9', resolved: `file:${missing}`, integrity };
    const source = new GitSource({ repo: work, logger: pino({ level: 'silent' }), debounceMs: 100, freshness, cacheDir: join(tmp, 'cache2') });
    try {
      const unpinnable = commit({ 'package.json': `${JSON.stringify(pkg, null, 2)}\n`, 'package-lock.json': `${JSON.stringify(lock, null, 2)}\n` }, 'pin a virtops that does not exist');
      const first = nextEvent(source, 300_000);
      await source.start();
      const e = await first;
      expect(e.type).toBe('refused');
      const errors = e.type === 'refused' ? e.refused.errors.join('\n') : '';
      expect(e.type === 'refused' && e.refused.sha).toBe(unpinnable);
      expect(errors).toMatch(/cannot install virtops 9\.9\.9 as the commit's package-lock.json pins it/);
      expect(errors).toMatch(/ENOENT|no such file/);
      expect(errors).toMatch(/Fix: pin a virtops version/);
      expect(source.counters.errors).toBe(0); // a refusal, not a crash

      const next = nextEvent(source, 120_000);
      const nolock = commit({ 'package-lock.json': null }, 'no lockfile');
      await source.checkNow('manual');
      const e2 = await next;
      expect(e2.type === 'refused' && e2.refused.sha).toBe(nolock);
      expect(e2.type === 'refused' && e2.refused.errors.join('\n')).toMatch(/no package-lock.json.*npm install/);
    } finally {
      await source.stop();
      sh(work, 'reset', '--quiet', '--hard', base);
    }
  }, 600_000);
});
