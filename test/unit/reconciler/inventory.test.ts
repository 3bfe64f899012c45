import { describe, expect, it } from 'vitest';
import {
  applyRevisionToOverrides,
  EMPTY_INVENTORY,
  manifestHash,
  objectKey,
  parseObjectKey,
  planRevision,
  type Inventory,
  type KubeObject,
} from '../../../reconciler/core/index.js';
import { vm } from './fixtures.js';

const vmObj = (name: string, memory = '128Mi'): KubeObject => {
  const v = vm({ runStrategy: 'Always', memory });
  return { ...v, metadata: { ...v.metadata, name } } as unknown as KubeObject;
};
const pod = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: {} });

function inventoryOf(objs: KubeObject[], revision = 'r0'): Inventory {
  return { revision, entries: Object.fromEntries(objs.map((o) => [objectKey(o), manifestHash(o)])) };
}

describe('objectKey', () => {
  it('defaults the namespace and round-trips group/version apiVersions', () => {
    const k = objectKey({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a' } });
    expect(k).toBe('kubevirt.io/v1/VirtualMachine/default/a');
    expect(parseObjectKey(k)).toEqual({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', namespace: 'default', name: 'a' });
    expect(parseObjectKey('v1/Pod/ns/p')).toEqual({ apiVersion: 'v1', kind: 'Pod', namespace: 'ns', name: 'p' });
  });
});

describe('planRevision', () => {
  it('first revision creates everything', () => {
    const plan = planRevision(EMPTY_INVENTORY, { sha: 's1', manifests: [vmObj('a'), pod('a-launcher')] });
    expect(plan.create.map(objectKey)).toEqual([objectKey(vmObj('a')), objectKey(pod('a-launcher'))]);
    expect(plan.prune).toEqual([]);
    expect(plan.next.revision).toBe('s1');
  });

  it('splits create / update / unchanged / prune and prunes only owned objects', () => {
    const current = inventoryOf([vmObj('keep'), vmObj('change'), vmObj('gone'), pod('gone-launcher')]);
    // 'foreign' exists in the cluster/store but was never in our inventory: it must never be pruned,
    // whether or not the new revision mentions it.
    const plan = planRevision(current, { sha: 's2', manifests: [vmObj('keep'), vmObj('change', '1Gi'), vmObj('new')] });
    expect(plan.unchanged.map((o) => o.metadata.name)).toEqual(['keep']);
    expect(plan.update.map((o) => o.metadata.name)).toEqual(['change']);
    expect(plan.create.map((o) => o.metadata.name)).toEqual(['new']);
    expect(plan.prune).toEqual(['kubevirt.io/v1/VirtualMachine/default/gone', 'v1/Pod/default/gone-launcher']);
    expect(plan.prune.some((k) => k.includes('foreign'))).toBe(false);
    expect(Object.keys(plan.next.entries).sort()).toEqual(
      ['change', 'keep', 'new'].map((n) => `kubevirt.io/v1/VirtualMachine/default/${n}`).sort(),
    );
  });

  it('ignores key order and status when comparing', () => {
    const a = vmObj('a');
    const reordered = JSON.parse(JSON.stringify({ spec: a.spec, metadata: a.metadata, kind: a.kind, apiVersion: a.apiVersion, status: { ready: true } })) as KubeObject;
    const plan = planRevision(inventoryOf([a]), { sha: 's', manifests: [reordered] });
    expect(plan.unchanged).toHaveLength(1);
  });

  it('rejects a revision declaring the same object twice', () => {
    expect(() => planRevision(EMPTY_INVENTORY, { sha: 'dup', manifests: [vmObj('a'), vmObj('a')] })).toThrow(/twice/);
  });
});

describe('applyRevisionToOverrides', () => {
  it('clears overrides of VMs the revision changes or removes, keeps the rest', () => {
    const current = inventoryOf([vmObj('same'), vmObj('edited'), vmObj('removed')]);
    const key = (n: string) => objectKey(vmObj(n));
    const overrides = {
      [key('same')]: { action: 'stop' as const, at: 1, revision: 'r0' },
      [key('edited')]: { action: 'stop' as const, at: 1, revision: 'r0' },
      [key('removed')]: { action: 'pause' as const, at: 1, revision: 'r0' },
    };
    const r = applyRevisionToOverrides(overrides, planRevision(current, { sha: 'r1', manifests: [vmObj('same'), vmObj('edited', '2Gi')] }));
    expect(Object.keys(r.overrides)).toEqual([key('same')]);
    expect(r.cleared).toEqual([key('edited'), key('removed')].sort());
  });

  it('also clears the overrides of VMs a commit in between changed, though the net change is nothing', () => {
    const current = inventoryOf([vmObj('flipped'), vmObj('same')]);
    const key = (n: string) => objectKey(vmObj(n));
    const overrides = { [key('flipped')]: { action: 'start' as const, at: 1, revision: 'r0' }, [key('same')]: { action: 'start' as const, at: 1, revision: 'r0' } };
    const r = applyRevisionToOverrides(overrides, planRevision(current, { sha: 'r2', manifests: [vmObj('flipped'), vmObj('same')] }), [key('flipped')]);
    expect(r.cleared).toEqual([key('flipped')]);
    expect(Object.keys(r.overrides)).toEqual([key('same')]);
  });
});

describe('override serialization', () => {
  it('round-trips and names the bad field', async () => {
    const { parseOverride, serializeOverride } = await import('../../../reconciler/core/index.js');
    const o = { action: 'restart' as const, at: Date.parse('2025-02-03T04:05:06Z'), revision: 'abc123' };
    expect(parseOverride(serializeOverride(o))).toEqual({ ok: true, override: o });
    expect(parseOverride('{"action":"reboot","at":"2025-01-01T00:00:00Z","revision":"a"}')).toMatchObject({ ok: false, error: expect.stringMatching(/\.action: must be one of start, stop, restart, pause, unpause/) });
    expect(parseOverride('{"action":"stop","at":"yesterday","revision":"a"}')).toMatchObject({ ok: false, error: expect.stringMatching(/\.at:/) });
    expect(parseOverride('{"action":"stop","at":"2025-01-01T00:00:00Z"}')).toMatchObject({ ok: false, error: expect.stringMatching(/\.revision:/) });
    expect(parseOverride('nope')).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON/) });
  });
});
