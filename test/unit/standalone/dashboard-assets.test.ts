/**
 * The dashboard's browser code: it type-checks (its own tsconfig: DOM, Preact JSX; the main
 * tsconfig leaves dashboard/ out), and its bundle builds, names only files it has, and stays
 * small (the overview's script and CSS; xterm.js is a lazy chunk).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = new URL('../../../', import.meta.url).pathname;

describe('dashboard assets', () => {
  it('dashboard/ type-checks', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(REPO, 'dashboard/tsconfig.json')], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);

  it('the bundle builds; its pages name existing hashed assets; the overview stays small', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/build-bundles.mjs'), 'dashboard'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const dir = /^dashboard bundle: (.*) \(\d+ ms\)$/m.exec(r.stdout)![1]!;
    for (const page of ['index.html', 'login.html']) {
      const html = readFileSync(join(dir, page), 'utf8');
      const refs = [...html.matchAll(/\/assets\/([\w.-]+)/g)].map((m) => m[1]!);
      expect(refs.length).toBe(2);
      for (const f of refs) expect(existsSync(join(dir, f)), `${page} → ${f}`).toBe(true);
    }
    const sizes = JSON.parse(readFileSync(join(dir, 'sizes.json'), 'utf8')) as Record<string, { bytes: number; gzip: number }>;
    const overview = Object.entries(sizes).filter(([f]) => /^app-.*\.(js|css)$/.test(f));
    expect(overview.length).toBe(2);
    // Budget: the overview's script + CSS under 25 KB gzip (14 KB at the time of writing).
    expect(overview.reduce((n, [, s]) => n + s.gzip, 0)).toBeLessThan(25 * 1024);
    // xterm.js is not in the overview's script.
    const app = readFileSync(join(dir, overview.find(([f]) => f.endsWith('.js'))![0]), 'utf8');
    expect(app).not.toMatch(/xterm-helper-textarea/);
  }, 60_000);
});
