import { describe, expect, it } from 'vitest';
import {
  type ImportRecord,
  dataVolumeStatus,
  dataVolumesOf,
  formatProgress,
  importBackoffMs,
  parseChecksum,
  parseQemuImgProgress,
  planImport,
  quantityBytes,
  volumeGate,
} from '../../../api/datavolume.js';
import { validateManifest } from '../../../api/validate.js';
import { formatDataVolumes } from '../../../cli/commands/storage-format.js';

const HEX = 'a'.repeat(64);
const dv = (spec: Record<string, unknown>, annotations?: Record<string, string>) => ({
  apiVersion: 'cdi.kubevirt.io/v1beta1' as const,
  kind: 'DataVolume' as const,
  metadata: { name: 'root', namespace: 'default', ...(annotations ? { annotations } : {}) },
  spec,
});
const storage = (s: string) => ({ resources: { requests: { storage: s } } });

describe('parseChecksum', () => {
  it.each([
    [`sha256:${HEX}`, { algorithm: 'sha256', hex: HEX }],
    [`sha256:${HEX.toUpperCase()}`, { algorithm: 'sha256', hex: HEX }],
    [`sha512:${'b'.repeat(128)}`, { algorithm: 'sha512', hex: 'b'.repeat(128) }],
  ])('%s', (v, want) => expect(parseChecksum(v)).toEqual(want));
  it.each([`md5:${'a'.repeat(32)}`, `sha256:${'a'.repeat(63)}`, HEX, 'sha256:xyz'])('refuses %s naming the annotation', (v) => {
    const r = parseChecksum(v) as { path: string; fix: string };
    expect(r.path).toBe('/metadata/annotations/virtops.io~1checksum');
    expect(r.fix).toMatch(/sha256:<64 hex digits>/);
  });
  it('absent: no checksum', () => expect(parseChecksum(undefined)).toBeUndefined());
});

describe('quantityBytes', () => {
  it.each([['1Gi', 1073741824n], ['512Mi', 536870912n], ['1G', 1000000000n], ['1.5Ki', 1536n], [1024, 1024n], ['10', 10n]])('%s', (q, b) => expect(quantityBytes(q)).toBe(b));
  it.each(['1GB', 'ten', '-1Gi', ''])('%s is not a quantity', (q) => expect(quantityBytes(q)).toBeUndefined());
});

describe('planImport', () => {
  it('http with a checksum and a size', () => {
    const r = planImport(dv({ source: { http: { url: 'http://127.0.0.1:8080/disk.qcow2' } }, storage: storage('1Gi') }, { 'virtops.io/checksum': `sha256:${HEX}` }), 'default');
    expect(r).toMatchObject({ namespace: 'default', name: 'root', source: { kind: 'http', url: 'http://127.0.0.1:8080/disk.qcow2' }, bytes: 1073741824n, checksum: { algorithm: 'sha256', hex: HEX } });
  });
  it('registry, clone (same namespace by default), blank', () => {
    expect(planImport(dv({ source: { registry: { url: 'docker://quay.io/containerdisks/fedora:40' } }, storage: {} }), 'default')).toMatchObject({ source: { kind: 'registry', image: 'quay.io/containerdisks/fedora:40' } });
    expect(planImport(dv({ source: { pvc: { name: 'golden' } }, storage: {} }), 'ns1')).toMatchObject({ source: { kind: 'clone', namespace: 'ns1', name: 'golden' } });
    expect(planImport(dv({ source: { blank: {} }, pvc: storage('2Gi') }), 'default')).toMatchObject({ source: { kind: 'blank' }, bytes: 2147483648n });
  });
  it('the storage API may leave the size to the source; pvc and blank need one', () => {
    expect('issues' in planImport(dv({ source: { http: { url: 'https://x/y.img' } }, storage: {} }), 'default')).toBe(false);
    const r = planImport(dv({ source: { http: { url: 'https://x/y.img' } }, pvc: {} }), 'default') as { issues: { path: string }[] };
    expect(r.issues.map((i) => i.path)).toEqual(['/spec/pvc/resources/requests/storage']);
    const b = planImport(dv({ source: { blank: {} }, storage: {} }), 'default') as { issues: { path: string }[] };
    expect(b.issues.map((i) => i.path)).toEqual(['/spec/storage/resources/requests/storage']);
  });
  it.each([
    [{ source: {}, storage: storage('1Gi') }, '/spec/source', /required/],
    [{ source: { http: { url: 'ftp://x/y' } }, storage: storage('1Gi') }, '/spec/source/http/url', /not an http\(s\) URL/],
    [{ source: { registry: { url: 'quay.io/x:1' } }, storage: storage('1Gi') }, '/spec/source/registry/url', /not a registry URL/],
    [{ source: { s3: { url: 'https://x' } }, storage: storage('1Gi') }, '/spec/source/s3', /not supported/],
    [{ source: { http: { url: 'https://x/y' }, blank: {} }, storage: storage('1Gi') }, '/spec/source', /several sources/],
    [{ source: { pvc: { name: 'root' } }, storage: storage('1Gi') }, '/spec/source/pvc/name', /cannot clone itself/],
    [{ source: { http: { url: 'https://x/y' } }, storage: storage('0') }, '/spec/storage/resources/requests/storage', /not a positive size/],
    [{ sourceRef: { kind: 'DataSource', name: 'fedora' }, storage: storage('1Gi') }, '/spec/sourceRef', /DataSource references/],
    [{ source: { http: { url: 'https://x/y', secretRef: 's' } }, storage: storage('1Gi') }, '/spec/source/http/secretRef', /not supported/],
    [{ source: { http: { url: 'https://x/y' } }, storage: storage('1Gi'), contentType: 'archive' }, '/spec/contentType', /archive/],
  ])('%j → %s', (spec, path, message) => {
    const r = planImport(dv(spec), 'default') as { issues: { path: string; message: string; fix?: string }[] };
    const hit = r.issues.find((i) => i.path === path);
    expect(hit?.message).toMatch(message);
    expect(hit?.fix).toBeTruthy();
  });
  it('a checksum on a non-http source is refused', () => {
    const r = planImport(dv({ source: { blank: {} }, storage: storage('1Gi') }, { 'virtops.io/checksum': `sha256:${HEX}` }), 'default') as { issues: { message: string }[] };
    expect(r.issues[0]!.message).toMatch(/source.http only/);
  });
  it('the spec hash changes with the spec and the checksum', () => {
    const a = planImport(dv({ source: { http: { url: 'https://x/y' } }, storage: storage('1Gi') }), 'default') as { specHash: string };
    const b = planImport(dv({ source: { http: { url: 'https://x/y' } }, storage: storage('2Gi') }), 'default') as { specHash: string };
    const c = planImport(dv({ source: { http: { url: 'https://x/y' } }, storage: storage('1Gi') }, { 'virtops.io/checksum': `sha256:${HEX}` }), 'default') as { specHash: string };
    expect(new Set([a.specHash, b.specHash, c.specHash]).size).toBe(3);
  });
});

describe('dataVolumesOf', () => {
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'web', namespace: 'prod' },
    spec: { dataVolumeTemplates: [{ metadata: { name: 'web-root' }, spec: { source: { blank: {} }, storage: storage('1Gi') } }] },
  };
  it('DataVolume manifests and VM templates (owned by the VM, in its namespace)', () => {
    const r = dataVolumesOf([dv({ source: { blank: {} }, storage: storage('1Gi') }), vm]);
    expect(r.errors).toEqual([]);
    expect(r.plans.map((p) => [p.namespace, p.name, p.owner])).toEqual([['default', 'root', undefined], ['prod', 'web-root', 'prod/web']]);
  });
  it('a name declared twice is an error on the second', () => {
    const twice = { ...dv({ source: { blank: {} }, storage: storage('1Gi') }), metadata: { name: 'web-root', namespace: 'prod' } };
    const r = dataVolumesOf([twice, vm]);
    expect(r.plans).toHaveLength(1);
    expect(r.errors[0]!.issues[0]!.message).toMatch(/declared twice/);
  });
});

describe('progress', () => {
  it('formats CDI-style', () => {
    expect(formatProgress('ImportScheduled', undefined)).toBe('N/A');
    expect(formatProgress('ImportInProgress', 0.4567)).toBe('45.6%');
    expect(formatProgress('Succeeded', 0.2)).toBe('100.0%');
  });
  it('parses qemu-img -p output (the last update in a chunk)', () => {
    expect(parseQemuImgProgress('    (0.00/100%)\r    (12.50/100%)\r    (45.02/100%)\r')).toBeCloseTo(0.4502);
    expect(parseQemuImgProgress('    (100.00/100%)\n')).toBe(1);
    expect(parseQemuImgProgress('nothing')).toBeUndefined();
  });
  it('backoff doubles from 10 s to 5 min', () => {
    expect([1, 2, 3, 10].map((n) => importBackoffMs(n))).toEqual([10_000, 20_000, 40_000, 300_000]);
  });
});

const rec = (over: Partial<ImportRecord>): ImportRecord => ({ namespace: 'default', name: 'root', specHash: 'h', source: 'http', phase: 'ImportScheduled', attempts: 0, since: { Bound: 0, Ready: 0, Running: 0 }, ...over });

describe('dataVolumeStatus (CDI: Bound, Ready, Running)', () => {
  it('importing', () => {
    const s = dataVolumeStatus(rec({ phase: 'ImportInProgress', fraction: 0.5 }));
    expect(s).toMatchObject({ phase: 'ImportInProgress', progress: '50.0%', claimName: 'root' });
    expect(s.conditions.map((c) => [c.type, c.status])).toEqual([['Bound', 'True'], ['Ready', 'False'], ['Running', 'True']]);
  });
  it('succeeded', () => {
    const s = dataVolumeStatus(rec({ phase: 'Succeeded' }));
    expect(s.progress).toBe('100.0%');
    expect(s.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([['Bound', 'True', 'Bound'], ['Ready', 'True', ''], ['Running', 'False', 'Completed']]);
  });
  it('failed: Running=False reason Error with the message, restartCount', () => {
    const s = dataVolumeStatus(rec({ phase: 'Failed', attempts: 2, lastError: 'checksum mismatch' }));
    expect(s.restartCount).toBe(2);
    expect(s.conditions.find((c) => c.type === 'Running')).toMatchObject({ status: 'False', reason: 'Error', message: 'checksum mismatch' });
  });
});

describe('volumeGate', () => {
  const volumes = [{ name: 'rootdisk', dataVolume: { name: 'root' } }, { name: 'cloudinit' }];
  it('Succeeded (or unknown to virtops): no gate', () => {
    expect(volumeGate(volumes, () => dataVolumeStatus(rec({ phase: 'Succeeded' })))).toBeUndefined();
    expect(volumeGate(volumes, () => undefined)).toBeUndefined();
  });
  it('importing: Provisioning; failed: DataVolumeError naming the DataVolume and why', () => {
    expect(volumeGate(volumes, () => dataVolumeStatus(rec({ phase: 'ImportInProgress', fraction: 0.1 })))).toMatchObject({ reason: 'Provisioning', message: expect.stringContaining('ImportInProgress 10.0%') });
    expect(volumeGate(volumes, () => dataVolumeStatus(rec({ phase: 'Failed', attempts: 1, lastError: 'GET x: HTTP 404 Not Found' })))).toEqual({ reason: 'DataVolumeError', message: 'DataVolume root (volume rootdisk) is in Failed phase: GET x: HTTP 404 Not Found' });
  });
  it('a PVC volume naming a DataVolume waits too', () => {
    expect(volumeGate([{ name: 'd', persistentVolumeClaim: { claimName: 'root' } }], () => dataVolumeStatus(rec({})))?.reason).toBe('Provisioning');
  });
});

describe('validateManifest: DataVolume and dataVolumeTemplates', () => {
  it('a good DataVolume passes', () => {
    expect(validateManifest(dv({ source: { http: { url: 'https://x/y.qcow2' } }, storage: storage('1Gi') }, { 'virtops.io/checksum': `sha256:${HEX}` }))).toEqual([]);
  });
  it('schema: unknown fields by path; rules: what virtops cannot import', () => {
    expect(validateManifest(dv({ source: { http: { uri: 'https://x' } }, storage: storage('1Gi') })).map((i) => i.path)).toContain('/spec/source/http/uri');
    expect(validateManifest(dv({ source: { http: { url: 'https://x' } }, storage: storage('1Gi') }, { 'virtops.io/checksum': 'nope' })).map((i) => i.path)).toEqual(['/metadata/annotations/virtops.io~1checksum']);
  });
  it('what CDI accepts but virtops does not import passes validation (a cluster\'s CDI may do it); other cdi kinds pass as before', () => {
    expect(validateManifest(dv({ sourceRef: { kind: 'DataSource', name: 'fedora' }, storage: storage('1Gi') }))).toEqual([]);
    expect(validateManifest({ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataSource', metadata: { name: 'x' } })).toEqual([]);
  });
  it("a VM's dataVolumeTemplates are checked at their paths", () => {
    const vm = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'web' },
      spec: {
        runStrategy: 'Always',
        dataVolumeTemplates: [{ metadata: { name: 'web-root' }, spec: { source: { http: { url: 'gopher://x' } }, storage: storage('1Gi') } }],
        template: { spec: { domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } }, volumes: [{ name: 'root', dataVolume: { name: 'web-root' } }] } },
      },
    };
    expect(validateManifest(vm).map((i) => i.path)).toEqual(['/spec/dataVolumeTemplates/0/spec/source/http/url']);
  });
});

describe('formatDataVolumes', () => {
  it('CDI columns', () => {
    const now = Date.parse('2026-01-01T00:01:00Z');
    const st = dataVolumeStatus(rec({ phase: 'ImportInProgress', fraction: 0.25, since: { Bound: now - 30_000 } }));
    const text = formatDataVolumes([{ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name: 'root', namespace: 'default' }, spec: { source: { kind: 'http' } }, status: st }], { now });
    expect(text!.split('\n')).toEqual(['NAME   PHASE              PROGRESS   RESTARTS   AGE', 'root   ImportInProgress   25.0%      0          30s']);
  });
});

describe('DataVolumeWorker before its first update (in-memory, no I/O)', () => {
  it('a revision expected before it is applied shows its DataVolumes Pending, so their VMs wait', async () => {
    const { DataVolumeWorker } = await import('../../../reconciler/standalone/datavolumes.js');
    const { pino } = await import('pino');
    const w = new DataVolumeWorker({ stateDir: '/nonexistent', pvcDir: '/nonexistent/pvcs', log: pino({ level: 'silent' }) });
    expect(w.status('default', 'root')).toBeUndefined();
    w.expect([dv({ source: { http: { url: 'https://x/y.qcow2' } }, storage: storage('1Gi') })]);
    const st = w.status('default', 'root')!;
    expect(st.phase).toBe('Pending');
    expect(volumeGate([{ name: 'rootdisk', dataVolume: { name: 'root' } }], (c) => w.status('default', c))?.reason).toBe('Provisioning');
    expect(w.list().map((d) => [d.metadata.name, d.status.phase])).toEqual([['root', 'Pending']]);
  });
  it('a DataVolume virtops cannot import (sourceRef) gates its VM as DataVolumeError', async () => {
    const { DataVolumeWorker } = await import('../../../reconciler/standalone/datavolumes.js');
    const { pino } = await import('pino');
    const dir = await (await import('node:fs/promises')).mkdtemp('/tmp/vo-dvw-');
    try {
      const w = new DataVolumeWorker({ stateDir: dir, pvcDir: `${dir}/pvcs`, log: pino({ level: 'silent' }) });
      await w.start();
      await w.update([dv({ sourceRef: { kind: 'DataSource', name: 'fedora' }, storage: storage('1Gi') })]);
      expect(volumeGate([{ name: 'rootdisk', dataVolume: { name: 'root' } }], (c) => w.status('default', c))).toEqual({ reason: 'DataVolumeError', message: expect.stringMatching(/DataSource references are not supported by virtops/) });
      await w.stop();
    } finally {
      await (await import('node:fs/promises')).rm(dir, { recursive: true, force: true });
    }
  });
});
