/**
 * `virtops init` through the real CLI (this checkout's, run by tsx): what it writes and
 * commits, the dependency it declares, and its refusals. Installing the scaffold, its own
 * tests, synth and its CI script run from the packed package: test/integration/package/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The real CLI, run from outside the repo. */
const BIN = path.join(REPO, 'cli/bin.js');

let tmp: string;
let project: string;
const init = (...args: string[]) => execa(process.execPath, [BIN, 'init', ...args], { cwd: tmp, reject: false, all: true });

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-init-'));
  project = path.join(tmp, 'my-vms');
  const r = await init(project);
  expect(r.exitCode, r.all).toBe(0);
}, 60_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const git = (...args: string[]) => execa('git', args, { cwd: project, reject: false });

describe('virtops init', () => {
  it('writes the scaffold, commits it, and depends on virtops by a version range', async () => {
    const files = (await git('ls-files')).stdout.split('\n').sort();
    expect(files).toEqual([
      '.github/workflows/virtops.yml', '.gitignore', '.gitlab-ci.yml', 'README.md', 'cdk8s.yaml', 'ci/check-dist.sh', 'package.json', 'test/vms.test.ts', 'tsconfig.json', 'vitest.config.ts',
      'vms/app.ts', 'vms/hello.ts', 'vms/main.ts',
    ]);
    expect((await git('status', '--porcelain')).stdout).toBe('');
    expect((await git('ls-files', '-s', 'ci/check-dist.sh')).stdout).toMatch(/^100755 /);
    expect((await git('log', '--format=%s')).stdout).toBe('Scaffold my-vms with virtops init');
    const pkg = JSON.parse(fs.readFileSync(path.join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const ours = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
    expect(pkg.dependencies.virtops).toBe(`^${ours.version}`);
    expect(pkg.dependencies.cdk8s).toBe(ours.dependencies.cdk8s);
    // Nothing in the scaffold points back at this checkout.
    for (const f of files) expect(fs.readFileSync(path.join(project, f), 'utf8'), f).not.toContain(REPO);
    expect(fs.readFileSync(path.join(project, 'vms/hello.ts'), 'utf8')).toContain("from 'virtops/dsl'");
  });

  it('--virtops-from: an absolute file: spec to a tarball, or to a directory with install-links', async () => {
    const tarball = path.join(tmp, 'virtops-0.1.0.tgz');
    fs.writeFileSync(tarball, '');
    const a = path.join(tmp, 'from-tarball');
    expect((await execa(process.execPath, [BIN, 'init', 'from-tarball', '--virtops-from', 'virtops-0.1.0.tgz'], { cwd: tmp, reject: false })).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(a, 'package.json'), 'utf8')).dependencies.virtops).toBe(`file:${tarball}`);
    expect(fs.existsSync(path.join(a, '.npmrc'))).toBe(false);
    const b = path.join(tmp, 'from-dir');
    expect((await init(b, '--virtops-from', REPO)).exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(b, 'package.json'), 'utf8')).dependencies.virtops).toBe(`file:${REPO}`);
    expect(fs.readFileSync(path.join(b, '.npmrc'), 'utf8')).toContain('install-links=true');
  });

  it.each([
    ['a path that does not exist', ['--virtops-from', '/nonexistent/virtops-0.1.0.tgz'], /--virtops-from \/nonexistent\/virtops-0.1.0.tgz: .* does not exist\. Fix: pass a tarball made by `npm pack`/],
    ['a directory that is not virtops', ['--virtops-from', os.tmpdir()], /has no package.json named virtops\. Fix:/],
  ])('refuses --virtops-from with %s, naming the flag and the fix, and writes nothing', async (_what, args, message) => {
    const dir = path.join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const r = await init(dir, ...args);
    expect(r.exitCode).not.toBe(0);
    expect(r.all).toMatch(message);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('refuses a non-empty directory, naming it and the fix', async () => {
    const again = await init(project);
    expect(again.exitCode).not.toBe(0);
    expect(again.all).toContain(`${project} is not empty`);
    expect(again.all).toContain('Fix: choose a new or empty directory');
  });
});
