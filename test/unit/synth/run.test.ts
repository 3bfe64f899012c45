/**
 * `virtops synth` end to end: real app processes (the repo's vms/main.ts and small cdk8s
 * apps written into a temp project), real files, real validation.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSynth, formatCheck, runSynth, SynthError } from '../../../synth/run.js';
import { validateManifest } from '../../../api/validate.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const tsx = path.join(repo, 'node_modules/.bin/tsx');
const temps: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(temps.map((d) => fs.rm(d, { recursive: true, force: true })));
});

/** A project dir with its own cdk8s.yaml and app.ts; node_modules links to the repo's. */
async function fixtureProject(appSource: string): Promise<string> {
  const dir = await tempDir('virtops-synth-fixture-');
  await fs.symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  await fs.writeFile(path.join(dir, 'cdk8s.yaml'), `language: typescript\napp: ${tsx} app.ts\noutput: dist\n`);
  await fs.writeFile(path.join(dir, 'app.ts'), appSource.replaceAll('@repo', repo));
  await fs.mkdir(path.join(dir, 'dist'));
  await fs.writeFile(path.join(dir, 'dist', 'sentinel.k8s.yaml'), 'previous: content\n');
  return dir;
}

/**
 * A cdk8s app with one VM construct that follows the DSL's contract (static isVirtualMachine,
 * toManifest, an ApiObject child), so VirtopsApp attaches its launcher Pod.
 */
const vmApp = (cpu: string) => `
import { ApiObject, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { VirtopsApp } from '@repo/synth/app.ts';
class Vm extends Construct {
  static isVirtualMachine(x: unknown): boolean { return x instanceof Vm; }
  readonly manifest = {
    apiVersion: 'kubevirt.io/v1' as const, kind: 'VirtualMachine' as const, metadata: { name: 'a', namespace: 'default' },
    spec: { runStrategy: 'Halted' as const, template: { spec: { domain: { cpu: ${cpu} as any, memory: { guest: '64Mi' }, devices: {} } } } },
  };
  constructor(scope: Construct, id: string) { super(scope, id); new ApiObject(this, 'Resource', this.manifest); }
  toManifest() { return this.manifest; }
}
const app = new VirtopsApp({ crds: false, install: false });
new Vm(new Chart(app, 'fleet'), 'a');
app.synth();
`;

async function distState(dir: string): Promise<string[]> {
  const names = await fs.readdir(path.join(dir, 'dist'));
  const siblings = (await fs.readdir(dir)).filter((n) => n.startsWith('.dist'));
  return [...names.sort(), ...siblings.map((s) => `leftover:${s}`)];
}

describe('runSynth on fixture apps', () => {
  it('writes nothing when the app fails, and shows its output', async () => {
    const dir = await fixtureProject(`console.error('boom: no VMs today'); process.exit(3);`);
    const err = await runSynth({ cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SynthError);
    expect((err as Error).message).toMatch(/failed \(exit 3\)[\s\S]*boom: no VMs today/);
    expect(await distState(dir)).toEqual(['sentinel.k8s.yaml']);
  });

  it('writes nothing when cdk8s validation fails inside the app', async () => {
    const dir = await fixtureProject(`
import { Chart } from 'cdk8s';
import { VirtopsApp } from '@repo/synth/app.ts';
const app = new VirtopsApp({ crds: false, install: false });
const chart = new Chart(app, 'c');
chart.node.addValidation({ validate: () => ['disk "root" has no volume'] });
app.synth();
`);
    await expect(runSynth({ cwd: dir })).rejects.toThrow(/disk "root" has no volume/);
    expect(await distState(dir)).toEqual(['sentinel.k8s.yaml']);
  });

  it('writes nothing when an emitted VM is invalid, naming file, object, path and fix', async () => {
    const dir = await fixtureProject(vmApp('{ corse: 2 }'));
    const err = (await runSynth({ cwd: dir }).catch((e: unknown) => e)) as SynthError;
    expect(err).toBeInstanceOf(SynthError);
    expect(err.message).toContain("fleet.k8s.yaml: VirtualMachine default/a: /spec/template/spec/domain/cpu/corse: unknown field 'corse' (fix: did you mean 'cores'?)");
    expect(err.problems).toHaveLength(1);
    expect(await distState(dir)).toEqual(['sentinel.k8s.yaml']);
  });

  it('still validates a raw VM that shares its name with a DSL VM the app validated itself', async () => {
    // The DSL VM reports itself as validated (VIRTOPS_SYNTH_VALIDATED_REPORT); synth skips a
    // name only when the file holds exactly as many VMs of that name as the app checked.
    const dir = await fixtureProject(`
import { ApiObject, Chart } from 'cdk8s';
import { VirtopsApp } from '@repo/synth/app.ts';
import { Size, VirtualMachine } from '@repo/dsl/index.ts';
const app = new VirtopsApp({ crds: false, install: false });
const chart = new Chart(app, 'fleet', { namespace: 'default' });
new VirtualMachine(chart, 'a', { memory: { guest: Size.mebibytes(64) } });
new ApiObject(chart, 'raw', { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a', namespace: 'default' },
  spec: { runStrategy: 'Halted', template: { spec: { domain: { cpu: { corse: 2 }, devices: {} } } } } });
app.synth();
`);
    const err = (await runSynth({ cwd: dir }).catch((e: unknown) => e)) as SynthError;
    expect(err).toBeInstanceOf(SynthError);
    expect(err.message).toContain("fleet.k8s.yaml: VirtualMachine default/a: /spec/template/spec/domain/cpu/corse: unknown field 'corse'");
    expect(err.message).toContain('kubevirt.io/v1/VirtualMachine/default/a is also declared in fleet.k8s.yaml');
    expect(err.problems).toHaveLength(2);
    expect(await distState(dir)).toEqual(['sentinel.k8s.yaml']);
  }, 30_000);

  it('refuses two VMs of one name in one namespace (in different charts), naming both files', async () => {
    const dir = await fixtureProject(`
import { Chart } from 'cdk8s';
import { VirtopsApp } from '@repo/synth/app.ts';
import { Size, VirtualMachine } from '@repo/dsl/index.ts';
const app = new VirtopsApp({ crds: false, install: false });
new VirtualMachine(new Chart(app, 'one', { namespace: 'lab' }), 'web', { memory: { guest: Size.mebibytes(64) } });
new VirtualMachine(new Chart(app, 'two', { namespace: 'lab' }), 'web', { memory: { guest: Size.mebibytes(64) } });
app.synth();
`);
    const err = (await runSynth({ cwd: dir }).catch((e: unknown) => e)) as SynthError;
    expect(err).toBeInstanceOf(SynthError);
    expect(err.message).toMatch(/two\.k8s\.yaml: VirtualMachine lab\/web: \/metadata\/name: kubevirt\.io\/v1\/VirtualMachine\/lab\/web is also declared in one\.k8s\.yaml/);
    expect(await distState(dir)).toEqual(['sentinel.k8s.yaml']);
  }, 30_000);

  it('replaces dist/ as a whole on success (stale files go), then --check is clean', async () => {
    const dir = await fixtureProject(vmApp('{ cores: 2 }'));
    const result = await runSynth({ cwd: dir });
    expect(result).toMatchObject({ out: path.join(dir, 'dist'), files: ['fleet.k8s.yaml'], objects: 2 });
    expect(await distState(dir)).toEqual(['fleet.k8s.yaml']);
    expect((await fs.stat(path.join(dir, 'dist'))).mode & 0o777).toBe(0o755);
    const docs = YAML.parseAllDocuments(await fs.readFile(path.join(dir, 'dist/fleet.k8s.yaml'), 'utf8')).map((d) => d.toJS());
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(['VirtualMachine/a', 'Pod/virt-launcher-a']);

    expect(await checkSynth({ cwd: dir })).toEqual({ upToDate: true, differing: [], missing: [], extra: [] });
  });

  it('--check lists differing, missing and extra files', async () => {
    const dir = await fixtureProject(vmApp('{ cores: 2 }'));
    await runSynth({ cwd: dir });
    await fs.appendFile(path.join(dir, 'dist/fleet.k8s.yaml'), '# hand edit\n');
    await fs.writeFile(path.join(dir, 'dist/old.k8s.yaml'), 'x: 1\n');
    let r = await checkSynth({ cwd: dir });
    expect(r).toEqual({ upToDate: false, differing: ['fleet.k8s.yaml'], missing: [], extra: ['old.k8s.yaml'] });
    expect(formatCheck(r, 'dist')).toMatch(/stale[\s\S]*differs: fleet\.k8s\.yaml[\s\S]*extra: +old\.k8s\.yaml/);
    await fs.rm(path.join(dir, 'dist/fleet.k8s.yaml'));
    r = await checkSynth({ cwd: dir });
    expect(r.missing).toEqual(['fleet.k8s.yaml']);
  });
});

describe('the repository app (vms/)', () => {
  let out: string;
  let objects: Record<string, any>[] = [];

  beforeAll(async () => {
    out = path.join(await tempDir('virtops-synth-vms-'), 'dist');
    await runSynth({ cwd: repo, out });
    for (const f of await fs.readdir(out)) {
      const docs = YAML.parseAllDocuments(await fs.readFile(path.join(out, f), 'utf8'));
      objects.push(...docs.map((d) => ({ ...d.toJS(), _file: f })));
    }
  }, 60_000);

  it('every synthesized VirtualMachine validates against v1.VirtualMachine', () => {
    const vms = objects.filter((o) => o.kind === 'VirtualMachine');
    expect(vms.length).toBeGreaterThan(0);
    for (const { _file, ...vm } of vms) expect(validateManifest(vm), `${_file}: ${vm.metadata.name}`).toEqual([]);
  });

  it('each VM has its launcher Pod in the same file, plus CRDs and install manifests', () => {
    for (const vm of objects.filter((o) => o.kind === 'VirtualMachine')) {
      const pod = objects.find((o) => o.kind === 'Pod' && o.metadata.name === `virt-launcher-${vm.metadata.name}`);
      expect(pod?._file).toBe(vm._file);
      expect(pod?.metadata.labels['vm.kubevirt.io/name']).toBe(vm.metadata.name);
    }
    const files = new Set(objects.map((o) => o._file));
    expect(files).toContain('crds.k8s.yaml');
    expect(files).toContain('install.k8s.yaml');
  });

  it('the committed dist/ is fresh: `virtops synth --check` exits 0', async () => {
    const r = await execa(tsx, ['cli/main.ts', 'synth', '--check'], { cwd: repo, reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stdout).toMatch(/up to date/);
  }, 60_000);
});

describe('VirtopsApp with a VM it cannot render', () => {
  it('fails through cdk8s validation with the construct path and the field', async () => {
    const dir = await fixtureProject(vmApp("{ cores: 1 }").replace("guest: '64Mi'", "guest: '64 MB'"));
    const err = (await runSynth({ cwd: dir }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/\[fleet\/a\] \/spec\/template\/spec\/domain\/memory\/guest: '64 MB' is not a valid quantity/);
    expect(await distState(dir)).toEqual(['sentinel.k8s.yaml']);
  });
});
