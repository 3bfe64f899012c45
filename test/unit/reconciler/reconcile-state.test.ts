import { describe, expect, it } from 'vitest';
import type { VirtualMachine } from '../../../api/kubevirt.js';
import { computeVmStatus, nextBackoff, NO_BACKOFF, reconcileStateFromStatus } from '../../../reconciler/core/index.js';

const vm = (runStrategy: string): VirtualMachine =>
  ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'a', namespace: 'default' }, spec: { runStrategy, template: { spec: { domain: { devices: {} } } } } }) as unknown as VirtualMachine;

describe('durable reconcile state round-trips through the VM status', () => {
  it('backoff: startFailure carries count, last failed uid and retry time', () => {
    const backoff = nextBackoff(nextBackoff(NO_BACKOFF, { type: 'failed', uid: 'u1' }, 1000), { type: 'failed', uid: 'u2' }, 2000);
    const status = computeVmStatus(vm('Always'), undefined, { now: 2000, backoff });
    expect(reconcileStateFromStatus(status).backoff).toEqual(backoff);
  });

  it('no failures: no backoff read back', () => {
    expect(reconcileStateFromStatus(computeVmStatus(vm('Always'), undefined, { now: 1 })).backoff).toBeUndefined();
  });

  it('Once completion survives as condition OnceCompleted', () => {
    const status = computeVmStatus(vm('Once'), undefined, { now: 1, onceCompleted: true });
    expect(status.conditions?.map((c) => c.type)).toContain('OnceCompleted');
    expect(reconcileStateFromStatus(status).onceCompleted).toBe(true);
    expect(status.printableStatus).toBe('Stopped');
  });

  it('an action failure is read back; InvalidSpec is not (it is recomputed each pass)', () => {
    const failed = computeVmStatus(vm('Always'), undefined, { now: 1, failure: { reason: 'NoLauncherPod', message: 'no Pod' } });
    expect(reconcileStateFromStatus(failed).failure).toEqual({ reason: 'NoLauncherPod', message: 'no Pod' });
    const invalid = computeVmStatus(vm('Sometimes'), undefined, { now: 1 });
    expect(invalid.conditions?.find((c) => c.type === 'Failure')?.reason).toBe('InvalidSpec');
    expect(reconcileStateFromStatus(invalid).failure).toBeUndefined();
  });
});
