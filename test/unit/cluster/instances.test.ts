import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../../api/kubevirt.js';
import { renderLauncherPod, VMI_UID_PLACEHOLDER } from '../../../synth/launcher-pod.js';
import { computeVmStatus } from '../../../reconciler/core/index.js';
import {
  ANNOTATION_VM_GENERATION,
  VMI_FINALIZER,
  instantiateLauncherPod,
  isControlledBy,
  launcherPodNameFor,
  observeInstance,
  statusMergePatch,
  statusWrite,
  vmiForVm,
  withoutNulls,
} from '../../../reconciler/cluster/instances.js';
import { T0, vm as fixtureVm } from '../reconciler/fixtures.js';

function apiVm(extra: Partial<VirtualMachine['metadata']> = {}): VirtualMachine {
  const v = fixtureVm({ runStrategy: 'Always', generation: 3 });
  v.metadata = { ...v.metadata, uid: 'vm-uid-1', ...extra };
  v.spec.template.metadata = { labels: { app: 'web' }, annotations: { note: 'x' } };
  return v;
}

function apiVmi(status?: VirtualMachineInstance['status'], extra: Partial<VirtualMachineInstance['metadata']> = {}): VirtualMachineInstance {
  const vmi = vmiForVm(apiVm());
  vmi.metadata = { ...vmi.metadata, uid: 'abcdef12-3456', creationTimestamp: new Date(T0 - 60_000).toISOString(), ...extra };
  if (status) vmi.status = status;
  return vmi;
}

describe('vmiForVm', () => {
  it('names the VMI after its VM, owned by it (controller), with the cleanup finalizer and the VM generation', () => {
    const vmi = vmiForVm(apiVm());
    expect(vmi.metadata.name).toBe('web');
    expect(vmi.metadata.namespace).toBe('default');
    expect(vmi.metadata.ownerReferences).toEqual([{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'web', uid: 'vm-uid-1', controller: true, blockOwnerDeletion: true }]);
    expect(vmi.metadata.finalizers).toEqual([VMI_FINALIZER]);
    expect(vmi.metadata.annotations).toMatchObject({ note: 'x', [ANNOTATION_VM_GENERATION]: '3' });
    expect(vmi.metadata.labels).toMatchObject({ app: 'web', 'vm.kubevirt.io/name': 'web' });
    expect(vmi.spec).toEqual(apiVm().spec.template.spec);
  });

  it('refuses a VM that was not read from the API server (no uid to own by)', () => {
    const v = apiVm();
    delete v.metadata.uid;
    expect(() => vmiForVm(v)).toThrow(/uid/);
  });
});

describe('instantiateLauncherPod', () => {
  const template = renderLauncherPod(apiVm());

  it('keeps the template spec, sets the VMI uid label, a per-incarnation name and the VMI as controller owner', () => {
    const pod = instantiateLauncherPod(template, apiVmi(), 'abc123');
    expect(template.metadata.labels?.['kubevirt.io/created-by']).toBe(VMI_UID_PLACEHOLDER);
    expect(pod.metadata.labels?.['kubevirt.io/created-by']).toBe('abcdef12-3456');
    expect(pod.metadata.name).toBe('virt-launcher-web-abcde');
    expect(pod.metadata.ownerReferences).toEqual([{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'web', uid: 'abcdef12-3456', controller: true, blockOwnerDeletion: true }]);
    expect(pod.metadata.annotations?.['virtops.io/revision']).toBe('abc123');
    expect(pod.spec).toEqual(template.spec);
    // The template itself is untouched (it is reused for the next incarnation).
    expect(template.metadata.ownerReferences).toBeUndefined();
  });

  it('drops the "template, do not apply" markers GitOps tools honour, keeps the other annotations', () => {
    expect(template.metadata.annotations).toMatchObject({ 'config.kubernetes.io/local-config': 'true', 'argocd.argoproj.io/hook': 'Skip' });
    const pod = instantiateLauncherPod(template, apiVmi());
    expect(pod.metadata.annotations?.['config.kubernetes.io/local-config']).toBeUndefined();
    expect(pod.metadata.annotations?.['argocd.argoproj.io/hook']).toBeUndefined();
    expect(pod.metadata.annotations?.['kubevirt.io/domain']).toBe('web');
  });

  it('gives two incarnations of one VM different Pod names', () => {
    expect(launcherPodNameFor('web', '1a2b3c4d-0000')).toBe('virt-launcher-web-1a2b3');
    expect(launcherPodNameFor('web', '9f8e7d6c-0000')).toBe('virt-launcher-web-9f8e7');
  });

  it('keeps a launcher Pod name within 63 characters whatever the VM name, the VMI uid suffix whole', () => {
    const long = `n${'a'.repeat(61)}z`;
    const name = launcherPodNameFor(long, '1a2b3c4d-0000');
    expect(name).toBe(`virt-launcher-n${'a'.repeat(42)}-1a2b3`);
    expect(name.length).toBe(63);
    // A cut that would end the VM part in '-' or '.' drops them (a DNS label may not end so).
    expect(launcherPodNameFor(`${'b'.repeat(42)}.-x${'c'.repeat(20)}`, 'fffff')).toBe(`virt-launcher-${'b'.repeat(42)}-fffff`);
    // Up to 43 characters the VM name is kept whole.
    expect(launcherPodNameFor('v'.repeat(43), 'abcde')).toBe(`virt-launcher-${'v'.repeat(43)}-abcde`);
  });

  it('refuses a VMI without uid', () => {
    const vmi = apiVmi();
    delete vmi.metadata.uid;
    expect(() => instantiateLauncherPod(template, vmi)).toThrow(/uid/);
  });

  it('isControlledBy matches only a controller owner of that uid', () => {
    const pod = instantiateLauncherPod(template, apiVmi());
    expect(isControlledBy(pod, 'abcdef12-3456')).toBe(true);
    expect(isControlledBy(pod, 'other')).toBe(false);
    expect(isControlledBy({ metadata: { ownerReferences: [{ uid: 'abcdef12-3456' }] } }, 'abcdef12-3456')).toBe(false);
  });
});

function pod(p: Partial<V1Pod>): V1Pod {
  return { metadata: { name: 'virt-launcher-web-abcde' }, ...p };
}

describe('observeInstance', () => {
  const now = T0;
  it.each<[string, VirtualMachineInstance['status'], V1Pod | undefined, Record<string, unknown>]>([
    ['VMI just created, no Pod yet', undefined, undefined, { phase: 'Pending' }],
    ['Pod waiting for the scheduler', undefined, pod({ status: { phase: 'Pending' } }), { phase: 'Scheduling' }],
    [
      'Pod unschedulable → reason Unschedulable with the scheduler message',
      undefined,
      pod({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory.' }] } }),
      { phase: 'Scheduling', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory.' },
    ],
    ['Pod bound to a node', undefined, pod({ spec: { nodeName: 'n1', containers: [] }, status: { phase: 'Pending' } }), { phase: 'Scheduled' }],
    [
      'agent reported Running and Ready',
      { phase: 'Running', nodeName: 'n1', conditions: [{ type: 'Ready', status: 'True' }], phaseTransitionTimestamps: [{ phase: 'Running', phaseTransitionTimestamp: new Date(T0 - 30_000).toISOString() }] },
      pod({ spec: { nodeName: 'n1', containers: [] }, status: { phase: 'Running' } }),
      { phase: 'Running', ready: true, paused: false, runningSince: T0 - 30_000 },
    ],
    ['paused', { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }, { type: 'Paused', status: 'True' }] }, undefined, { phase: 'Running', paused: true, ready: false }],
    [
      'launcher Pod failed while the VMI still says Running',
      { phase: 'Running' },
      pod({ spec: { nodeName: 'n1', containers: [] }, status: { phase: 'Failed', message: 'OOMKilled' } }),
      { phase: 'Failed', reason: 'LauncherPodFinished', message: 'OOMKilled' },
    ],
    ['a final VMI phase wins over the Pod', { phase: 'Succeeded' }, pod({ status: { phase: 'Running' } }), { phase: 'Succeeded' }],
  ])('%s', (_name, status, p, expected) => {
    const o = observeInstance(apiVmi(status), p, now);
    expect(o).toMatchObject({ uid: 'abcdef12-3456', vmGeneration: 3, createdAt: T0 - 60_000, ...expected });
  });

  it('a VMI being deleted is terminating; no VMI means no instance', () => {
    expect(observeInstance(apiVmi({ phase: 'Running' }, { deletionTimestamp: new Date(T0).toISOString() }), undefined, now)?.terminating).toBe(true);
    expect(observeInstance(undefined, undefined, now)).toBeUndefined();
  });

  it('an unschedulable launcher Pod makes the VM ErrorUnschedulable (through reconciler/core)', () => {
    const o = observeInstance(apiVmi(), pod({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'Insufficient memory' }] } }), now);
    const s = computeVmStatus(apiVm(), o, { now });
    expect(s.printableStatus).toBe('ErrorUnschedulable');
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', message: 'Insufficient memory' });
  });
});

describe('statusWrite', () => {
  const running = computeVmStatus(apiVm(), observeInstance(apiVmi({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }), undefined, T0), { now: T0 });
  const starting = computeVmStatus(apiVm(), observeInstance(apiVmi(), undefined, T0), { now: T0 });

  it('never writes an unchanged status (nulls the API server prunes are ignored)', () => {
    expect(statusWrite(withoutNulls(running), running, { coalesceMs: 1000, now: T0 })).toEqual({ write: 'no' });
  });

  it('defers a transient status, then writes it if it still holds', () => {
    expect(starting.printableStatus).toBe('Starting');
    expect(statusWrite(undefined, starting, { coalesceMs: 1000, now: T0 })).toEqual({ write: 'later', afterMs: 1000 });
    expect(statusWrite(undefined, starting, { coalesceMs: 1000, now: T0 + 400, pendingSinceMs: T0 })).toEqual({ write: 'later', afterMs: 600 });
    expect(statusWrite(undefined, starting, { coalesceMs: 1000, now: T0 + 1000, pendingSinceMs: T0 })).toEqual({ write: 'now' });
  });

  it('writes a settled status at once', () => {
    expect(statusWrite(starting, running, { coalesceMs: 1000, now: T0 })).toEqual({ write: 'now' });
  });

  it('statusMergePatch nulls keys that went away', () => {
    expect(statusMergePatch({ a: 1, startFailure: { consecutiveFailCount: 1 } }, { a: 2 })).toEqual({ a: 2, startFailure: null });
  });
});
