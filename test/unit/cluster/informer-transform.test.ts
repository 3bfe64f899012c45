/**
 * The informer's cache transform (reconciler/cluster/informer.ts): stripForCache on its own,
 * and a ResilientInformer over a fake API client (a fake, for this unit test only: list and
 * watch answer from memory) caching stripped objects from both the list and the watch.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LAST_APPLIED_ANNOTATION, ResilientInformer, stripForCache } from '../../../reconciler/cluster/informer.js';
import type { HttpKubeClient } from '../../../reconciler/cluster/kube.js';

const managedFields = [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'kubevirt.io/v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:running': {} } } }];
const vm = (name: string, annotations?: Record<string, string>): KubernetesObject => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name, namespace: 'lab', resourceVersion: '7', managedFields: structuredClone(managedFields), ...(annotations ? { annotations } : {}) },
  spec: { running: true },
} as KubernetesObject);

describe('stripForCache', () => {
  it('drops managedFields and the last-applied annotation in place, keeping every other annotation', () => {
    const obj = vm('a', { [LAST_APPLIED_ANNOTATION]: '{"big":"copy"}', 'virtops.io/keep': 'yes' });
    const out = stripForCache(obj);
    expect(out).toBe(obj);
    expect(out.metadata).toEqual({ name: 'a', namespace: 'lab', resourceVersion: '7', annotations: { 'virtops.io/keep': 'yes' } });
    expect((out as { spec?: unknown }).spec).toEqual({ running: true });
  });

  it('removes annotations left empty, and leaves objects without metadata alone', () => {
    expect(stripForCache(vm('a', { [LAST_APPLIED_ANNOTATION]: '{}' })).metadata).toEqual({ name: 'a', namespace: 'lab', resourceVersion: '7' });
    const status = { kind: 'Status', code: 410 } as KubernetesObject;
    expect(stripForCache(status)).toEqual({ kind: 'Status', code: 410 });
  });
});

/** A fake API client: one list answer, then a watch the test drives. */
function fakeClient(items: KubernetesObject[]) {
  let callback: ((phase: string, obj: unknown, raw: unknown) => void) | undefined;
  const client = {
    list: async () => ({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '10' }, items }),
    watch: {
      watch: async (_path: string, _params: unknown, cb: (phase: string, obj: unknown, raw: unknown) => void) => {
        callback = cb;
        return new AbortController();
      },
    },
  };
  return { client: client as unknown as HttpKubeClient, emit: (phase: string, obj: KubernetesObject) => callback!(phase, obj, { type: phase, object: obj }) };
}

const spec = { path: '/apis/kubevirt.io/v1/virtualmachines', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine' };
const log = pino({ level: 'silent' });

describe('ResilientInformer cache transform', () => {
  it('caches listed and watched objects without managedFields or the last-applied annotation', async () => {
    const { client, emit } = fakeClient([vm('listed', { [LAST_APPLIED_ANNOTATION]: '{}' })]);
    const seen: KubernetesObject[] = [];
    const informer = new ResilientInformer(client, spec, (_type, o) => seen.push(o), log);
    await informer.start();
    emit('ADDED', vm('watched', { [LAST_APPLIED_ANNOTATION]: '{}', keep: 'me' }));
    emit('BOOKMARK', { metadata: { resourceVersion: '12' } } as KubernetesObject);
    expect(informer.get('listed', 'lab')?.metadata).toEqual({ name: 'listed', namespace: 'lab', resourceVersion: '7' });
    expect(informer.get('watched', 'lab')?.metadata).toEqual({ name: 'watched', namespace: 'lab', resourceVersion: '7', annotations: { keep: 'me' } });
    expect(seen.map((o) => o.metadata?.managedFields)).toEqual([undefined, undefined]);
    await informer.stop();
  });

  it('takes another transform from the spec (identity keeps whole objects)', async () => {
    const { client } = fakeClient([vm('listed')]);
    const informer = new ResilientInformer(client, { ...spec, transform: (o) => o }, () => undefined, log);
    await informer.start();
    expect(informer.get('listed', 'lab')?.metadata?.managedFields).toEqual(managedFields);
    await informer.stop();
  });
});
