import { describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { checkSnapshotRules, defaultRestoreName, defaultSnapshotName, parseDuration, planRestore, restoreStatus, snapshotStatus, snapshotVolumes } from '../../../api/snapshot.js';
import { validateManifest } from '../../../api/validate.js';
import { backupXml, jobType } from '../../../launcher/volumes/snapshot.js';
import { formatRestores, formatSnapshots } from '../../../cli/commands/storage-format.js';

const vm = (volumes: unknown[]): VirtualMachine => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'web', namespace: 'default' },
  spec: { template: { spec: { domain: { devices: {} }, volumes } } },
} as unknown as VirtualMachine);

describe('snapshotVolumes', () => {
  it('claims, DataVolumes and hostDisks are taken; the rest is excluded', () => {
    const r = snapshotVolumes(vm([
      { name: 'root', dataVolume: { name: 'web-root' } },
      { name: 'data', persistentVolumeClaim: { claimName: 'web-data' } },
      { name: 'host', hostDisk: { path: '/srv/x.img', type: 'Disk' } },
      { name: 'cd', containerDisk: { image: 'x' } },
      { name: 'ci', cloudInitNoCloud: {} },
      { name: 'scratch', emptyDisk: { capacity: '1Gi' } },
    ]).spec.template.spec.volumes);
    expect(r.included).toEqual([{ name: 'root', kind: 'claim', claim: 'web-root' }, { name: 'data', kind: 'claim', claim: 'web-data' }, { name: 'host', kind: 'hostDisk', path: '/srv/x.img' }]);
    expect(r.excluded).toEqual(['cd', 'ci', 'scratch']);
  });
});

describe('snapshotStatus (KubeVirt: Progressing, Ready, readyToUse, indications)', () => {
  const since = Date.parse('2026-01-01T00:00:00Z');
  it('in progress', () => {
    const s = snapshotStatus({ phase: 'InProgress', since });
    expect(s).toMatchObject({ phase: 'InProgress', readyToUse: false, creationTime: null });
    expect(s.conditions.map((c) => [c.type, c.status])).toEqual([['Progressing', 'True'], ['Ready', 'False']]);
  });
  it('online with and without a guest agent; offline has no indications', () => {
    expect(snapshotStatus({ phase: 'Succeeded', since, online: true, guestAgent: true, createdAt: since }).indications).toEqual(['Online', 'GuestAgent']);
    expect(snapshotStatus({ phase: 'Succeeded', since, online: true, guestAgent: false }).indications).toEqual(['Online', 'NoGuestAgent']);
    const off = snapshotStatus({ phase: 'Succeeded', since, online: false, createdAt: since, sourceUID: 'u', contentName: 'vmsnapshot-content-x', included: ['root'], excluded: ['ci'] });
    expect(off).toMatchObject({ readyToUse: true, creationTime: '2026-01-01T00:00:00.000Z', sourceUID: 'u', virtualMachineSnapshotContentName: 'vmsnapshot-content-x', snapshotVolumes: { includedVolumes: ['root'], excludedVolumes: ['ci'] } });
    expect(off.indications).toBeUndefined();
    expect(off.conditions.map((c) => [c.type, c.status])).toEqual([['Progressing', 'False'], ['Ready', 'True']]);
  });
  it('failed: the error and Ready=False with its message', () => {
    const s = snapshotStatus({ phase: 'Failed', since, error: { message: 'no persistent disks', at: since } });
    expect(s).toMatchObject({ readyToUse: false, error: { message: 'no persistent disks', time: '2026-01-01T00:00:00.000Z' } });
    expect(s.conditions[1]).toMatchObject({ type: 'Ready', status: 'False', reason: 'Operation failed', message: 'no persistent disks' });
  });
});

describe('restoreStatus', () => {
  it.each([
    ['InProgress', false, 'True', 'False'],
    ['Waiting', false, 'True', 'False'],
    ['Succeeded', true, 'False', 'True'],
    ['Failed', false, 'False', 'False'],
  ] as const)('%s', (state, complete, progressing, ready) => {
    const s = restoreStatus({ state, since: 0 });
    expect(s.complete).toBe(complete);
    expect(s.conditions.map((c) => c.status)).toEqual([progressing, ready]);
  });
});

describe('planRestore', () => {
  const taken = [{ name: 'root', kind: 'claim' as const, claim: 'web-root', file: 'root.img' }, { name: 'host', kind: 'hostDisk' as const, path: '/srv/x.img', file: 'host.img' }];
  it('into a VM in git: its volumes of the same names (their claims now)', () => {
    const r = planRestore(taken, vm([{ name: 'root', persistentVolumeClaim: { claimName: 'web-root-v2' } }, { name: 'host', hostDisk: { path: '/srv/y.img' } }]), { uid: 'abcdef0123' });
    expect(r).toEqual({ steps: [{ volume: 'root', file: 'root.img', kind: 'claim', claim: 'web-root-v2' }, { volume: 'host', file: 'host.img', kind: 'hostDisk', path: '/srv/y.img' }] });
  });
  it('a target without one of the volumes is refused naming it', () => {
    expect(planRestore(taken, vm([{ name: 'root', dataVolume: { name: 'r' } }]), { uid: 'u' })).toEqual({ error: expect.stringMatching(/no claim or hostDisk volume named host/) });
  });
  it('into a VM not in git: new claims restore-<uid>-<volume>, or the overrides', () => {
    const r = planRestore(taken, undefined, { uid: 'abcdef0123', overrides: [{ volumeName: 'host', restoreName: 'new-host' }] });
    expect(r).toEqual({ steps: [{ volume: 'root', file: 'root.img', kind: 'claim', claim: 'restore-abcdef01-root' }, { volume: 'host', file: 'host.img', kind: 'claim', claim: 'new-host' }] });
  });
});

describe('snapshot manifests', () => {
  const snap = (spec: unknown) => ({ apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name: 'nightly', namespace: 'default' }, spec });
  it('a good snapshot and restore pass', () => {
    expect(validateManifest(snap({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'web' }, failureDeadline: '10m' }))).toEqual([]);
    expect(validateManifest({ apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineRestore', metadata: { name: 'r' }, spec: { target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'web' }, virtualMachineSnapshotName: 'nightly', targetReadinessPolicy: 'StopTarget' } })).toEqual([]);
  });
  it('rules: source kind, deadline, readiness policy', () => {
    expect(validateManifest(snap({ source: { apiGroup: 'kubevirt.io', kind: 'Pod', name: 'web' } })).map((i) => i.path)).toEqual(['/spec/source/kind']);
    expect(checkSnapshotRules(snap({ source: { kind: 'VirtualMachine', name: 'web' }, failureDeadline: 'soon' }) as never).map((i) => i.path)).toEqual(['/spec/failureDeadline']);
    expect(checkSnapshotRules({ kind: 'VirtualMachineRestore', spec: { target: { kind: 'VirtualMachine', name: 'web' }, virtualMachineSnapshotName: 's', targetReadinessPolicy: 'Now' } }).map((i) => i.path)).toEqual(['/spec/targetReadinessPolicy']);
  });
  it('schema: unknown fields by path', () => {
    expect(validateManifest(snap({ source: { kind: 'VirtualMachine', name: 'web' }, retain: true })).map((i) => i.path)).toContain('/spec/retain');
  });
  it('durations', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('5')).toBeUndefined();
  });
});

describe('online copy helpers', () => {
  it('backup XML: the chosen disks as raw files, every other disk not backed up', () => {
    expect(backupXml(['vda', 'vdb', 'sda'], new Map([['vdb', "/s/it's.img.partial"]]))).toBe(
      "<domainbackup mode='push'>\n  <disks>\n    <disk name='vda' backup='no'/>\n    <disk name='vdb' backup='yes' type='file'>\n      <driver type='raw'/>\n      <target file='/s/it&apos;s.img.partial'/>\n    </disk>\n    <disk name='sda' backup='no'/>\n  </disks>\n</domainbackup>\n",
    );
  });
  it('a qcow2 source is backed up as qcow2', () => {
    expect(backupXml(['vda'], new Map([['vda', { file: '/s/a.img.partial', format: 'qcow2' as const }]]))).toContain("<driver type='qcow2'/>");
  });
  it('job type from virsh domjobinfo', () => {
    expect(jobType('Job type:         Unbounded\nOperation:        Backup\n')).toBe('Unbounded');
    expect(jobType('Job type:         None\n')).toBe('None');
    expect(jobType('')).toBeUndefined();
  });
});

describe('snapshot and restore tables', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  it("KubeVirt's columns", () => {
    const text = formatSnapshots([{ apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name: 'snap1', namespace: 'default' }, spec: { source: { kind: 'VirtualMachine', name: 'web' } }, status: snapshotStatus({ phase: 'Succeeded', since: now, online: true, guestAgent: false, createdAt: now - 60_000 }) }], { now });
    expect(text!.split('\n')[1]).toMatch(/^snap1\s+VirtualMachine\s+web\s+Succeeded\s+true\s+60s\s+Online,NoGuestAgent$/);
    const r = formatRestores([{ apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineRestore', metadata: { name: 'r1' }, spec: { target: { kind: 'VirtualMachine', name: 'web' }, virtualMachineSnapshotName: 'snap1' }, status: restoreStatus({ state: 'Succeeded', since: now, restoredAt: now }) }], { now });
    expect(r!.split('\n')[1]).toMatch(/^r1\s+snap1\s+VirtualMachine\s+web\s+true\s+0s$/);
  });
});

describe('default snapshot and restore names (single host and cluster CLI alike)', () => {
  it('<vm>-<yyyymmdd-hhmmss> in UTC, and restore-<snapshot>-<time in base 36>', () => {
    const at = new Date('2026-12-04T19:37:05.123Z');
    expect(defaultSnapshotName('web', at)).toBe('web-20261204-193705');
    expect(defaultRestoreName('web-20261204-193705', at)).toBe(`restore-web-20261204-193705-${at.getTime().toString(36)}`);
  });
});
