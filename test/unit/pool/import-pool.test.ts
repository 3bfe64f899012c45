/**
 * `virtops import` of KubeVirt's examples/vm-pool-cirros.yaml: DSL code with a
 * VirtualMachinePool whose template is imported like a VM; the generated module, run with
 * tsx in a VirtopsApp, synthesizes a pool equal to the input (kubectl-dump nulls dropped)
 * and no VM of its own. VirtualMachineInstanceReplicaSet/Preset are refused naming the
 * replacement.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { validateManifest } from '../../../api/validate.js';
import { importManifests } from '../../../dsl/import/index.js';
import { instanceFromText } from '../../../cli/commands/domain-xml-run.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const fixture = (name: string) => fs.readFileSync(path.join(REPO, 'test/unit/pool/fixtures', `${name}.yaml`), 'utf8');
const work = fs.mkdtempSync(path.join(REPO, 'test/unit/pool/.import-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('virtops import of a VirtualMachinePool', () => {
  it("vm-pool-cirros.yaml → a VirtualMachinePool chart that synthesizes the input", async () => {
    const r = importManifests(fixture('vm-pool-cirros'), { fileName: 'vm-pool-cirros.yaml', dslModule: path.relative(work, path.join(REPO, 'dsl/index.js')) });
    expect(r.code).toContain('export class VmPoolCirros extends Chart');
    expect(r.code).toContain("new VirtualMachinePool(this, 'pool', {");
    expect(r.code).toContain('replicas: 3,');
    expect(r.code).toContain("this.pool.template.addDisk('containerdisk'");
    expect(r.code).not.toMatch(/selector:/); // kubevirt.io/vmpool: <name> is the DSL's default
    fs.writeFileSync(path.join(work, 'pool.ts'), r.code);
    fs.writeFileSync(path.join(work, 'main.ts'), [
      `import { VirtopsApp } from '${path.relative(work, path.join(REPO, 'synth/app.js'))}';`,
      "import { VmPoolCirros } from './pool.js';",
      "const app = new VirtopsApp({ crds: false, install: false });",
      'new VmPoolCirros(app);',
      'app.synth();',
    ].join('\n'));
    const out = path.join(work, 'dist');
    await execa('npx', ['tsx', path.join(work, 'main.ts')], { cwd: REPO, env: { CDK8S_OUTDIR: out } });
    const docs = fs.readdirSync(out).flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(path.join(out, f), 'utf8')).map((d) => d.toJS()));
    expect(docs.map((d) => d.kind)).toEqual(['VirtualMachinePool']);
    const input = YAML.parse(fixture('vm-pool-cirros'));
    delete input.spec.virtualMachineTemplate.metadata.creationTimestamp;
    delete input.spec.virtualMachineTemplate.spec.template.metadata.creationTimestamp;
    const got = docs[0];
    expect(validateManifest(got)).toEqual([]);
    // The DSL writes namespace default and spells out KubeVirt's defaults (machine type etc.) only where the input has them.
    expect(got.spec.replicas).toBe(3);
    expect(got.spec.selector).toEqual(input.spec.selector);
    expect(got.spec.virtualMachineTemplate.metadata).toEqual(input.spec.virtualMachineTemplate.metadata);
    expect(got.spec.virtualMachineTemplate.spec.template.spec.volumes).toEqual(input.spec.virtualMachineTemplate.spec.template.spec.volumes);
    expect(got.spec.virtualMachineTemplate.spec.template.spec.domain.memory).toEqual({ guest: '128Mi' });
    expect(got.spec.virtualMachineTemplate.spec.runStrategy).toBe('Always');
  }, 120_000);

  it('refuses VirtualMachineInstanceReplicaSet and VirtualMachineInstancePreset naming the replacement', () => {
    expect(() => importManifests(fixture('vmi-replicaset-cirros'), { fileName: 'rs.yaml' })).toThrow(/rs\.yaml: document 1: VirtualMachineInstanceReplicaSet vmi-replicaset-cirros is not supported by virtops\. Fix: use a VirtualMachinePool/);
    expect(() => importManifests(fixture('vmi-preset-small'), { fileName: 'preset.yaml' })).toThrow(/VirtualMachineInstancePreset vmi-preset-small is not supported by virtops\. Fix: use instancetypes and preferences/);
  });

  it('refuses pool fields virtops does not carry out, by name', () => {
    const p = YAML.parse(fixture('vm-pool-cirros'));
    p.spec.autohealing = {};
    expect(() => importManifests(YAML.stringify(p), { fileName: 'p.yaml' })).toThrow(/spec\.autohealing is not supported by virtops/);
  });
});

describe('virtops domain-xml of a pool file', () => {
  it("previews the pool's first VM, or the one --name picks", () => {
    expect(instanceFromText(fixture('vm-pool-cirros'), 'p.yaml').vmi.metadata.name).toBe('vm-pool-cirros-0');
    const third = instanceFromText(fixture('vm-pool-cirros'), 'p.yaml', 'vm-pool-cirros-2');
    expect(third.vmi.metadata.name).toBe('vm-pool-cirros-2');
    expect(third.source).toBe('VirtualMachine default/vm-pool-cirros-2');
  });

  it('refuses VirtualMachineInstanceReplicaSet and VirtualMachineInstancePreset naming the replacement', () => {
    expect(() => instanceFromText(fixture('vmi-replicaset-cirros'), 'rs.yaml')).toThrow(/VirtualMachineInstanceReplicaSet default\/vmi-replicaset-cirros is not supported by virtops\. Fix: use a VirtualMachinePool/);
    expect(() => instanceFromText(fixture('vmi-preset-small'), 'ps.yaml')).toThrow(/Fix: use instancetypes and preferences/);
  });
});
