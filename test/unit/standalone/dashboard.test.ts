/** Pure parts of the dashboard's server: rows, push samples, line diff, spec summary, sessions. */
import { describe, expect, it } from 'vitest';
import { dashboardRow, pushSample } from '../../../reconciler/standalone/events-stream.js';
import { DashboardSessions, lineDiff, sessionCookie, specSummary } from '../../../reconciler/standalone/dashboard-server.js';
import type { VmView } from '../../../reconciler/standalone/backend.js';
import type { KubeObject } from '../../../reconciler/core/index.js';

const view = (over: Partial<VmView> = {}): VmView => ({
  namespace: 'default',
  name: 'a',
  firstSeen: '2026-12-04T10:00:00.000Z',
  revision: 'f'.repeat(40),
  inGit: true,
  status: { printableStatus: 'Running', ready: true } as VmView['status'],
  events: [],
  ...over,
});

describe('dashboardRow', () => {
  it('the overview columns', () => {
    expect(dashboardRow(view({ override: { action: 'stop', at: 1, revision: 'x' } }))).toEqual({
      namespace: 'default', name: 'a', status: 'Running', ready: true, revision: 'f'.repeat(40), ip: '', firstSeen: '2026-12-04T10:00:00.000Z', override: 'stop', running: false,
    });
  });
  it('a VM that left git is Pruning; no status is Unknown; an interface address is the IP', () => {
    expect(dashboardRow(view({ inGit: false })).status).toBe('Pruning');
    expect(dashboardRow(view({ status: undefined })).status).toBe('Unknown');
    expect(dashboardRow(view({ status: { printableStatus: 'Running', interfaces: [{ name: 'x' }, { ipAddress: '10.0.2.15' }] } as unknown as VmView['status'] })).ip).toBe('10.0.2.15');
  });
});

describe('pushSample', () => {
  const sha = 'f'.repeat(40);
  const row = dashboardRow(view());
  it.each<[string, Parameters<typeof pushSample>[1], Set<string>, Partial<typeof row>, number | undefined]>([
    ['Running on the applied revision', { sha, seenAt: 1_000 }, new Set(), {}, 2.5],
    ['already counted', { sha, seenAt: 1_000 }, new Set([`${sha}/default/a`]), {}, undefined],
    ['still Starting', { sha, seenAt: 1_000 }, new Set(), { status: 'Starting' }, undefined],
    ['Running an older revision', { sha, seenAt: 1_000 }, new Set(), { revision: 'e'.repeat(40) }, undefined],
    ['no revision applied', { seenAt: 1_000 }, new Set(), {}, undefined],
  ])('%s', (_what, applied, seen, rowOver, want) => {
    expect(pushSample({ ...row, ...rowOver }, applied, seen, 3_500)?.seconds).toBe(want);
  });
});

describe('lineDiff', () => {
  it('marks added and removed lines, keeps context', () => {
    expect(lineDiff('a\nb\nc', 'a\nB\nc')).toEqual([{ op: ' ', text: 'a' }, { op: '+', text: 'B' }, { op: '-', text: 'b' }, { op: ' ', text: 'c' }]);
  });
  it('folds long unchanged runs', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
    const b = a.replace('l10', 'L10');
    const d = lineDiff(a, b, 2);
    expect(d.filter((l) => l.text === '…')).toHaveLength(2);
    expect(d.filter((l) => l.op !== ' ').map((l) => l.op + l.text)).toEqual(['+L10', '-l10']);
  });
  it('a new VM is all additions', () => {
    expect(lineDiff('', 'x: 1').filter((l) => l.op === '+')).toEqual([{ op: '+', text: 'x: 1' }]);
  });
});

describe('specSummary', () => {
  it('disks with their volumes, buses and declared sizes', () => {
    const vm = {
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a', namespace: 'default' },
      spec: {
        runStrategy: 'Always',
        dataVolumeTemplates: [{ metadata: { name: 'data' }, spec: { storage: { resources: { requests: { storage: '5Gi' } } } } }],
        template: {
          metadata: { labels: { app: 'a' } },
          spec: {
            domain: { cpu: { cores: 2 }, memory: { guest: '1Gi' }, firmware: { kernelBoot: { container: { image: 'reg/kernel:1' } } }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'scratch', disk: {} }, { name: 'data', disk: { bus: 'sata' } }, { name: 'ci', cdrom: { bus: 'sata' } }] } },
            networks: [{ name: 'default', pod: {} }],
            volumes: [
              { name: 'root', containerDisk: { image: 'reg/img:1' } },
              { name: 'scratch', emptyDisk: { capacity: '2Gi' } },
              { name: 'data', dataVolume: { name: 'data' } },
              { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config' } },
            ],
          },
        },
      },
    } as unknown as KubeObject;
    const s = specSummary(vm)!;
    expect(s.runStrategy).toBe('Always');
    expect(s.cpu).toEqual({ cores: 2 });
    expect(s.memory).toEqual({ guest: '1Gi' });
    expect(s.networks).toEqual(['default (pod)']);
    expect(s.kernelBoot).toBe('reg/kernel:1');
    expect(s.labels).toEqual({ app: 'a' });
    expect(s.disks).toEqual([
      { name: 'root', bus: 'virtio', kind: 'containerDisk', source: 'reg/img:1' },
      { name: 'scratch', kind: 'emptyDisk', source: '', declared: '2Gi' },
      { name: 'data', bus: 'sata', kind: 'dataVolume', source: 'data', declared: '5Gi' },
      { name: 'ci', bus: 'sata', kind: 'cloudInitNoCloud', source: 'cloud-init' },
    ]);
  });
  it('undefined for a VM not in git', () => expect(specSummary(undefined)).toBeUndefined());
});

describe('DashboardSessions', () => {
  it('random ids and CSRF secrets, expiring after 12 h, dropped on sign-out', () => {
    let now = 0;
    const s = new DashboardSessions(() => now);
    const a = s.create();
    const b = s.create();
    expect(a.id).not.toBe(b.id);
    expect(a.csrf).not.toBe(a.id);
    expect(a.id).toMatch(/^[\w-]{43}$/);
    expect(s.lookup(a.id)).toEqual({ csrf: a.csrf });
    expect(s.lookup('forged')).toBeUndefined();
    s.drop(b.id);
    expect(s.lookup(b.id)).toBeUndefined();
    now = 12 * 3600 * 1000;
    expect(s.lookup(a.id)).toBeUndefined();
  });
  it('the cookie is HttpOnly, SameSite=Strict, for the whole site', () => {
    expect(sessionCookie('x')).toBe('virtops_session=x; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200');
  });
});
