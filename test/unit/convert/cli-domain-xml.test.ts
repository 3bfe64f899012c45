/** `virtops domain-xml` end to end: the real CLI in a child process, real files. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { podDir } from '../../../reconciler/agent/host-config.js';
import { schemaProblems } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'domain-xml', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const vm = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name, namespace: 'lab' },
  spec: {
    runStrategy: 'Always',
    template: {
      spec: {
        domain: { memory: { guest: '256Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, ...extra },
        volumes: [{ name: 'root', containerDisk: { image: 'quay.io/containerdisks/cirros:0.6' } }],
      },
    },
  },
});

describe('virtops domain-xml', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'virtops-cli-domain-xml-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('converts a VM from a multi-document YAML file, with the paths virtops up --state-dir lays out', () => {
    const file = write('vm.yaml', `${stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })}---\n${stringify(vm('web', { cpu: { model: 'host-passthrough' } }))}`);
    const r = cli(file, '--emulation', 'tcg', '--state-dir', '/srv/virtops');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('<domain type="qemu">');
    expect(r.stdout).toContain('<name>lab_web</name>');
    // The launcher Pod's emptyDirs under <state-dir>/pods/<podKey(ns, name)>, the overlay in the instance's ephemeral dir.
    const pod = podDir('/srv/virtops', 'lab', 'web');
    expect(r.stdout).toContain(`<source file="${pod}/ephemeral-disks/volumes/ephemeral/00000000-0000-0000-0000-000000000000/root.qcow2"/>`);
    expect(r.stdout).toContain('<source file="/srv/virtops/images/images/&lt;digest of quay.io/containerdisks/cirros:0.6&gt;/files/disk"/>');
    expect(r.stdout).toContain(`path="${pod}/public/sockets/serial0"`);
    expect(r.stdout).toContain(`<log file="${pod}/public/logs/lab_web-serial0.log"`);
    expect(r.stderr).toMatch(/^note: instance uid 0{8}-.* pass --uid/m);
    expect(r.stderr).toMatch(/^note: root: the backing file is extracted into the image store/m);
    expect(r.stderr).toMatch(/^warning: spec\.domain\.cpu\.model: "host-passthrough" needs KVM/m);
    expect(schemaProblems(r.stdout)).toBeUndefined();
  });

  it('converts a VMI given as JSON (defaults: kvm, /var/lib/virtops)', () => {
    const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'one', namespace: 'lab' }, spec: vm('one').spec.template.spec };
    const r = cli(write('vmi.json', JSON.stringify(vmi)), '--uid', 'abc-1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('<domain type="kvm">');
    expect(r.stdout).toContain(`${podDir('/var/lib/virtops', 'lab', 'one')}/ephemeral-disks/volumes/ephemeral/abc-1/root.qcow2`);
  });

  it('asks for --name when the file holds several VMs, and honours it', () => {
    const file = write('two.yaml', `${stringify(vm('a'))}---\n${stringify(vm('b'))}`);
    const r = cli(file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('holds 2 VMs/VMIs (VirtualMachine lab/a, VirtualMachine lab/b). Fix: choose one with --name');
    const picked = cli(file, '--name', 'b');
    expect(picked.code).toBe(0);
    expect(picked.stdout).toContain('<name>lab_b</name>');
  });

  it('reports malformed YAML with its line number', () => {
    const r = cli(write('bad.yaml', 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: [oops\n'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: malformed YAML\/JSON/);
    expect(r.stderr).toMatch(/bad\.yaml:(4|5):/);
  });

  it('reports an invalid VMI with the field path and the fix, exit 1', () => {
    const r = cli(write('invalid.yaml', stringify(vm('web', { devices: { disks: [{ name: 'root', cdrom: { bus: 'virtio' } }] } }))));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('VirtualMachine lab/web: spec.domain.devices.disks[0].cdrom.bus: "virtio" is not a bus a cdrom can use. Fix: use one of sata, scsi');
  });

  it('says what it found when there is no VM', () => {
    const r = cli(write('pod.yaml', stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no VirtualMachine, VirtualMachineInstance or VirtualMachinePool (found: Pod)');
  });

  it('rejects an unknown --emulation', () => {
    const r = cli(write('vm2.yaml', stringify(vm('a'))), '--emulation', 'hvf');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('use kvm or tcg');
  });
});
