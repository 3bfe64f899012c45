/**
 * Events against a real kube-apiserver: the same event again within the window is one Event
 * with a growing count (as client-go's correlator does), so a repeating condition cannot
 * flood a namespace's events; a different message is an Event of its own.
 */
import { randomBytes } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpKubeClient, loadKubeConfig } from '../../../reconciler/cluster/kube.js';
import { clusterTestenv } from './testenv-fixture.js';

const env = await clusterTestenv();

describe.skipIf(!env)('HttpKubeClient.event (real kube-apiserver)', () => {
  const admin = env ? new HttpKubeClient(loadKubeConfig(env.kubeconfigPath)) : undefined!;
  const name = `vo-events-${randomBytes(3).toString('hex')}`;
  const ns = 'default';

  afterAll(async () => {
    await admin.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns } }).catch(() => undefined);
    const list = await admin.list<CoreV1Event>('v1', 'Event', { namespace: ns, fieldSelector: `involvedObject.name=${name}` }).catch(() => ({ items: [] as CoreV1Event[] }));
    for (const e of list.items) await admin.delete({ apiVersion: 'v1', kind: 'Event', metadata: { name: e.metadata!.name!, namespace: ns } }).catch(() => undefined);
  });

  it('a repeat counts on the existing Event; another message is a new one', async () => {
    const cm = await admin.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { a: 'b' } } as never);
    for (let i = 0; i < 5; i++) await admin.event(cm, 'Warning', 'SyncFailed', 'the same failure', 'virtops-test');
    await admin.event(cm, 'Warning', 'SyncFailed', 'another failure', 'virtops-test');
    const list = await admin.list<CoreV1Event>('v1', 'Event', { namespace: ns, fieldSelector: `involvedObject.name=${name}` });
    const byMessage = Object.fromEntries(list.items.map((e) => [e.message, e]));
    expect(list.items).toHaveLength(2);
    expect(byMessage['the same failure']?.count).toBe(5);
    expect(byMessage['another failure']?.count).toBe(1);
    const same = byMessage['the same failure']!;
    expect(new Date(same.lastTimestamp!).getTime()).toBeGreaterThanOrEqual(new Date(same.firstTimestamp!).getTime());
  });
});
