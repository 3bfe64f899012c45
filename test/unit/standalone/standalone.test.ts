import { describe, expect, it } from 'vitest';
import { splitRevision } from '../../../reconciler/standalone/backend.js';
import { age, formatDescribe, formatVmTable, refusalNotice } from '../../../reconciler/standalone/format.js';
import { validateUpFlags } from '../../../reconciler/standalone/up.js';
import { parseServer, parseVmName, resolveTarget } from '../../../reconciler/standalone/client.js';
import type { VmView } from '../../../reconciler/standalone/backend.js';
import type { KubeObject } from '../../../reconciler/core/index.js';

describe('validateUpFlags', () => {
  it('fills defaults', () => {
    const r = validateUpFlags({ repo: 'repo.git' }, '/home/u');
    expect(r).toEqual({
      ok: true,
      config: expect.objectContaining({ repo: '/home/u/repo.git', branch: 'main', distPath: 'dist', stateDir: '/var/lib/virtops', socketPath: '/var/lib/virtops/up.sock', emulation: 'auto', intervalMs: 60_000, libvirtUri: 'qemu:///system', freshness: false, concurrency: 16 }),
    });
  });

  it('keeps URLs as they are and accepts --no-freshness-check', () => {
    const r = validateUpFlags({ repo: 'https://example.com/vms.git', freshnessCheck: false, interval: '30s' });
    expect(r.ok && r.config.repo).toBe('https://example.com/vms.git');
    expect(r.ok && r.config.freshness).toBe(false);
    expect(r.ok && r.config.intervalMs).toBe(30_000);
  });

  it.each([
    [{}, '--repo is required'],
    [{ repo: 'r', branch: 'a..b' }, '--branch "a..b"'],
    [{ repo: 'r', path: '/abs' }, '--path "/abs" must be a directory inside the repository'],
    [{ repo: 'r', path: '../up' }, '--path "../up"'],
    [{ repo: 'r', stateDir: 'rel' }, '--state-dir "rel" is not an absolute path'],
    [{ repo: 'r', listen: '8686' }, '--listen "8686" is not HOST:PORT'],
    [{ repo: 'r', listen: 'h:99999' }, '--listen "h:99999"'],
    [{ repo: 'r', emulation: 'hvf' }, '--emulation "hvf" is not one of auto, kvm, tcg'],
    [{ repo: 'r', interval: '5' }, '--interval "5" is not a duration'],
    [{ repo: 'r', interval: '10ms' }, '--interval "10ms"'],
    [{ repo: 'r', libvirtUri: 'qemu' }, '--libvirt-uri "qemu" is not a libvirt URI'],
    [{ repo: 'r', insecureRegistry: ['http://x'] }, '--insecure-registry "http://x" is not host[:port]'],
    [{ repo: 'r', concurrency: '0' }, '--concurrency "0"'],
    [{ repo: 'r', webhookSecretFile: ' ' }, '--webhook-secret-file is empty'],
    [{ repo: 'r', webhookSecretFile: '/s' }, '--webhook-secret-file needs --webhook-listen HOST:PORT'],
    [{ repo: 'r', webhookListen: '0.0.0.0:9000' }, '--webhook-listen needs --webhook-secret-file FILE'],
    [{ repo: 'r', webhookListen: 'x', webhookSecretFile: '/s' }, '--webhook-listen "x" is not HOST:PORT: use e.g. --webhook-listen 0.0.0.0:9000'],
    [{ repo: 'r', metricsListen: ':9090' }, '--metrics-listen ":9090" is not HOST:PORT'],
    [{ repo: 'r', listen: '127.0.0.1:9000', metricsListen: '127.0.0.1:9000' }, '--metrics-listen 127.0.0.1:9000 is the address of --listen: each listener needs its own port'],
    [{ repo: 'r', listen: '127.0.0.1:9000', webhookListen: '0.0.0.0:9000', webhookSecretFile: '/s' }, '--webhook-listen 0.0.0.0:9000 is the address of --listen'],
  ])('%j → %s', (raw, message) => {
    const r = validateUpFlags(raw);
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors.join('\n')).toContain(message);
  });

  it('TCP, webhook and metrics listeners only when asked', () => {
    const r = validateUpFlags({ repo: 'r', stateDir: '/s', listen: '[::1]:0', webhookListen: '0.0.0.0:9000', webhookSecretFile: 'sec', metricsListen: '127.0.0.1:9090' }, '/w');
    expect(r.ok && r.config).toMatchObject({ socketPath: '/s/up.sock', listen: { host: '::1', port: 0 }, webhookListen: { host: '0.0.0.0', port: 9000 }, metricsListen: { host: '127.0.0.1', port: 9090 }, webhookSecretFile: '/w/sec' });
    const d = validateUpFlags({ repo: 'r' });
    expect(d.ok && [d.config.listen, d.config.webhookListen, d.config.metricsListen]).toEqual([undefined, undefined, undefined]);
  });

  it('reports every bad flag at once', () => {
    const r = validateUpFlags({ emulation: 'x', interval: 'y' });
    expect(r.ok ? 0 : r.errors.length).toBe(3);
  });
});

describe('splitRevision', () => {
  const vm = (name: string, ns?: string): KubeObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, ...(ns ? { namespace: ns } : {}) } });
  const pod = (vmName: string, ns?: string, app = 'virt-launcher'): KubeObject => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `virt-launcher-${vmName}`, ...(ns ? { namespace: ns } : {}), labels: { 'kubevirt.io': app, 'vm.kubevirt.io/name': vmName } },
  });
  it('pairs VMs with their launcher Pods by namespace and VM name; ignores everything else', () => {
    const { vms, pods } = splitRevision([vm('a'), vm('b', 'x'), pod('a'), pod('b', 'x'), pod('c', 'x', 'other'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }]);
    expect([...vms.keys()]).toEqual(['default/a', 'x/b']);
    expect([...pods.keys()]).toEqual(['default/a', 'x/b']);
  });
});

const view = (over: Partial<VmView> = {}): VmView => ({
  namespace: 'default',
  name: 'web',
  firstSeen: new Date(0).toISOString(),
  revision: '0123456789abcdef0123',
  inGit: true,
  status: { printableStatus: 'Running', ready: true, runStrategy: 'Always', conditions: [{ type: 'Ready', status: 'True' }] },
  events: [{ time: new Date(1000).toISOString(), type: 'Normal', reason: 'Started', message: 'instance u1' }],
  ...over,
});

describe('formatting', () => {
  it.each([
    [5, '5s'],
    [119, '119s'],
    [125, '2m5s'],
    [900, '15m'],
    [3 * 3600 + 60, '3h1m'],
    [50 * 3600, '2d2h'],
  ])('age(%i s) = %s', (s, text) => expect(age(new Date(0).toISOString(), s * 1000)).toBe(text));

  it('get vms: kubectl columns plus REVISION; wide adds runStrategy, domain, pid, override and message', () => {
    const list = { revision: 'abc', vms: [view(), view({ name: 'db', status: { printableStatus: 'CrashLoopBackOff', ready: false } })] };
    expect(formatVmTable(list, { now: 65_000 })).toBe(
      ['NAME   AGE   STATUS             READY   REVISION', 'web    65s   Running            True    0123456789ab', 'db     65s   CrashLoopBackOff   False   0123456789ab'].join('\n'),
    );
    const wide = formatVmTable({ revision: 'abc', vms: [view({ override: { action: 'stop', at: 1, revision: 'abc' }, instance: { uid: 'u', createdAt: '', pid: 42, domain: 'default_web', socket: '', console: '', serialLog: '', launcherLog: '', podDir: '' } })] }, { now: 0, wide: true });
    expect(wide.split('\n')[1]).toMatch(/web\s+0s\s+Running\s+True\s+0123456789ab\s+Always\s+default_web\s+42\s+stop/);
  });

  it('a VM that left git shows as Pruning', () => {
    expect(formatVmTable({ revision: 'a', vms: [view({ inGit: false })] }, { now: 0 })).toMatch(/web\s+0s\s+Pruning/);
  });

  it('refusal notice names the refused commit, the running revision and the errors', () => {
    expect(refusalNotice({ revision: 'aaaaaaaaaaaaaaaa', refused: { sha: 'bbbbbbbbbbbbbbbb', errors: ['dist/x.yaml: spec.foo: unknown field'], at: 0 } })).toBe(
      'warning: commit bbbbbbbbbbbb was refused; revision aaaaaaaaaaaa keeps running:\n  dist/x.yaml: spec.foo: unknown field',
    );
    expect(refusalNotice({ revision: 'a' })).toBeUndefined();
  });

  it('describe shows status, conditions, events and the source refusal', () => {
    const text = formatDescribe({ ...view(), appliedRevision: 'aaaaaaaaaaaaaaaa', refused: { sha: 'bbbbbbbbbbbbbbbb', errors: ['boom'], at: 0 } }, 10_000);
    expect(text).toMatch(/^Name:\s+web$/m);
    expect(text).toMatch(/^Status:\s+Running$/m);
    expect(text).toMatch(/^Instance:\s+\(none\)$/m);
    expect(text).toMatch(/^\s+Ready\s+True/m);
    expect(text).toMatch(/^Source:\s+commit bbbbbbbbbbbb refused; aaaaaaaaaaaa keeps running$/m);
    expect(text).toMatch(/^\s+Normal\s+Started\s+9s\s+instance u1$/m);
  });
});

describe('CLI helpers', () => {
  it('parseVmName', () => {
    expect(parseVmName('web', undefined)).toEqual(['default', 'web']);
    expect(parseVmName('prod/web', 'default')).toEqual(['prod', 'web']);
    expect(() => parseVmName('Web', undefined)).toThrow(/NAME or NAMESPACE\/NAME/);
  });
  it('parseServer', () => {
    expect(parseServer('127.0.0.1:9000')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9000 });
    expect(parseServer('http://[::1]:9000')).toEqual({ kind: 'tcp', host: '::1', port: 9000 });
    expect(parseServer('unix:/s/up.sock')).toEqual({ kind: 'unix', path: '/s/up.sock' });
    expect(() => parseServer('unix:up.sock')).toThrow(/absolute path/);
    expect(() => parseServer('https://x')).toThrow(/unix:\/path or http:\/\/ only/);
  });
  it('resolveTarget: the socket in the state dir unless --server says otherwise; a token only for TCP', async () => {
    expect(await resolveTarget({}, {})).toEqual({ kind: 'unix', path: '/var/lib/virtops/up.sock' });
    expect(await resolveTarget({}, { VIRTOPS_STATE_DIR: '/st' })).toEqual({ kind: 'unix', path: '/st/up.sock' });
    expect(await resolveTarget({ stateDir: '/a' }, { VIRTOPS_STATE_DIR: '/st', VIRTOPS_TOKEN: 't' })).toEqual({ kind: 'unix', path: '/a/up.sock' });
    expect(await resolveTarget({ server: 'http://h:1' }, { VIRTOPS_TOKEN: 'tok', VIRTOPS_STATE_DIR: '/nonexistent' })).toEqual({ kind: 'tcp', host: 'h', port: 1, token: 'tok' });
    expect(await resolveTarget({}, { VIRTOPS_SERVER: 'h:2', VIRTOPS_STATE_DIR: '/nonexistent' })).toEqual({ kind: 'tcp', host: 'h', port: 2 });
    await expect(resolveTarget({ server: 'h:1', tokenFile: '/nonexistent/t' }, {})).rejects.toThrow(/--token-file \/nonexistent\/t/);
  });
});
