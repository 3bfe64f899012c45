/** The pure parts of the fault-injection tests: the seeded schedule, the invariants, the figures. */
import { describe, expect, it } from 'vitest';
import { percentile } from '../../faults/lib/figures.js';
import { checkInvariants, runningSnapshot, snapshotChanges, type ExpectedVm, type Observation } from '../../faults/lib/invariants.js';
import { buildSchedule, countByKind, faultSeed } from '../../faults/lib/schedule.js';

const FAULTS = ['kill', 'restart', 'commit'] as const;
const OPS = ['add', 'delete'] as const;

describe('buildSchedule', () => {
  it('is a pure function of the seed, with every fault kind at least minPerFault times', () => {
    const a = buildSchedule(7, { faults: FAULTS, ops: OPS, count: 20, minPerFault: 4 });
    expect(buildSchedule(7, { faults: FAULTS, ops: OPS, count: 20, minPerFault: 4 })).toEqual(a);
    expect(buildSchedule(8, { faults: FAULTS, ops: OPS, count: 20, minPerFault: 4 })).not.toEqual(a);
    expect(a).toHaveLength(20);
    for (const n of Object.values(countByKind(a))) expect(n).toBeGreaterThanOrEqual(4);
    expect(a.every((s) => s.ops.length <= 2)).toBe(true);
  });

  it('names the option and the fix when the counts cannot work', () => {
    expect(() => buildSchedule(1, { faults: FAULTS, ops: OPS, count: 5, minPerFault: 2 })).toThrow(/count 5 is below faults.length × minPerFault = 6/);
    expect(() => buildSchedule(1, { faults: [], ops: OPS, count: 5 })).toThrow(/faults is empty/);
  });

  it('takes the seed from VIRTOPS_FAULT_SEED and refuses one that is not an integer', () => {
    const lines: string[] = [];
    expect(faultSeed({ VIRTOPS_FAULT_SEED: '42' }, (l) => lines.push(l))).toBe(42);
    expect(lines[0]).toMatch(/VIRTOPS_FAULT_SEED=42/);
    expect(() => faultSeed({ VIRTOPS_FAULT_SEED: 'abc' }, () => undefined)).toThrow(/VIRTOPS_FAULT_SEED="abc" is not an integer/);
    expect(Number.isSafeInteger(faultSeed({}, () => undefined))).toBe(true);
  });
});

const healthy = (): Observation => ({
  revision: 'abc',
  vms: [
    { name: 'a', status: 'Running', instanceUid: 'u1', recordUids: ['u1'], hasRecord: true },
    { name: 'b', status: 'Stopped', recordUids: [], hasRecord: true },
  ],
  domains: [{ vm: 'a', state: 'running' }],
  launchers: [{ uid: 'u1', monitor: true, pid: 10 }],
  qemus: [{ vm: 'a', pid: 12 }],
  vmDirs: [{ vm: 'a', dir: '/s/pods/1', ephemeralUids: ['u1'], sockets: ['sockets/launcher-sock'] }, { vm: 'b', dir: '/s/pods/2', ephemeralUids: [], sockets: [] }],
  strays: [],
  persistentDisks: { '/s/pods/2/disk.qcow2': 5 },
});
const want: ExpectedVm[] = [{ name: 'a', present: true, shouldRun: true }, { name: 'b', present: true, shouldRun: false }, { name: 'c', present: false, shouldRun: false }];

describe('checkInvariants', () => {
  it('holds for one running and one stopped VM with nothing left over', () => {
    expect(checkInvariants(want, healthy(), { revision: 'abc', disks: { '/s/pods/2/disk.qcow2': { inode: 5, vm: 'b' } } })).toEqual([]);
  });

  it.each<[string, (o: Observation) => void, RegExp]>([
    ['a second launcher process', (o) => o.launchers.push({ uid: 'u1', monitor: true, pid: 20 }), /a: should run, 2 launcher-monitor process\(es\) and 0 separate launcher/],
    ['a dead launcher', (o) => o.launchers.shift(), /0 launcher-monitor process\(es\) and 0 separate launcher/],
    ['a separate launcher child (two-process layout)', (o) => o.launchers.push({ uid: 'u1', monitor: false, pid: 11 }), /1 launcher-monitor process\(es\) and 1 separate launcher/],
    ['a launcher of an old instance', (o) => o.launchers.push({ uid: 'u0', monitor: false, pid: 21 }), /orphan launcher pid 21/],
    ['a shut-off domain', (o) => (o.domains[0]!.state = 'shut off'), /a: should run, domains: \[shut off\]/],
    ['two QEMUs', (o) => o.qemus.push({ vm: 'a', pid: 13 }), /a: should run, 2 QEMU processes/],
    ['a domain of a stopped VM', (o) => o.domains.push({ vm: 'b', state: 'shut off' }), /b: should be stopped, has domain/],
    ['a VM git removed still recorded', (o) => o.vms.push({ name: 'c', status: 'Stopped', recordUids: [], hasRecord: true }), /c: not in git but still has a record/],
    ['a dir of a VM git removed', (o) => o.vmDirs.push({ vm: 'c', dir: '/s/pods/3', ephemeralUids: [], sockets: [] }), /orphan VM dir \/s\/pods\/3/],
    ['an ephemeral dir of an old instance', (o) => o.vmDirs[0]!.ephemeralUids.push('u0'), /a: orphan ephemeral dir\(s\) of instance\(s\) u0/],
    ['a socket of a stopped VM', (o) => o.vmDirs[1]!.sockets.push('sockets/vnc'), /b: stopped but sockets remain: sockets\/vnc/],
    ['a deleted persistent disk', (o) => delete o.persistentDisks['/s/pods/2/disk.qcow2'], /b: persistent disk .* was deleted/],
    ['a replaced persistent disk', (o) => (o.persistentDisks['/s/pods/2/disk.qcow2'] = 6), /was replaced \(inode 5 → 6\)/],
    ['an old revision', (o) => (o.revision = 'old'), /applied revision is old, git's is abc/],
    ['a stray file', (o) => o.strays.push('/s/junk'), /orphan file \/s\/junk/],
  ])('catches %s', (_what, mutate, problem) => {
    const o = healthy();
    mutate(o);
    expect(checkInvariants(want, o, { revision: 'abc', disks: { '/s/pods/2/disk.qcow2': { inode: 5, vm: 'b' } } }).join('\n')).toMatch(problem);
  });

  it('a persistent disk of a VM git removed may go', () => {
    const o = healthy();
    delete o.persistentDisks['/s/pods/2/disk.qcow2'];
    o.vms.pop();
    o.vmDirs.pop();
    expect(checkInvariants([want[0]!, { name: 'b', present: false, shouldRun: false }], o, { revision: 'abc', disks: { '/s/pods/2/disk.qcow2': { inode: 5, vm: 'b' } } })).toEqual([]);
  });
});

describe('running snapshots (a refused commit touches nothing)', () => {
  it('equal when nothing changed, one line per VM otherwise', () => {
    const before = runningSnapshot(healthy());
    expect(snapshotChanges(before, runningSnapshot(healthy()))).toEqual([]);
    const o = healthy();
    o.qemus[0]!.pid = 99;
    expect(snapshotChanges(before, runningSnapshot(o))).toEqual(['a: {"uid":"u1","launcherPids":[10],"qemuPids":[12]} → {"uid":"u1","launcherPids":[10],"qemuPids":[99]}']);
  });
});

describe('percentile', () => {
  it('nearest rank', () => {
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});
