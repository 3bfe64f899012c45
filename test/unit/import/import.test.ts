import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ImportError, className, importManifests } from '../../../dsl/import/index.js';
import { cpuExpr, sizeExpr } from '../../../dsl/import/map.js';
import { print } from '../../../dsl/import/code.js';
import { cloudConfigExpr, networkConfigExpr } from '../../../dsl/import/cloud-init.js';
import { CloudConfig, NetworkConfig } from '../../../dsl/index.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

const minimal = (extra: Record<string, unknown> = {}, domain: Record<string, unknown> = {}) => YAML.stringify({
  apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'small', namespace: 'default' },
  spec: {
    runStrategy: 'Always',
    template: { spec: { domain: { memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [{ name: 'default', masquerade: {} }] }, ...domain },
      volumes: [{ name: 'root', containerDisk: { image: 'img' } }], networks: [{ name: 'default', pod: {} }], ...extra } },
  },
});

describe('importManifests: bad input', () => {
  it('reports malformed YAML with file, line and column', () => {
    const text = 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: x\n   bad: [1, 2\n';
    expect(() => importManifests(text, { fileName: 'vm.yaml' })).toThrow(ImportError);
    expect(() => importManifests(text, { fileName: 'vm.yaml' })).toThrow(/^vm\.yaml:4:9: malformed YAML: .*Fix: correct the YAML at line 4, column 9/);
  });
  it('reports a file without VMs', () => {
    expect(() => importManifests('apiVersion: v1\nkind: Service\nmetadata: {name: s}\n', { fileName: 'svc.yaml' }))
      .toThrow(/svc\.yaml: no VirtualMachine, VirtualMachineInstance .*\(1 other document skipped\)/);
  });
  it('rejects --name with several VMs, and names that are not identifiers', () => {
    expect(() => importManifests(fixture('vmi.yaml'), { className: 'X' })).toThrow(/--name was given but the file holds 2 VMs/);
    expect(() => importManifests(minimal(), { className: 'my-vm' })).toThrow(/not a TypeScript identifier/);
  });
});

describe('importManifests: output', () => {
  it('uses --name and the DSL module given', () => {
    const { code } = importManifests(minimal(), { className: 'Small', dslModule: '../dsl/index.js' });
    expect(code).toContain('export class Small extends Chart {');
    expect(code).toContain("} from '../dsl/index.js';".slice(2));
    expect(code).not.toContain('JsonPatch');
  });

  it('imports every VM/VMI of a multi-document file and notes the skipped documents', () => {
    const { virtualMachines, warnings } = importManifests(fixture('vmi.yaml'), { fileName: 'vmi.yaml' });
    expect(virtualMachines.map((v) => v.name)).toEqual(['testvmi-nocloud', 'second']);
    expect(warnings).toContain('vmi.yaml: document 2 (ConfigMap unrelated): not a KubeVirt VirtualMachine/VirtualMachineInstance; skipped');
  });

  it('reads kubectl List output', () => {
    const list = YAML.stringify({ apiVersion: 'v1', kind: 'List', items: [YAML.parse(minimal())] });
    expect(importManifests(list).virtualMachines.map((v) => v.name)).toEqual(['small']);
  });

  it('carries unmodelled fields as JSON patches and warns once per field', () => {
    const { code, warnings } = importManifests(minimal({ priorityClassName: 'high' }, { ioThreadsPolicy: 'auto' }), { fileName: 'f.yaml' });
    expect(code).toContain("this.vm.apiObject.addJsonPatch(JsonPatch.add('/spec/template/spec/priorityClassName', 'high'));");
    expect(code).toContain("JsonPatch.add('/spec/template/spec/domain/ioThreadsPolicy', 'auto')");
    expect(warnings.filter((w) => w.includes('carried through as a JSON patch'))).toEqual([
      "f.yaml: VirtualMachine default/small: spec.template.spec.domain.ioThreadsPolicy: not modelled by the DSL's props; carried through as a JSON patch (vm.apiObject.addJsonPatch)",
      "f.yaml: VirtualMachine default/small: spec.template.spec.priorityClassName: not modelled by the DSL's props; carried through as a JSON patch (vm.apiObject.addJsonPatch)",
    ].sort((a, b) => (a.includes('ioThreads') ? -1 : b.includes('ioThreads') ? 1 : 0)));
  });

  it('keeps plain-text passwords, marks them allowed with a TODO, and warns', () => {
    const { code, warnings } = importManifests(fixture('kubevirt-smoke-fedora.yaml'));
    expect(code).toContain('allowPlaintextSecrets: true, // TODO move to a Secret (secretRef)');
    expect(code).toContain('password: changeme');
    expect(warnings.some((w) => /plain-text password .*UserData\.fromSecret/.test(w))).toBe(true);
  });

  it('uses the cloud-config builder only when it re-renders the user-data exactly', () => {
    expect(importManifests(fixture('multus.yaml')).code).toContain('UserData.fromCloudConfig(new CloudConfig({');
    expect(importManifests(fixture('kubevirt-smoke-fedora.yaml')).code).toContain('UserData.fromString(`#cloud-config');
  });

  it('writes 2-space indented code, no line over 110 columns except user-data text', () => {
    for (const f of ['windows.yaml', 'datavolume.yaml', 'multus.yaml']) {
      const { code } = importManifests(fixture(f));
      for (const line of code.split('\n')) {
        expect(/^( {2})*\S/.test(line) || line === '', `${f}: ${line}`).toBe(true);
      }
    }
  });
});

describe('sizes and CPU amounts', () => {
  it.each([
    ['4Gi', 'Size.gibibytes(4)'], ['128Mi', 'Size.mebibytes(128)'], ['2048Mi', "Size.parse('2048Mi')"],
    ['4G', "Size.parse('4G')"], ['1000', 'Size.bytes(1000)'], ['1024', "Size.parse('1024')"], ['1Ti', 'Size.tebibytes(1)'], ['1.5Gi', "Size.parse('1.5Gi')"],
  ])('size %s → %s', (q, code) => expect(print(sizeExpr(q)!)).toBe(code));
  it('leaves what Size cannot hold to the JSON patch', () => {
    expect(sizeExpr('500m')).toBeUndefined();
    expect(sizeExpr(1024)).toBeUndefined();
  });
  it.each([['2', 'Cpu.units(2)'], ['500m', 'Cpu.millis(500)'], ['1.5', "Cpu.parse('1.5')"]])('cpu %s → %s', (q, code) => {
    expect(print(cpuExpr(q)!)).toBe(code);
  });
});

describe('cloud-init builders', () => {
  it('round-trips what CloudConfig renders', () => {
    const config = new CloudConfig({
      hostname: 'h', users: [{ name: 'u', groups: ['wheel', 'adm'], sudo: 'ALL=(ALL) NOPASSWD:ALL', sshAuthorizedKeys: ['k'], extra: { homedir: '/h' } }],
      packages: ['a'], writeFiles: [{ path: '/etc/x', content: 'y\n', permissions: '0600' }], runcmd: [['echo', 'hi'], 'ls'], extra: { timezone: 'UTC' },
    });
    const text = config.render();
    expect(cloudConfigExpr(text)).toBeDefined();
  });
  it('declines documents it would change (comments, other key order, no header)', () => {
    expect(cloudConfigExpr('#cloud-config\n# a comment\nhostname: h\n')).toBeUndefined();
    expect(cloudConfigExpr('#cloud-config\npackages: [a]\nhostname: h\n')).toBeUndefined();
    expect(cloudConfigExpr('hostname: h\n')).toBeUndefined();
    expect(cloudConfigExpr('#!/bin/sh\necho hi\n')).toBeUndefined();
  });
  it('uses NetworkConfig.dhcp for the common case', () => {
    expect(print(networkConfigExpr(NetworkConfig.dhcp('eth0').render())!)).toBe("NetworkConfig.dhcp('eth0')");
  });
});

describe('className', () => {
  it.each([['kubevirt-smoke-fedora', 'KubevirtSmokeFedora'], ['db-01', 'Db01'], ['01-web', 'Vm01Web'], ['a.b', 'AB']])('%s → %s', (n, c) => {
    expect(className(n)).toBe(c);
  });
});
