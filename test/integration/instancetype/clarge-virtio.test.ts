/**
 * KubeVirt's instancetype example end to end: vm-cirros-clarge-virtio.yaml with clarge.yaml
 * (4 vCPUs, 2Gi) and virtio.yaml (virtio disks and NICs), through the real `virtops
 * domain-xml` and `virtops expand` in a child process, then the expanded VM's domain defined
 * in the real libvirtd (qemu:///system, TCG) and read back. Defined, not started: 2 GiB and 4
 * vCPUs under TCG on this 2-core host would only slow the suite; the boot path is the same as
 * any VM's (test/integration/standalone).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { expandVm, resolverFor } from '../../../api/expand.js';
import { vmiFromVm, type VirtualMachine } from '../../../api/kubevirt.js';
import { convertVmi, nodeContext } from '../../../launcher/convert/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const F = (name: string): string => join(fixtures, name);
const URI = 'qemu:///system';
const virsh = (...args: string[]): string => execFileSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', stdio: 'pipe' });

const dir = mkdtempSync(join(tmpdir(), 'virtops-instancetype-'));
const defined: string[] = [];

afterAll(() => {
  for (const name of defined) {
    try {
      virsh('undefine', name, '--nvram');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const load = (file: string): unknown[] => parseAllDocuments(readFileSync(F(file), 'utf8')).map((d) => d.toJS()).filter(Boolean);

describe('KubeVirt example vm-cirros-clarge-virtio', () => {
  it('virtops domain-xml: 4 vCPUs, 2 GiB, virtio disks and NIC', () => {
    const r = cli('domain-xml', F('vm-cirros-clarge-virtio.yaml'), '-f', F('clarge.yaml'), '-f', F('virtio.yaml'), '--emulation', 'tcg');
    expect(r.stderr).not.toMatch(/^virtops:/m);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('<vcpu placement="static">4</vcpu>');
    expect(r.stdout).toContain('<topology sockets="4" dies="1" cores="1" threads="1"/>');
    expect(r.stdout).toContain(`<memory unit="b">${2 * 2 ** 30}</memory>`);
    expect(r.stdout).toContain('<target dev="vda" bus="virtio"/>');
    expect(r.stdout).toContain('<target dev="vdb" bus="virtio"/>');
    expect(r.stdout).toMatch(/<interface type="user">[\s\S]*?<model type="virtio"\/>/);
  });

  it('the same files in one multi-document file need no -f', () => {
    const all = join(dir, 'all.yaml');
    writeFileSync(all, ['clarge.yaml', 'virtio.yaml', 'vm-cirros-clarge-virtio.yaml'].map((f) => readFileSync(F(f), 'utf8')).join('\n'));
    const r = cli('domain-xml', all, '--emulation', 'tcg');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('<vcpu placement="static">4</vcpu>');
  });

  it('without the instancetype and preference: an error naming each reference, no 1-vCPU/128 MiB default', () => {
    const r = cli('domain-xml', F('vm-cirros-clarge-virtio.yaml'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('spec.instancetype.name: VirtualMachineInstancetype "clarge" in namespace "default" not found');
    expect(r.stderr).toContain('spec.preference.name: VirtualMachinePreference "virtio" in namespace "default" not found');
  });

  it('the current upstream file (memory.guest 128Mi beside clarge) is refused naming both fields, as KubeVirt refuses it', () => {
    const r = cli('domain-xml', F('vm-cirros-clarge-virtio-current.yaml'), '-f', F('clarge.yaml'), '-f', F('virtio.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('VM field(s) spec.template.spec.domain.memory.guest conflicts with selected instance type (VirtualMachineInstancetype clarge sets spec.memory.guest)');
  });

  it('virtops expand prints the expanded VM without matchers (YAML and -o json)', () => {
    const y = cli('expand', F('vm-cirros-clarge-virtio.yaml'), '-f', F('clarge.yaml'), '-f', F('virtio.yaml'));
    expect(y.code).toBe(0);
    const vm = parse(y.stdout) as VirtualMachine;
    expect(vm.spec.instancetype).toBeUndefined();
    expect(vm.spec.preference).toBeUndefined();
    expect(vm.spec.template.spec.domain.cpu).toEqual({ sockets: 4, cores: 1, threads: 1 });
    expect(vm.spec.template.spec.domain.memory).toEqual({ guest: '2Gi' });
    const j = cli('expand', F('vm-cirros-clarge-virtio.yaml'), 'vm-cirros-clarge-virtio', '-f', F('clarge.yaml'), '-f', F('virtio.yaml'), '-o', 'json');
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual(vm);
  });

  it('the expanded domain defines in the real libvirtd with 4 vCPUs, 2 GiB and virtio buses', () => {
    const vm = load('vm-cirros-clarge-virtio.yaml')[0] as VirtualMachine;
    const r = expandVm(vm, resolverFor([...load('clarge.yaml'), ...load('virtio.yaml')]));
    if ('errors' in r) throw new Error(JSON.stringify(r.errors));
    const vmi = vmiFromVm(r.vm, '6f1c2d3e-0000-4000-8000-00000000c1a6');
    vmi.metadata.name = `clarge-${process.pid}`;
    vmi.metadata.namespace = 'virtops-test';
    const { xml } = convertVmi(vmi, nodeContext(vmi, { emulation: 'tcg', stateDir: join(dir, 'state') }));
    const file = join(dir, 'domain.xml');
    writeFileSync(file, xml);
    const name = `virtops-test_clarge-${process.pid}`;
    defined.push(name);
    virsh('define', file);
    const back = virsh('dumpxml', '--inactive', name);
    expect(back).toContain("<vcpu placement='static'>4</vcpu>");
    expect(back).toContain("<topology sockets='4' dies='1' cores='1' threads='1'/>");
    expect(back).toContain("<memory unit='KiB'>2097152</memory>");
    expect(back).toContain("<target dev='vda' bus='virtio'/>");
    expect(back).toContain("<target dev='vdb' bus='virtio'/>");
    expect(back).toMatch(/<interface type='user'>[\s\S]*?<model type='virtio'\/>/);
  });
});
