import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { GitSource } from '../../../reconciler/source/index.js';
import { nextEvent, sh, TestRepo } from './helpers.js';

const PROJECT = fileURLToPath(new URL('../../../', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

describe('GitSource opt-in synth verifier (dist/ must match what vms/ synthesize; run in the sandbox)', () => {
  it('accepts a freshly synthesized dist/ and refuses a hand-edited one', async () => {
    const repo = new TestRepo();
    cleanups.push(() => repo.remove());
    // A VMs-as-code repository: this project's committed tree, with dist/ synthesized by its own CLI.
    execFileSync('bash', ['-c', `git -C "${PROJECT}" archive HEAD | tar -x -C "${repo.work}"`]);
    appendFileSync(join(repo.work, '.git/info/exclude'), 'node_modules\n');
    symlinkSync(join(PROJECT, 'node_modules'), join(repo.work, 'node_modules'), 'dir');
    execFileSync('npx', ['tsx', 'cli/main.ts', 'synth'], { cwd: repo.work, stdio: 'pipe' });
    unlinkSync(join(repo.work, 'node_modules'));
    const files = readdirSync(join(repo.work, 'dist')).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    sh(repo.work, 'add', '-A');
    sh(repo.work, 'commit', '--quiet', '-m', 'vms and synthesized dist/');
    repo.push();
    const fresh = sh(repo.work, 'rev-parse', 'HEAD');

    const source = new GitSource({ repo: repo.bare, logger: pino({ level: 'silent' }), debounceMs: 100, freshness: true });
    cleanups.push(() => source.stop());
    await source.start();
    expect(source.counters.refused).toBe(0);
    expect(source.current?.sha).toBe(fresh);
    expect(source.current?.manifests.some((m) => m.kind === 'VirtualMachine')).toBe(true);

    // Hand-edit a VM manifest in dist/: still valid, but no longer what vms/ synthesize.
    const target = files.find((f) => /guest: \S+/.test(readFileSync(join(repo.work, 'dist', f), 'utf8')));
    expect(target).toBeDefined();
    const path = join(repo.work, 'dist', target as string);
    writeFileSync(path, readFileSync(path, 'utf8').replace(/guest: \S+/, 'guest: 999Mi'));
    const ev = nextEvent(source, 120_000);
    const stale = repo.commit({}, 'hand-edit dist/');
    const e = await ev;
    expect(e.type).toBe('refused');
    expect(e.type === 'refused' && e.refused.sha).toBe(stale);
    const errors = e.type === 'refused' ? e.refused.errors.join('\n') : '';
    expect(errors).toMatch(/stale/);
    expect(errors).toContain(target as string);
    expect(errors).toMatch(/--verify-synth/);
    expect(source.current?.sha).toBe(fresh);

    await source.stop();
    // The project's own node_modules (mounted read-only into the sandbox) is untouched, and
    // no scratch copy outlives its check.
    expect(existsSync(join(PROJECT, 'node_modules', 'tsx'))).toBe(true);
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('virtops-verify-'))).toEqual([]);
  });
});
