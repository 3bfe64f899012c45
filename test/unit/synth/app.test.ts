import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiObject, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import YAML from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { isVirtualMachineConstruct, LAUNCHER_POD_ID, VirtopsApp } from '../../../synth/app.js';
import { fixtureVm } from './fixtures.js';

/** Follows the DSL's VirtualMachine contract (dsl/virtual-machine.ts). */
class Vm extends Construct {
  static isVirtualMachine(x: unknown): x is Vm {
    return x instanceof Vm;
  }
  constructor(scope: Construct, id: string, private readonly manifest: api.VirtualMachine) {
    super(scope, id);
    new ApiObject(this, 'Resource', manifest as unknown as ConstructorParameters<typeof ApiObject>[2]);
  }
  toManifest(): api.VirtualMachine {
    return this.manifest;
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function outdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-app-test-'));
  dirs.push(d);
  return d;
}
const read = (dir: string, file: string) => YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8')).map((d) => d.toJS());

describe('VirtopsApp', () => {
  it('writes one <chart-id>.k8s.yaml per chart with each VM followed by its launcher Pod', () => {
    const dir = outdir();
    const app = new VirtopsApp({ outdir: dir });
    const chart = new Chart(app, 'web');
    new Vm(chart, 'a', fixtureVm((v) => { v.metadata.name = 'a'; }));
    new Vm(chart, 'b', fixtureVm((v) => { v.metadata.name = 'b'; }));
    app.synth();
    expect(fs.readdirSync(dir).sort()).toEqual(['crds.k8s.yaml', 'install.k8s.yaml', 'web.k8s.yaml']);
    expect(read(dir, 'web.k8s.yaml').map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'VirtualMachine/a', 'Pod/virt-launcher-a', 'VirtualMachine/b', 'Pod/virt-launcher-b',
    ]);
    expect(read(dir, 'crds.k8s.yaml').map((o) => o.metadata.name)).toEqual([
      'virtualmachines.kubevirt.io', 'virtualmachineinstances.kubevirt.io',
      'virtualmachineinstancetypes.instancetype.kubevirt.io', 'virtualmachineclusterinstancetypes.instancetype.kubevirt.io',
      'virtualmachinepreferences.instancetype.kubevirt.io', 'virtualmachineclusterpreferences.instancetype.kubevirt.io', 'virtualmachinepools.pool.kubevirt.io',
      'virtualmachinesnapshots.snapshot.kubevirt.io', 'virtualmachinerestores.snapshot.kubevirt.io', 'datavolumes.cdi.kubevirt.io',
    ]);
  });

  it('names files after the chart id without hashes, nested charts by path', () => {
    const dir = outdir();
    const app = new VirtopsApp({ outdir: dir, crds: false, install: false });
    new Vm(new Chart(app, 'Web_Servers'), 'a', fixtureVm());
    new Vm(new Chart(new Construct(app, 'team'), 'db'), 'b', fixtureVm((v) => { v.metadata.name = 'b'; }));
    app.synth();
    expect(fs.readdirSync(dir).sort()).toEqual(['team-db.k8s.yaml', 'web-servers.k8s.yaml']);
  });

  it('keeps file names stable when charts depend on each other (no 0000- prefix)', () => {
    const dir = outdir();
    const app = new VirtopsApp({ outdir: dir, crds: false, install: false });
    const base = new Chart(app, 'base');
    const web = new Chart(app, 'web');
    new ApiObject(base, 'ns', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } });
    new Vm(web, 'a', fixtureVm());
    web.addDependency(base);
    app.synth();
    expect(fs.readdirSync(dir).sort()).toEqual(['base.k8s.yaml', 'web.k8s.yaml']);
  });

  it('refuses two charts that would share a file', () => {
    const app = new VirtopsApp({ outdir: outdir(), crds: false, install: false });
    new Chart(app, 'group-web');
    new Chart(new Construct(app, 'group'), 'web');
    expect(() => app.synth()).toThrow(/'group-web' and 'group\/web' would both be written to group-web\.k8s\.yaml/);
  });

  it('attaches launcher Pods once, however often synth runs', () => {
    const app = new VirtopsApp({ outdir: outdir(), crds: false, install: false });
    const vm = new Vm(new Chart(app, 'web'), 'a', fixtureVm());
    expect(app.attachLauncherPods()).toBe(1);
    expect(app.attachLauncherPods()).toBe(0);
    app.synth();
    expect(vm.node.tryFindChild(LAUNCHER_POD_ID)).toBeDefined();
  });

  it('recognises VM constructs by their class, not by shape alone', () => {
    const app = new VirtopsApp({ outdir: outdir(), crds: false, install: false });
    const chart = new Chart(app, 'c');
    const lookalike = Object.assign(new Construct(chart, 'x'), { toManifest: () => fixtureVm() });
    expect(isVirtualMachineConstruct(lookalike)).toBe(false);
    expect(isVirtualMachineConstruct(new Vm(chart, 'vm', fixtureVm()))).toBe(true);
  });

  it('writes to $CDK8S_OUTDIR by default', () => {
    const dir = outdir();
    const prev = process.env.CDK8S_OUTDIR;
    process.env.CDK8S_OUTDIR = dir;
    try {
      expect(new VirtopsApp().outdir).toBe(dir);
    } finally {
      if (prev === undefined) delete process.env.CDK8S_OUTDIR;
      else process.env.CDK8S_OUTDIR = prev;
    }
  });
});
