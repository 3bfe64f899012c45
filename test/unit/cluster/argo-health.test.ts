/**
 * Argo CD's built-in health checks for kubevirt.io VirtualMachine / VirtualMachineInstance
 * (resource_customizations/kubevirt.io/{VirtualMachine,VirtualMachineInstance}/health.lua), re-expressed as small functions, run
 * against the statuses virtops computes: a running VM is Healthy, a VM git declares stopped
 * is not Progressing (Argo releases that know runStrategy Halted call it Healthy, older ones
 * Suspended), a VM on its way is Progressing with KubeVirt's printableStatus as message.
 */
import { describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../../../api/kubevirt.js';
import { computeVmStatus } from '../../../reconciler/core/index.js';
import { observeInstance, vmiForVm } from '../../../reconciler/cluster/instances.js';
import { vmiStatusFor } from '../../../reconciler/cluster/agent-status.js';
import { T0, vm as fixtureVm } from '../reconciler/fixtures.js';

type Health = { status: 'Healthy' | 'Progressing' | 'Suspended' | 'Degraded' | 'Unknown'; message: string };

/** Argo CD's VirtualMachine check (+ the newer rule: runStrategy Halted and Stopped is Healthy). */
function argoVmHealth(vm: { spec: VirtualMachine['spec']; status?: VirtualMachineStatus }, knowsHalted: boolean): Health {
  const hs: Health = { status: 'Progressing', message: 'No status available' };
  const s = vm.status;
  if (!s) return hs;
  for (const c of s.conditions ?? []) {
    if (c.type === 'Paused' && c.status === 'True') return { status: 'Suspended', message: 'Paused' };
    if (c.type === 'Ready') {
      if (c.status === 'True') Object.assign(hs, { status: 'Healthy', message: 'Running' });
      else if (s.created) hs.message = 'Starting';
      else Object.assign(hs, { status: knowsHalted && vm.spec.runStrategy === 'Halted' ? 'Healthy' : 'Suspended', message: 'Stopped' });
    }
  }
  if (s.printableStatus) hs.message = s.printableStatus;
  return hs;
}

/** Argo CD's VirtualMachineInstance check. */
function argoVmiHealth(vmi: VirtualMachineInstance): Health {
  const s = vmi.status;
  const hs: Health = { status: 'Progressing', message: 'No status available' };
  if (!s) return hs;
  if (s.phase) {
    hs.message = s.phase;
    if (s.phase === 'Failed') return { status: 'Degraded', message: s.phase };
    if (['Pending', 'Scheduling', 'Scheduled'].includes(s.phase)) return hs;
    if (s.phase === 'Succeeded') return { status: 'Suspended', message: s.phase };
    if (s.phase === 'Unknown') return { status: 'Unknown', message: s.phase };
  }
  for (const c of s.conditions ?? []) {
    if (c.type === 'Ready') Object.assign(hs, c.status === 'True' ? { status: 'Healthy', message: 'Running' } : { status: 'Degraded', message: c.message ?? '' });
    else if (c.type === 'Paused' && c.status === 'True') return { status: 'Suspended', message: c.message ?? '' };
  }
  return hs;
}

const NOW = new Date(T0);
function vmWith(runStrategy: VirtualMachine['spec']['runStrategy']): VirtualMachine {
  const v = fixtureVm({ runStrategy });
  v.metadata.uid = 'vm-uid';
  return v;
}
function runningVmi(v: VirtualMachine, paused = false): VirtualMachineInstance {
  const vmi = vmiForVm(v);
  vmi.metadata.uid = 'vmi-uid';
  vmi.metadata.creationTimestamp = new Date(T0 - 60_000).toISOString();
  vmi.status = vmiStatusFor(vmi, { reachable: true, phase: 'Running', paused }, 'n1', NOW).status;
  return vmi;
}

describe('Argo CD reads virtops VM and VMI status as KubeVirt\'s', () => {
  it('running VM and its VMI → Healthy', () => {
    const v = vmWith('Always');
    const vmi = runningVmi(v);
    const status = computeVmStatus(v, observeInstance(vmi, undefined, T0), { now: T0 });
    expect(argoVmHealth({ spec: v.spec, status }, false)).toEqual({ status: 'Healthy', message: 'Running' });
    expect(argoVmiHealth(vmi)).toEqual({ status: 'Healthy', message: 'Running' });
  });

  it('a VM git declares stopped (Halted) is never Progressing: Healthy (newer Argo) / Suspended (older)', () => {
    const v = vmWith('Halted');
    const status = computeVmStatus(v, undefined, { now: T0 });
    expect(argoVmHealth({ spec: v.spec, status }, true)).toEqual({ status: 'Healthy', message: 'Stopped' });
    expect(argoVmHealth({ spec: v.spec, status }, false)).toEqual({ status: 'Suspended', message: 'Stopped' });
  });

  it('starting → Progressing "Starting"; paused → Suspended', () => {
    const v = vmWith('Always');
    const vmi = vmiForVm(v);
    vmi.metadata.uid = 'vmi-uid';
    const starting = computeVmStatus(v, observeInstance(vmi, undefined, T0), { now: T0 });
    expect(argoVmHealth({ spec: v.spec, status: starting }, true)).toEqual({ status: 'Progressing', message: 'Starting' });
    const paused = computeVmStatus(v, observeInstance(runningVmi(v, true), undefined, T0), { now: T0 });
    expect(argoVmHealth({ spec: v.spec, status: paused }, true)).toEqual({ status: 'Suspended', message: 'Paused' });
  });

  it('unschedulable → Progressing with message ErrorUnschedulable (as for KubeVirt)', () => {
    const v = vmWith('Always');
    const vmi = vmiForVm(v);
    vmi.metadata.uid = 'vmi-uid';
    const o = observeInstance(vmi, { metadata: { name: 'p' }, status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'Insufficient memory' }] } }, T0);
    expect(argoVmHealth({ spec: v.spec, status: computeVmStatus(v, o, { now: T0 }) }, true)).toEqual({ status: 'Progressing', message: 'ErrorUnschedulable' });
  });
});
