/**
 * `virtops init` for real: scaffold into a temp dir with the real CLI, `npm install` from
 * the npm registry (cache preferred), `npm test` (tsc + vitest snapshot), and
 * `npx virtops synth` / `--check` in the new repository. Slow (npm install): one run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import YAML from 'yaml';
import { GitSource } from '../../../reconciler/source/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The real CLI, run from outside the repo (tsx from the repo's own node_modules). */
const TSX = path.join(REPO, 'node_modules/.bin/tsx');
const CLI = path.join(REPO, 'cli/main.ts');

let tmp: string;
let project: string;
/** The environment without CI markers, so vitest may write the first snapshot. */
const localEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'CI' && !k.startsWith('GITHUB_')));

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-init-'));
  project = path.join(tmp, 'my-vms');
  await execa(TSX, [CLI, 'init', project], { cwd: tmp });
}, 60_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = localEnv) =>
  execa(cmd, args, { cwd: project, env, extendEnv: false, reject: false, all: true, timeout: 300_000 });

describe('virtops init', () => {
  it('writes the scaffold and commits it', async () => {
    const files = (await run('git', ['ls-files'])).stdout.split('\n').sort();
    expect(files).toEqual([
      '.github/workflows/virtops.yml', '.gitignore', '.gitlab-ci.yml', '.npmrc', 'README.md', 'cdk8s.yaml', 'ci/check-dist.sh', 'package.json', 'test/vms.test.ts', 'tsconfig.json', 'vitest.config.ts',
      'vms/hello.ts', 'vms/main.ts',
    ]);
    expect((await run('git', ['status', '--porcelain'])).stdout).toBe('');
    expect((await run('git', ['ls-files', '-s', 'ci/check-dist.sh'])).stdout).toMatch(/^100755 /);
    expect((await run('git', ['log', '--format=%s'])).stdout).toBe('Scaffold my-vms with virtops init');
    const pkg = JSON.parse(fs.readFileSync(path.join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const ours = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.virtops).toBe(`file:${REPO}`);
    expect(pkg.dependencies.cdk8s).toBe(ours.dependencies.cdk8s);
  });

  it('refuses a non-empty directory, naming it and the fix', async () => {
    const again = await execa(TSX, [CLI, 'init', project], { cwd: tmp, reject: false, all: true });
    expect(again.exitCode).not.toBe(0);
    expect(again.all).toContain(`${project} is not empty`);
    expect(again.all).toContain('Fix: choose a new or empty directory');
  });

  it('installs from the npm registry and passes its own tests (snapshot written, then stable under CI)', async () => {
    const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline']);
    expect(install.exitCode, install.all).toBe(0);
    expect(fs.existsSync(path.join(project, 'package-lock.json'))).toBe(true);
    // One copy of constructs: the DSL's constructs and the project's are the same module.
    expect(fs.existsSync(path.join(project, 'node_modules/virtops/node_modules/constructs'))).toBe(false);

    const first = await run('npm', ['test']);
    expect(first.exitCode, first.all).toBe(0);
    expect(first.all).toMatch(/1 written/);
    const snapshot = fs.readFileSync(path.join(project, 'test/__snapshots__/vms.test.ts.snap'), 'utf8');
    expect(snapshot).toContain('"kind": "VirtualMachine"');
    expect(snapshot).toContain('virt-launcher-hello');

    const second = await run('npm', ['test'], { ...localEnv, CI: 'true' });
    expect(second.exitCode, second.all).toBe(0);
  }, 600_000);

  it('synthesizes dist/ with `npx virtops synth`, and `--check` agrees', async () => {
    const synth = await run('npx', ['virtops', 'synth']);
    expect(synth.exitCode, synth.all).toBe(0);
    const dist = path.join(project, 'dist');
    // Through node_modules/.bin/virtops, process.argv[1] is a symlink: cli/main.ts must
    // recognise itself as the entry point by realpath, or the CLI silently does nothing.
    expect(fs.existsSync(dist), `npx virtops synth wrote no dist/ (output: '${synth.all}'); see cli/main.ts isEntry`).toBe(true);
    expect(fs.readdirSync(dist).sort()).toEqual(['crds.k8s.yaml', 'hello.k8s.yaml', 'install.k8s.yaml']);
    const objects = YAML.parseAllDocuments(fs.readFileSync(path.join(dist, 'hello.k8s.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['VirtualMachine/hello', 'Pod/virt-launcher-hello']);
    const check = await run('npx', ['virtops', 'synth', '--check']);
    expect(check.exitCode, check.all).toBe(0);
  }, 300_000);

  it('a reconciler with --verify-synth accepts its commit: the sandbox resolves `virtops` to this checkout', async () => {
    const git = (...args: string[]) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
    expect((await git('add', 'dist')).exitCode).toBe(0);
    expect((await git('commit', '-q', '-m', 'synthesized dist/')).exitCode).toBe(0);
    const head = (await git('rev-parse', 'HEAD')).stdout.trim();
    const source = new GitSource({ repo: project, logger: pino({ level: 'silent' }), freshness: { timeoutMs: 240_000 }, cacheDir: path.join(tmp, 'source-cache') });
    try {
      await source.start();
      expect(source.counters.errors).toBe(0);
      expect(source.counters.refused).toBe(0);
      expect(source.current?.sha).toBe(head);
    } finally {
      await source.stop();
    }
  }, 300_000);

  it('its CI script (npm ci && npx virtops synth --check) passes on a fresh dist/ and fails on a stale one', async () => {
    const env = { ...localEnv, npm_config_prefer_offline: 'true' };
    const ok = await run('sh', ['ci/check-dist.sh'], env);
    expect(ok.exitCode, ok.all).toBe(0);
    expect(ok.all).toContain('dist is up to date');
    const file = path.join(project, 'dist/hello.k8s.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/guest: \S+/, 'guest: 999Mi'));
    const stale = await run('sh', ['ci/check-dist.sh'], env);
    expect(stale.exitCode).not.toBe(0);
    expect(stale.all).toMatch(/dist is stale/);
    expect(stale.all).toContain('differs: hello.k8s.yaml');
  }, 600_000);
});
