import { describe, expect, it } from 'vitest';
import { parseDuration, validateLauncherFlags, launcherPaths, type RawLauncherFlags } from '../../../launcher/flags.js';
import { vmiStatusFor, decideSync, type ObservedDomain } from '../../../launcher/status.js';
import { annotateDomainXml, readSpecHash, specHash, stableStringify } from '../../../launcher/annotate.js';
import { chooseEmulation, type HostProbe } from '../../../launcher/emulation.js';
import { checkVmi } from '../../../launcher/vmi-check.js';
import { pointerToPath } from '../../../launcher/launcher.js';
import { cleanupGraceSeconds } from '../../../launcher/cleanup.js';

const GOOD: RawLauncherFlags = {
  qemuTimeout: '240s', name: 'web-1', uid: '6f1c2a3b-0000-4000-8000-000000000001', namespace: 'default',
  kubevirtShareDir: '/var/run/kubevirt', ephemeralDiskDir: '/var/run/kubevirt-ephemeral-disks',
  containerDiskDir: '/var/run/kubevirt/container-disks', gracePeriodSeconds: '45', hookSidecars: '0', emulation: 'tcg',
};

describe('parseDuration', () => {
  it.each([
    ['240s', 240_000], ['4m', 240_000], ['1h30m', 5_400_000], ['500ms', 500], ['1.5s', 1500],
  ])('%s → %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '240', 's', '4 m', '-1s', '1d'])('rejects %j', (text) => expect(parseDuration(text)).toBeNull());
});

describe('validateLauncherFlags', () => {
  it('accepts the flags synth renders and fills virtops defaults', () => {
    const r = validateLauncherFlags(GOOD, '/root');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({
      name: 'web-1', gracePeriodSeconds: 45, qemuTimeoutMs: 240_000, emulation: 'tcg', libvirtUri: 'qemu:///system',
      stateDir: '/var/run/kubevirt/launcher', imageStore: '/root/.cache/virtops/images', insecureRegistries: [],
    });
    expect(launcherPaths(r.config)).toMatchObject({ socket: '/var/run/kubevirt/sockets/launcher-sock', domainName: 'default_web-1' });
  });

  it.each<[string, RawLauncherFlags, RegExp]>([
    ['missing name', { ...GOOD, name: undefined }, /^--name is required/],
    ['bad name', { ...GOOD, name: 'Web_1' }, /^--name "Web_1" is not a DNS-1123 name/],
    ['unexpanded uid', { ...GOOD, uid: '$(VMI_UID)' }, /^--uid "\$\(VMI_UID\)" is not a uid/],
    ['relative dir', { ...GOOD, kubevirtShareDir: 'run/kubevirt' }, /^--kubevirt-share-dir "run\/kubevirt" is not an absolute path/],
    ['bad grace', { ...GOOD, gracePeriodSeconds: '-3' }, /^--grace-period-seconds "-3" is not a whole number/],
    ['hook sidecars', { ...GOOD, hookSidecars: '2' }, /^--hook-sidecars 2: virtops runs no hook sidecars; pass --hook-sidecars 0/],
    ['bad timeout', { ...GOOD, qemuTimeout: '240' }, /^--qemu-timeout "240" is not a positive duration/],
    ['bad emulation', { ...GOOD, emulation: 'hvf' }, /^--emulation "hvf" is not one of auto, kvm, tcg/],
    ['bad uri', { ...GOOD, libvirtUri: '/run/libvirt/libvirt-sock' }, /^--libvirt-uri .* is not a libvirt URI/],
    ['bad registry', { ...GOOD, insecureRegistry: ['http://x:5000'] }, /^--insecure-registry "http:\/\/x:5000" is not host\[:port\]/],
  ])('%s', (_name, raw, message) => {
    const r = validateLauncherFlags(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([expect.stringMatching(message)]);
  });

  it('reports every bad flag at once', () => {
    const r = validateLauncherFlags({ emulation: 'x' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.length).toBeGreaterThanOrEqual(5);
  });
});

describe('vmiStatusFor', () => {
  it.each<[string, ObservedDomain, Partial<ReturnType<typeof vmiStatusFor>>]>([
    ['nothing synced yet', { state: 'Absent', started: false }, { phase: 'Scheduled' }],
    ['running', { state: 'Running', started: true }, { phase: 'Running', paused: false }],
    ['paused', { state: 'Paused', started: true }, { phase: 'Running', paused: true, reason: 'PausedByUser' }],
    ['shutting down', { state: 'Shutdown', started: true }, { phase: 'Running' }],
    ['guest powered off', { state: 'Shutoff', started: true, lastEvent: { type: 'Stopped', detail: 'Shutdown' } }, { phase: 'Succeeded' }],
    ['destroyed and undefined', { state: 'Absent', started: true, lastEvent: { type: 'Undefined', detail: 'Removed' } }, { phase: 'Succeeded' }],
    ['crashed', { state: 'Crashed', started: true }, { phase: 'Failed', reason: 'Crashed' }],
    ['stopped after a failure', { state: 'Shutoff', started: true, lastEvent: { type: 'Stopped', detail: 'Failed' } }, { phase: 'Failed', reason: 'Crashed' }],
    ['image pull failure wins', { state: 'Absent', started: false, failure: { reason: 'ErrImagePull', message: 'nope' } }, { phase: 'Failed', reason: 'ErrImagePull' }],
  ])('%s', (_n, observed, expected) => expect(vmiStatusFor(observed)).toMatchObject(expected));
});

describe('decideSync', () => {
  it.each<[string, Parameters<typeof decideSync>[0], string]>([
    ['no domain', { desiredHash: 'a', domain: { state: 'Absent', specHash: null }, finished: false }, 'create'],
    ['stale inactive definition', { desiredHash: 'a', domain: { state: 'Shutoff', specHash: 'b' }, finished: false }, 'create'],
    ['same spec running', { desiredHash: 'a', domain: { state: 'Running', specHash: 'a' }, finished: false }, 'unchanged'],
    ['same spec paused', { desiredHash: 'a', domain: { state: 'Paused', specHash: 'a' }, finished: false }, 'unchanged'],
    ['changed spec running', { desiredHash: 'a', domain: { state: 'Running', specHash: 'b' }, finished: false }, 'restart-required'],
    ['foreign domain running', { desiredHash: 'a', domain: { state: 'Running', specHash: null }, finished: false }, 'restart-required'],
    ['VMI already finished', { desiredHash: 'a', domain: { state: 'Absent', specHash: null }, finished: true }, 'finished'],
  ])('%s → %s', (_n, input, action) => expect(decideSync(input).action).toBe(action));
});

describe('spec hash annotation', () => {
  it('hashes key order independently', () => {
    expect(stableStringify({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(specHash({ a: 1, b: 2 })).toBe(specHash({ b: 2, a: 1 }));
    expect(specHash({ a: 1 })).not.toBe(specHash({ a: 2 }));
  });

  it.each([
    ['no metadata', "<domain type='qemu'><name>x</name><memory>1</memory></domain>"],
    ['existing metadata', "<domain><name>x</name><metadata><virtops:vmi xmlns:virtops='u'/></metadata></domain>"],
    ['empty metadata', '<domain><name>x</name><metadata/></domain>'],
  ])('round-trips through %s', (_n, xml) => {
    const out = annotateDomainXml(xml, 'abc123');
    expect(readSpecHash(out)).toBe('abc123');
    expect(out.match(/<metadata>/g)).toHaveLength(1);
  });

  it('reads the hash back from libvirt-formatted XML', () => {
    const fromLibvirt = `<domain type='qemu'>\n  <name>x</name>\n  <metadata>\n    <virtops-launcher:sync xmlns:virtops-launcher="https://virtops.dev/xmlns/launcher/v1" specHash="00ff"/>\n  </metadata>\n</domain>`;
    expect(readSpecHash(fromLibvirt)).toBe('00ff');
    expect(readSpecHash('<domain><name>x</name></domain>')).toBeNull();
  });
});

describe('chooseEmulation', () => {
  const ok: HostProbe = { kvmDeviceUsable: true, libvirtOffersKvm: true, hostIsVirtualMachine: false, trustNestedKvm: false };
  it.each<[string, Parameters<typeof chooseEmulation>[0], HostProbe, string]>([
    ['explicit tcg', 'tcg', ok, 'tcg'],
    ['explicit kvm', 'kvm', { ...ok, kvmDeviceUsable: false }, 'kvm'],
    ['auto on bare metal', 'auto', ok, 'kvm'],
    ['auto without /dev/kvm', 'auto', { ...ok, kvmDeviceUsable: false }, 'tcg'],
    ['auto when libvirt lacks kvm', 'auto', { ...ok, libvirtOffersKvm: false }, 'tcg'],
    ['auto nested (this project\'s machines)', 'auto', { ...ok, hostIsVirtualMachine: true }, 'tcg'],
    ['auto nested, trusted', 'auto', { ...ok, hostIsVirtualMachine: true, trustNestedKvm: true }, 'kvm'],
  ])('%s → %s', (_n, req, probe, expected) => expect(chooseEmulation(req, probe).emulation).toBe(expected));
});

describe('checkVmi', () => {
  const expectFor = { name: 'web-1', namespace: 'default', uid: 'u1' };
  const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'web-1', uid: 'u1' }, spec: { domain: { devices: {} } } };
  it('accepts the VMI this launcher serves', () => expect(checkVmi(vmi, expectFor)).toEqual([]));
  it.each<[string, unknown, string[]]>([
    ['not an object', [1], ['']],
    ['wrong kind', { ...vmi, kind: 'VirtualMachine' }, ['kind']],
    ['other VMI', { ...vmi, metadata: { name: 'web-2' } }, ['metadata.name']],
    ['other uid', { ...vmi, metadata: { name: 'web-1', uid: 'u2' } }, ['metadata.uid']],
    ['other namespace', { ...vmi, metadata: { name: 'web-1', namespace: 'prod' } }, ['metadata.namespace']],
    ['no devices', { ...vmi, spec: { domain: {} } }, ['spec.domain.devices']],
  ])('%s', (_n, body, paths) => expect(checkVmi(body, expectFor).map((e) => e.path)).toEqual(paths));
});

describe('pointerToPath', () => {
  it.each([
    ['/spec/domain/devices/disks/1/disk/bus', 'spec.domain.devices.disks[1].disk.bus'],
    ['/metadata/annotations/a~1b', 'metadata.annotations.a/b'],
    ['', ''],
  ])('%s → %s', (p, out) => expect(pointerToPath(p)).toBe(out));
});

describe('cleanupGraceSeconds (monitor cleanup after a dead launcher)', () => {
  it.each<[unknown, number, number]>([
    [3, 18, 3], // the VMI's grace, not the launcher's padded deadline
    [0, 15, 0],
    [60, 45, 45], // never longer than the launcher's own deadline
    [undefined, 45, 45], // died before recording it: the flag
    [-1, 45, 45],
    ['3', 45, 45],
    [Number.NaN, 45, 45],
  ])('recorded %j, flag %d → %d s', (recorded, flag, want) => expect(cleanupGraceSeconds(recorded, flag)).toBe(want));
});
