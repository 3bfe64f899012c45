/**
 * Issue 12, part 1, as a new user would go: the packed tarball installed into an empty
 * directory (virtops itself from the tarball, no registry; its dependencies from npm's
 * cache), `virtops init` from that install, a VM added with the DSL, the new repository's
 * own tests and CI script, `virtops synth`, a type error for a wrong prop, and a push to a
 * `virtops up` (the installed package's, on libvirt's test:///default driver) → Running.
 * No file of the new repository names this checkout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { cleanupStateDir, listVms, makeStateDir, waitFor } from '../standalone/harness.js';
import { apiCall, socketPath } from '../../../reconciler/standalone/client.js';
import { npmEnv, packedTarball, REPO } from './tarball.js';

let tarball: string;
let tmp: string;
let tools: string;
let project: string;
let bin: string;

const run = (cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = npmEnv) =>
  execa(cmd, args, { cwd, env, extendEnv: false, reject: false, all: true, timeout: 600_000 });
const git = (...args: string[]) => run(project, 'git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);

const WEB_VM = `import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { Size, VirtualMachine } from 'virtops/dsl';

/** A VM with no disks: enough for libvirt's test:///default driver. */
export class WebVms extends Chart {
  public constructor(scope: Construct, id = 'web') {
    super(scope, id, { namespace: 'default' });
    new VirtualMachine(this, 'vm', { name: 'web', memory: { guest: Size.mebibytes(64) }, terminationGracePeriodSeconds: 0 });
  }
}
`;

beforeAll(async () => {
  tarball = await packedTarball();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-pkg-'));
  tools = path.join(tmp, 'tools');
  project = path.join(tmp, 'my-vms');
}, 600_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('virtops from its npm package, without this checkout', () => {
  it('the tarball holds compiled JavaScript, types, the bundles and build-info.json; no sources, tests or dev scripts', async () => {
    const { stdout } = await run(tmp, 'tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['cli/bin.js', 'build/cli/main.js', 'build/dsl/index.js', 'build/dsl/index.d.ts', 'build/synth/app.d.ts',
      'build/bundles/launcher/entry.mjs', 'build/bundles/reconciler/entry.mjs', 'build-info.json', 'CHANGELOG.md', 'package.json', 'templates/init/vms/app.ts']));
    // (templates/ is what `virtops init` writes: the scaffold's own TypeScript and test.)
    const offending = files.filter((f) => !f.startsWith('templates/') && ((/\.ts$/.test(f) && !/\.d\.ts$/.test(f)) || /^(test|bench|scripts|vms|tools)\//.test(f) || /\.test\./.test(f)));
    expect(offending).toEqual([]);
    const info = JSON.parse((await run(tmp, 'tar', ['-xzOf', tarball, 'package/build-info.json'])).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), commit: expect.stringMatching(/^[0-9a-f]{40}(\+dirty)?$/), kubevirtApi: 'kubevirt.io/v1' });
  });

  it('installs into an empty directory from the tarball and offers its commands without tsx or this checkout', async () => {
    fs.mkdirSync(tools);
    fs.writeFileSync(path.join(tools, 'package.json'), '{ "name": "tools", "private": true }\n');
    const install = await run(tools, 'npm', ['install', '--loglevel=error', tarball]);
    expect(install.exitCode, install.all).toBe(0);
    bin = path.join(tools, 'node_modules/.bin/virtops');
    const help = await run(tools, bin, ['--help']);
    expect(help.exitCode, help.all).toBe(0);
    for (const cmd of ['init', 'synth', 'import', 'up', 'controller', 'agent', 'launcher-monitor']) expect(help.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    // The long-lived commands run from the bundles prebuilt into the package.
    const upHelp = await run(tools, bin, ['up', '--help']);
    expect(upHelp.exitCode, upHelp.all).toBe(0);
    expect(upHelp.stdout).toContain('--repo');
  }, 900_000);

  it('the version fast path (no commander, no command loaded) prints what the full CLI prints', async () => {
    for (const argv of [['--version'], ['-V'], ['version'], ['version', '-o', 'json']]) {
      const fast = await run(tools, bin, argv);
      const full = await run(tools, bin, argv, { ...npmEnv, VIRTOPS_NO_FAST_PATH: '1' });
      expect(fast.exitCode, fast.all).toBe(0);
      expect(full.exitCode, full.all).toBe(0);
      expect(fast.stdout, argv.join(' ')).toBe(full.stdout);
      expect(fast.stdout).toMatch(/virtops \d+\.\d+\.\d+|"version": "\d+\.\d+\.\d+"/);
    }
  });

  it('virtops init (from the installed package) scaffolds a repository that depends on the tarball, and it installs', async () => {
    const init = await run(tmp, bin, ['init', project, '--virtops-from', tarball]);
    expect(init.exitCode, init.all).toBe(0);
    const pkg = JSON.parse(fs.readFileSync(path.join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.virtops).toBe(`file:${tarball}`);
    const install = await run(project, 'npm', ['install', '--loglevel=error']);
    expect(install.exitCode, install.all).toBe(0);
    // One copy of constructs and cdk8s: the DSL's and the project's are the same modules.
    expect(fs.existsSync(path.join(project, 'node_modules/virtops/node_modules'))).toBe(false);
    expect(fs.existsSync(path.join(project, 'node_modules/virtops/cli/main.ts'))).toBe(false);
  }, 900_000);

  it('a VM added with the DSL: the repository\'s own tests (type-check, snapshot per chart) pass, and synth writes dist/', async () => {
    fs.writeFileSync(path.join(project, 'vms/web.ts'), WEB_VM);
    const app = path.join(project, 'vms/app.ts');
    fs.writeFileSync(app, fs.readFileSync(app, 'utf8').replace("import { HelloVms } from './hello.js';", "import { HelloVms } from './hello.js';\nimport { WebVms } from './web.js';").replace('  new HelloVms(app);', '  new HelloVms(app);\n  new WebVms(app);'));
    const test = await run(project, 'npm', ['test']);
    expect(test.exitCode, test.all).toBe(0);
    expect(test.all).toMatch(/2 written/);
    const snapshot = fs.readFileSync(path.join(project, 'test/__snapshots__/vms.test.ts.snap'), 'utf8');
    expect(snapshot).toContain('virt-launcher-hello');
    expect(snapshot).toContain('virt-launcher-web');

    const synth = await run(project, bin, ['synth']);
    expect(synth.exitCode, synth.all).toBe(0);
    expect(fs.readdirSync(path.join(project, 'dist')).sort()).toEqual(['crds.k8s.yaml', 'hello.k8s.yaml', 'install.k8s.yaml', 'web.k8s.yaml']);
    const objects = YAML.parseAllDocuments(fs.readFileSync(path.join(project, 'dist/web.k8s.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['VirtualMachine/web', 'Pod/virt-launcher-web']);
    expect((await git('add', '-A')).exitCode).toBe(0);
    expect((await git('commit', '-q', '-m', 'web: a VM, synthesized')).exitCode).toBe(0);

    // The CI step the repository carries: npm ci, synth --check, npm test (under CI).
    const ci = await run(project, 'sh', ['ci/check-dist.sh'], { ...npmEnv, CI: 'true' });
    expect(ci.exitCode, ci.all).toBe(0);
    expect(ci.all).toContain('dist is up to date');
    // ... and its synth --check step fails on a hand-edited dist/.
    const file = path.join(project, 'dist/web.k8s.yaml');
    const good = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, good.replace(/guest: \S+/, 'guest: 999Mi'));
    const stale = await run(project, bin, ['synth', '--check']);
    expect(stale.exitCode).not.toBe(0);
    expect(stale.all).toContain('differs: web.k8s.yaml');
    fs.writeFileSync(file, good);
  }, 900_000);

  it('tsc sees the DSL\'s types: a wrong prop is a type error naming it', async () => {
    const bad = path.join(project, 'vms/typo.ts');
    fs.writeFileSync(bad, WEB_VM.replace('WebVms', 'TypoVms').replace('memory: {', 'memroy: {'));
    try {
      const tsc = await run(project, 'npx', ['tsc', '--noEmit']);
      expect(tsc.exitCode).not.toBe(0);
      expect(tsc.stdout).toMatch(/vms\/typo\.ts\(\d+,\d+\): error TS2561: .*'memroy'.*Did you mean to write 'memory'/);
    } finally {
      fs.rmSync(bad);
    }
  }, 300_000);

  it('a push to `virtops up` (the installed package\'s) runs the VM; no file of the repository names this checkout', async () => {
    const bare = path.join(tmp, 'my-vms.git');
    expect((await run(tmp, 'git', ['clone', '-q', '--bare', project, bare])).exitCode).toBe(0);
    const stateDir = await makeStateDir();
    const up = execa(bin, ['up', '--repo', bare, '--state-dir', stateDir, '--libvirt-uri', 'test:///default', '--interval', '2s'], { reject: false, all: true, env: { VIRTOPS_LOG_LEVEL: 'info' } });
    let log = '';
    up.all?.on('data', (b: Buffer) => (log += b.toString()));
    const server = `unix:${socketPath(stateDir)}`;
    try {
      await waitFor('up serves its API', () => apiCall(server, 'GET', '/healthz').then(() => true, () => false), 60_000);
      const web = await waitFor('web Running', async () => {
        const v = (await listVms(server)).vms.find((x) => x.name === 'web');
        return v?.status?.printableStatus === 'Running' && v.instance ? v : undefined;
      }, 120_000).catch((err: unknown) => {
        console.error(log.slice(-6000));
        throw err;
      });
      expect(web.instance!.domain).toBe('default_web');
      // The launcher runs from the package's prebuilt bundle, not from this checkout.
      expect(web.instance!.pid).toBeDefined();
      const launcherArgv = fs.readFileSync(`/proc/${web.instance!.pid}/cmdline`, 'utf8').split('\0').join(' ');
      expect(launcherArgv).toContain(path.join(tools, 'node_modules/virtops/'));
      expect(launcherArgv).not.toContain(REPO);
    } finally {
      up.kill('SIGTERM');
      await up;
      await cleanupStateDir(stateDir);
    }

    const tracked = (await git('ls-files')).stdout.split('\n').filter(Boolean);
    expect(tracked).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'cdk8s.yaml', 'tsconfig.json', 'vms/app.ts', 'vms/web.ts', 'dist/web.k8s.yaml', 'test/vms.test.ts', 'ci/check-dist.sh']));
    expect(tracked.filter((f) => /^(api|dsl|synth|launcher|reconciler|cli)\//.test(f))).toEqual([]);
    const repoPath = REPO.replace(/\/$/, '');
    for (const f of tracked) expect(fs.readFileSync(path.join(project, f), 'utf8'), f).not.toContain(repoPath);
  }, 600_000);
});
