/**
 * The pool runtime (many launchers in one process) is a benchmark tool, not a product
 * feature (issue 15): no product module imports bench/, no CLI flag or command selects it,
 * and only the bench-only bundle carries it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../cli/main.js';
import { validateUpFlags } from '../../../reconciler/standalone/up.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PRODUCT_DIRS = ['api', 'dsl', 'synth', 'launcher', 'reconciler', 'cli', 'dashboard'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules') return [];
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|tsx|js|mjs)$/.test(name) ? [p] : [];
  });
}

describe('the pool runtime stays under bench/', () => {
  it('no product module imports from bench/ (the pool runtime lives in bench/pool-runtime.ts)', () => {
    const offenders = PRODUCT_DIRS.flatMap((d) => sources(join(REPO, d)))
      .filter((file) => /(?:from\s+|import\()\s*['"][^'"]*\/bench\//.test(readFileSync(file, 'utf8')))
      .map((file) => relative(REPO, file));
    expect(offenders).toEqual([]);
  });

  it('`virtops up` has no --launcher-runtime flag and the CLI no launcher-pool command', () => {
    const program = buildProgram();
    const up = program.commands.find((c) => c.name() === 'up');
    expect(up).toBeDefined();
    expect(up!.options.map((o) => o.long)).not.toContain('--launcher-runtime');
    expect(program.commands.map((c) => c.name())).not.toContain('launcher-pool');
    const v = validateUpFlags({ repo: '/srv/git/vms.git', stateDir: '/tmp/vo-x' });
    expect(v.ok && 'launcherRuntime' in v.config).toBe(false);
  });

  it("the product's reconciler bundle (up, controller, agent) is built without any bench/ module", async () => {
    const { reconcilerBundle } = await import('../../../scripts/build-bundles.mjs');
    const bundle = await reconcilerBundle();
    expect(bundle).toBeDefined();
    const manifest = JSON.parse(readFileSync(join(REPO, 'node_modules/.cache/virtops/reconciler.json'), 'utf8')) as { dir: string; inputs: string[] };
    expect(manifest.dir).toBe(bundle!.dir);
    expect(manifest.inputs.filter((p) => p.startsWith('bench/'))).toEqual([]);
    expect(manifest.inputs).toContain('reconciler/standalone/up.ts');
  }, 60_000);
});
