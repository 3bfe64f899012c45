/**
 * The DSL's VirtualMachinePool: synthesized as one pool object (no VM or launcher Pod of its
 * own), its template a full VirtualMachine, the default selector on `kubevirt.io/vmpool`,
 * validation naming the construct path; the manifest expands (api/pool.ts) into valid VMs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chart } from 'cdk8s';
import YAML from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { expandPool } from '../../../api/pool.js';
import { validateManifest } from '../../../api/validate.js';
import { PoolScaleInOrder, VirtualMachinePool } from '../../../dsl/pool.js';
import { Size } from '../../../dsl/size.js';
import { Volume } from '../../../dsl/volume.js';
import { UserData } from '../../../dsl/cloud-init.js';
import { VirtopsApp } from '../../../synth/app.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function build(props: Partial<ConstructorParameters<typeof VirtualMachinePool>[2]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtops-pool-dsl-'));
  dirs.push(dir);
  const app = new VirtopsApp({ outdir: dir, crds: false, install: false });
  const chart = new Chart(app, 'pools', { namespace: 'lab' });
  const pool = new VirtualMachinePool(chart, 'web', { replicas: 3, template: { memory: { guest: Size.mebibytes(128) } }, ...props });
  pool.template.addDisk('root', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'));
  return { app, dir, pool };
}

describe('VirtualMachinePool construct', () => {
  it('synthesizes one pool object, no VM or Pod of its own', () => {
    const { app, dir } = build();
    app.synth();
    const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(dir, 'pools.k8s.yaml'), 'utf8')).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['VirtualMachinePool']);
    const pool = docs[0];
    expect(validateManifest(pool)).toEqual([]);
    expect(pool.metadata).toEqual({ name: 'web', namespace: 'lab' });
    expect(pool.spec.replicas).toBe(3);
    expect(pool.spec.selector).toEqual({ matchLabels: { 'kubevirt.io/vmpool': 'web' } });
    expect(pool.spec.virtualMachineTemplate.metadata.labels).toEqual({ 'kubevirt.io/vmpool': 'web' });
    expect(pool.spec.virtualMachineTemplate.spec.template.metadata.labels).toEqual({ 'kubevirt.io/vmpool': 'web' });
    expect(pool.spec.virtualMachineTemplate.spec.template.spec.volumes).toEqual([{ name: 'root', containerDisk: { image: 'quay.io/containerdisks/fedora:40' } }]);
    // What the reconciler makes of it: three valid VMs.
    const { vms } = expandPool(pool, { owned: [], taken: new Set() });
    expect(vms.map((v) => `${v.metadata.namespace}/${v.metadata.name}`)).toEqual(['lab/web-0', 'lab/web-1', 'lab/web-2']);
    for (const vm of vms) expect(validateManifest(vm)).toEqual([]);
  });

  it('nameGeneration, scale-in order, paused', () => {
    const { pool } = build({ appendIndexToSecretRefs: true, scaleInOrder: PoolScaleInOrder.ASCENDING, paused: true });
    const spec = pool.toManifest().spec;
    expect(spec.nameGeneration).toEqual({ appendIndexToSecretRefs: true });
    expect(spec.scaleInStrategy).toEqual({ proactive: { selectionPolicy: { sortPolicy: 'AscendingOrder' } } });
    expect(spec.paused).toBe(true);
  });

  it('a selector the template labels do not carry fails synth naming the construct and both fields', () => {
    const { app } = build({ selector: { tier: 'web' } });
    expect(() => app.synth()).toThrow(/pools\/web: spec\.selector: .*tier=web.*spec\.virtualMachineTemplate\.metadata\.labels/);
  });

  it("the template's own validation is reported at the pool's path", () => {
    const { app, pool } = build();
    pool.template.addDisk('ci', Volume.fromCloudInitNoCloud({ userData: UserData.fromString('#cloud-config\npassword: hunter2\n') }));
    expect(() => app.synth()).toThrow(/pools\/web\/template/);
  });

  it('refuses negative replicas at construction', () => {
    expect(() => build({ replicas: -1 })).toThrow(/replicas: must be a whole number/);
  });
});
