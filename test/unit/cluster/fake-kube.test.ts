/**
 * The API-server behaviour FakeKubeClient promises (test/helpers/fake-kube.ts), checked
 * against the contracts of reconciler/cluster/kube.ts, so controller tests built on it can
 * trust it.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { KubernetesObject, V1Lease } from '@kubernetes/client-node';
import { FakeKubeClient, apiError, parseLabelSelector, selectorOf, type FakeObject } from '../../helpers/fake-kube.js';

const log = pino({ level: 'silent' });
const T0 = Date.parse('2025-01-01T00:00:00Z');
const cm = (name: string, data: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns' }, data }) as KubernetesObject;
const vm = (name: string) => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace: 'ns' }, spec: { runStrategy: 'Always' } }) as KubernetesObject;

describe('FakeKubeClient objects', () => {
  it('create sets uid, resourceVersion, generation, creationTimestamp; AlreadyExists → undefined; status is ignored', async () => {
    const kube = new FakeKubeClient({ now: () => T0 + 1234 });
    const created = (await kube.create({ ...vm('a'), status: { printableStatus: 'Running' } } as KubernetesObject)) as FakeObject;
    expect(created.metadata).toMatchObject({ name: 'a', namespace: 'ns', resourceVersion: '1', generation: 1, creationTimestamp: '2025-01-01T00:00:01Z' });
    expect(created.metadata.uid).toMatch(/^[0-9a-f]{8}-/);
    expect(created['status']).toBeUndefined();
    expect(await kube.create(vm('a'))).toBeUndefined();
    const b = (await kube.create(vm('b'))) as FakeObject;
    expect(b.metadata.uid!.slice(0, 5)).not.toBe(created.metadata.uid!.slice(0, 5));
    expect(kube.writes.map((w) => `${w.verb} ${w.resource}/${w.name}`)).toEqual(['create virtualmachines/a', 'create virtualmachines/a', 'create virtualmachines/b']);
  });

  it('read: undefined when absent; a namespaced object without namespace is in default', async () => {
    const kube = new FakeKubeClient();
    expect(await kube.read({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'ns' } })).toBeUndefined();
    await kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } });
    expect((await kube.read<FakeObject & KubernetesObject>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }))?.metadata.namespace).toBe('default');
  });

  it('mergePatch: 404 when absent, 409 on a stale resourceVersion, no-op keeps the resourceVersion; spec changes bump generation', async () => {
    const kube = new FakeKubeClient();
    await expect(kube.mergePatch(vm('a'), { metadata: { labels: { x: 'y' } } })).rejects.toMatchObject({ code: 404 });
    const a = (await kube.create(vm('a'))) as FakeObject;
    const labelled = await kube.mergePatch<FakeObject & KubernetesObject>(vm('a'), { metadata: { labels: { x: 'y' } } });
    expect(labelled.metadata.generation).toBe(1);
    await expect(kube.mergePatch(vm('a'), { metadata: { resourceVersion: a.metadata.resourceVersion, labels: { x: 'z' } } })).rejects.toMatchObject({ code: 409 });
    const same = await kube.mergePatch<FakeObject & KubernetesObject>(vm('a'), { metadata: { labels: { x: 'y' } } });
    expect(same.metadata.resourceVersion).toBe(labelled.metadata.resourceVersion);
    const changed = await kube.mergePatch<FakeObject & KubernetesObject>(vm('a'), { spec: { runStrategy: 'Halted' } });
    expect(changed.metadata.generation).toBe(2);
  });

  it('status patches merge into status only, prune nulls of kubevirt.io objects, 404 when absent', async () => {
    const kube = new FakeKubeClient();
    await expect(kube.patchCustomStatus('virtualmachines', 'ns', 'a', { ready: true })).rejects.toMatchObject({ code: 404 });
    await kube.create(vm('a'));
    await kube.patchCustomStatus('virtualmachines', 'ns', 'a', { ready: true, printableStatus: 'Running', conditions: [{ type: 'Ready', lastProbeTime: null }] });
    await kube.patchCustomStatus('virtualmachines', 'ns', 'a', { printableStatus: null });
    const a = kube.get('kubevirt.io/v1', 'VirtualMachine', 'a', 'ns')!;
    expect(a['status']).toEqual({ ready: true, conditions: [{ type: 'Ready' }] });
    expect(a.metadata.generation).toBe(1);
  });

  it('delete: absent, uid precondition, finalizers hold the object until removed', async () => {
    const kube = new FakeKubeClient();
    expect(await kube.delete(cm('x'))).toBe('absent');
    await kube.create({ ...cm('x'), metadata: { name: 'x', namespace: 'ns', finalizers: ['f'] } } as KubernetesObject);
    expect(await kube.delete(cm('x'), { preconditionUid: 'other' })).toBe('absent');
    expect(await kube.delete(cm('x'))).toBe('deleted');
    expect(kube.get('v1', 'ConfigMap', 'x', 'ns')?.metadata.deletionTimestamp).toBeDefined();
    await kube.mergePatch(cm('x'), { metadata: { finalizers: [] } });
    expect(kube.get('v1', 'ConfigMap', 'x', 'ns')).toBeUndefined();
  });

  it('garbage collection: dependents of a removed owner are deleted (their finalizers apply); Orphan drops the reference', async () => {
    const kube = new FakeKubeClient();
    const owner = kube.seed(cm('owner'));
    const ref = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid!, controller: true }];
    kube.seed({ ...cm('child'), metadata: { name: 'child', namespace: 'ns', ownerReferences: ref } });
    kube.seed({ ...cm('held'), metadata: { name: 'held', namespace: 'ns', ownerReferences: ref, finalizers: ['f'] } });
    kube.seed({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'grandchild', namespace: 'ns', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'child', uid: kube.get('v1', 'ConfigMap', 'child', 'ns')!.metadata.uid!, controller: true }] }, spec: {} });
    await kube.delete(cm('owner'));
    expect(kube.get('v1', 'ConfigMap', 'child', 'ns')).toBeUndefined();
    expect(kube.get('v1', 'Pod', 'grandchild', 'ns')).toBeUndefined();
    expect(kube.get('v1', 'ConfigMap', 'held', 'ns')?.metadata.deletionTimestamp).toBeDefined();

    const o2 = kube.seed(cm('o2'));
    kube.seed({ ...cm('c2'), metadata: { name: 'c2', namespace: 'ns', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'o2', uid: o2.metadata.uid! }] } });
    await kube.delete(cm('o2'), { propagationPolicy: 'Orphan' });
    expect(kube.get('v1', 'ConfigMap', 'c2', 'ns')?.metadata.ownerReferences).toBeUndefined();
  });

  it('a Pod on a node deleted with grace stays terminating until deleted with grace 0 (deletePodNow)', async () => {
    const kube = new FakeKubeClient();
    const pod = kube.seed({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 60 } });
    await kube.delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } });
    expect(kube.get('v1', 'Pod', 'p', 'ns')?.metadata).toMatchObject({ deletionGracePeriodSeconds: 60, deletionTimestamp: expect.any(String) });
    await kube.deletePodNow('ns', 'p', 'not-its-uid');
    expect(kube.get('v1', 'Pod', 'p', 'ns')).toBeDefined();
    await kube.deletePodNow('ns', 'p', pod.metadata.uid!);
    expect(kube.get('v1', 'Pod', 'p', 'ns')).toBeUndefined();
  });

  it('leases: create once, update at the read resourceVersion only', async () => {
    const kube = new FakeKubeClient();
    const lease: V1Lease = { metadata: { name: 'l', namespace: 'ns' }, spec: { holderIdentity: 'a', renewTime: new Date(T0) } };
    const first = await kube.createLease(lease);
    expect(first?.metadata?.resourceVersion).toBeDefined();
    expect(await kube.createLease(lease)).toBeUndefined();
    const mine = (await kube.readLease('ns', 'l'))!;
    expect(await kube.updateLease({ ...mine, spec: { ...mine.spec, holderIdentity: 'b' } })).toBeDefined();
    expect(await kube.updateLease({ ...mine, spec: { ...mine.spec, holderIdentity: 'c' } })).toBeUndefined();
    expect((await kube.readLease('ns', 'l'))?.spec?.holderIdentity).toBe('b');
  });

  it('failNext: before or after the write; events and writes are recorded', async () => {
    const kube = new FakeKubeClient();
    kube.failNext('create', 'configmaps', apiError(500));
    await expect(kube.create(cm('a'))).rejects.toMatchObject({ code: 500 });
    expect(kube.get('v1', 'ConfigMap', 'a', 'ns')).toBeUndefined();
    kube.failNext('create', 'configmaps', apiError(504), { after: true });
    await expect(kube.create(cm('a'))).rejects.toMatchObject({ code: 504 });
    expect(kube.get('v1', 'ConfigMap', 'a', 'ns')).toBeDefined();
    await kube.event(vm('a'), 'Warning', 'Oops', 'message', 'test');
    expect(kube.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'Oops', involved: expect.objectContaining({ name: 'a', kind: 'VirtualMachine' }) })]);
    expect(kube.counts.get('create configmaps')).toBe(2);
    expect(kube.totalWrites).toBe(3);
  });
});

describe('FakeKubeClient informers', () => {
  const pod = (name: string, labels: Record<string, string>, nodeName?: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns', labels }, spec: nodeName ? { nodeName } : {} });

  it('selectors: labels (equality and set-based) and fields', () => {
    const m = selectorOf({ labelSelector: 'kubevirt.io=virt-launcher,tier in (a, b),!legacy', fieldSelector: 'spec.nodeName=n1' });
    const o = (labels: Record<string, string>, nodeName?: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { labels }, spec: { nodeName } }) as FakeObject;
    expect(m(o({ 'kubevirt.io': 'virt-launcher', tier: 'a' }, 'n1'))).toBe(true);
    expect(m(o({ 'kubevirt.io': 'virt-launcher', tier: 'c' }, 'n1'))).toBe(false);
    expect(m(o({ 'kubevirt.io': 'virt-launcher', tier: 'a', legacy: '' }, 'n1'))).toBe(false);
    expect(m(o({ 'kubevirt.io': 'virt-launcher', tier: 'a' }, 'n2'))).toBe(false);
    expect(parseLabelSelector('a!=b')[0]!({ a: 'c' })).toBe(true);
  });

  it('lists on start, then delivers add/update/delete; an object leaving the selector is a delete', async () => {
    const kube = new FakeKubeClient();
    kube.seed(pod('p1', { 'kubevirt.io': 'virt-launcher' }, 'n1'));
    kube.seed(pod('other', { app: 'x' }, 'n1'));
    const seen: string[] = [];
    const inf = kube.informer<KubernetesObject>({ path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', labelSelector: 'kubevirt.io=virt-launcher', fieldSelector: 'spec.nodeName=n1' }, (t, o) => seen.push(`${t} ${o.metadata?.name}`), log);
    await inf.start();
    expect(seen).toEqual(['add p1']);
    kube.seed(pod('p2', { 'kubevirt.io': 'virt-launcher' }, 'n2'));
    kube.modify('v1', 'Pod', 'p2', 'ns', (p: FakeObject) => {
      (p['spec'] as { nodeName: string }).nodeName = 'n1';
    });
    kube.modify('v1', 'Pod', 'p1', 'ns', (p: FakeObject) => {
      p.metadata.labels = {};
    });
    kube.remove('v1', 'Pod', 'p2', 'ns', { gracePeriodSeconds: 0 });
    expect(seen).toEqual(['add p1', 'add p2', 'delete p1', 'delete p2']);
    expect(inf.list()).toEqual([]);
    await inf.stop();
  });

  it('pauseWatches keeps a cache stale until resumeWatches; a failing list is retried', async () => {
    const kube = new FakeKubeClient({ informerRetryMs: 1 });
    kube.failNext('list', 'configmaps', apiError(503), { times: 2 });
    const inf = kube.informer<KubernetesObject>({ path: '/api/v1/configmaps', apiVersion: 'v1', kind: 'ConfigMap' }, () => undefined, log);
    await inf.start();
    await kube.create(cm('a'));
    expect(inf.get('a', 'ns')).toBeDefined();
    kube.pauseWatches('ConfigMap');
    await kube.create(cm('b'));
    expect(inf.get('b', 'ns')).toBeUndefined();
    kube.resumeWatches();
    expect(inf.get('b', 'ns')).toBeDefined();
    await inf.stop();
  });
});
