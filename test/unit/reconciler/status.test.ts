import { describe, expect, it } from 'vitest';
import type { Condition, PrintableStatus, RunStrategy } from '../../../api/kubevirt.js';
import { computeVmStatus, type ObservedInstance, type StatusContext } from '../../../reconciler/core/index.js';
import { SEC, T0, inst, templateSpec, vm } from './fixtures.js';

const cond = (status: ReturnType<typeof computeVmStatus>, type: string): Condition | undefined =>
  status.conditions?.find((c) => c.type === type);

describe('computeVmStatus: printableStatus', () => {
  it.each<[string, RunStrategy, ObservedInstance | undefined, Partial<StatusContext>, PrintableStatus]>([
    ['halted, nothing running', 'Halted', undefined, {}, 'Stopped'],
    ['always, not yet created', 'Always', undefined, {}, 'Starting'],
    ['pending instance', 'Always', inst('Pending'), {}, 'Starting'],
    ['scheduled instance', 'Always', inst('Scheduled'), {}, 'Starting'],
    ['running', 'Always', inst('Running'), {}, 'Running'],
    ['paused', 'Always', inst('Running', { paused: true }), {}, 'Paused'],
    ['terminating instance', 'Always', inst('Running', { terminating: true }), {}, 'Stopping'],
    ['halted but still running', 'Halted', inst('Running'), {}, 'Stopping'],
    ['stop override on a running VM', 'Always', inst('Running'), { override: { action: 'stop', at: T0, revision: 'a' } }, 'Stopping'],
    ['unschedulable', 'Always', inst('Pending', { reason: 'Unschedulable' }), {}, 'ErrorUnschedulable'],
    ['image pull error', 'Always', inst('Scheduling', { reason: 'ErrImagePull' }), {}, 'ErrImagePull'],
    ['image pull backoff', 'Always', inst('Scheduling', { reason: 'ImagePullBackOff' }), {}, 'ImagePullBackOff'],
    ['provisioning', 'Always', inst('Pending', { reason: 'Provisioning' }), {}, 'Provisioning'],
    ['unknown phase', 'Always', inst('Unknown'), {}, 'Unknown'],
    ['crash loop', 'Always', inst('Failed', { uid: 'f', runningSince: T0 - 2 * SEC, finishedAt: T0 - SEC }), {}, 'CrashLoopBackOff'],
    ['backoff expired: restarting', 'Always', inst('Failed', { uid: 'f' }), { backoff: { consecutiveFailures: 1, retryAfter: T0 - SEC, lastFailedUid: 'f' } }, 'Starting'],
    ['RerunOnFailure after a clean shutdown', 'RerunOnFailure', inst('Succeeded'), {}, 'Stopped'],
    ['Once finished', 'Once', inst('Failed'), {}, 'Stopped'],
    ['Manual, never started', 'Manual', undefined, {}, 'Stopped'],
    ['VM deleted', 'Always', inst('Running'), {}, 'Terminating'],
  ])('%s → %s', (name, strategy, observed, extra, expected) => {
    const v = vm({ runStrategy: strategy, deleting: name === 'VM deleted' });
    expect(computeVmStatus(v, observed, { now: T0, ...extra }).printableStatus).toBe(expected);
  });
});

describe('computeVmStatus: conditions and fields', () => {
  it('a VM git declares stopped is healthy: Stopped, Ready=False (VMINotExists), no Failure', () => {
    const s = computeVmStatus(vm({ runStrategy: 'Halted', generation: 3 }), undefined, { now: T0 });
    expect(s).toEqual({
      printableStatus: 'Stopped',
      ready: false,
      created: false,
      runStrategy: 'Halted',
      desiredGeneration: 3,
      observedGeneration: 3,
      conditions: [
        { type: 'Ready', status: 'False', reason: 'VMINotExists', message: 'VMI does not exist', lastProbeTime: null, lastTransitionTime: new Date(T0).toISOString() },
      ],
    });
  });

  it('a running ready instance: Ready=True, created, ready', () => {
    const s = computeVmStatus(vm({ runStrategy: 'Always' }), inst('Running', { vmGeneration: 1 }), { now: T0 });
    expect(s).toMatchObject({ printableStatus: 'Running', ready: true, created: true, runStrategy: 'Always' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True' });
  });

  it('paused: Ready=False (Paused) and Paused=True (PausedByUser)', () => {
    const s = computeVmStatus(vm({ runStrategy: 'Always' }), inst('Running', { paused: true }), { now: T0 });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'Paused' });
    expect(cond(s, 'Paused')).toMatchObject({ status: 'True', reason: 'PausedByUser' });
    expect(s.ready).toBe(false);
  });

  it('template change on a running VM: RestartRequired=True, observedGeneration lags', () => {
    const running = inst('Running', { spec: templateSpec('64Mi'), vmGeneration: 1 });
    const s = computeVmStatus(vm({ runStrategy: 'Always', generation: 2 }), running, { now: T0 });
    expect(cond(s, 'RestartRequired')).toMatchObject({ status: 'True', reason: 'TemplateChanged' });
    expect(s).toMatchObject({ desiredGeneration: 2, observedGeneration: 1, printableStatus: 'Running' });
    const same = computeVmStatus(vm({ runStrategy: 'Always' }), inst('Running'), { now: T0 });
    expect(cond(same, 'RestartRequired')).toBeUndefined();
  });

  it('Failure for an invalid spec and for a reported reconcile error', () => {
    const bad = computeVmStatus(vm({ running: true, runStrategy: 'Always' }), undefined, { now: T0 });
    expect(cond(bad, 'Failure')).toMatchObject({ status: 'True', reason: 'InvalidSpec', message: expect.stringMatching(/spec\.running/) });
    expect(bad.runStrategy).toBeUndefined();
    const err = computeVmStatus(vm({ runStrategy: 'Always' }), undefined, { now: T0, failure: { reason: 'FailedCreate', message: 'launcher exited' } });
    expect(cond(err, 'Failure')).toMatchObject({ reason: 'FailedCreate', message: 'launcher exited' });
  });

  it('startFailure mirrors the backoff state', () => {
    const s = computeVmStatus(vm({ runStrategy: 'Always' }), inst('Failed', { uid: 'f9' }), { now: T0, backoff: { consecutiveFailures: 2, retryAfter: T0 + 20 * SEC, lastFailedUid: 'f8' } });
    expect(s.startFailure).toEqual({ consecutiveFailCount: 3, lastFailedVMIUID: 'f9', retryAfterTimestamp: new Date(T0 + 40 * SEC).toISOString() });
  });

  it('keeps lastTransitionTime while a condition keeps its status, updates it on change', () => {
    const v = vm({ runStrategy: 'Always' });
    const first = computeVmStatus(v, inst('Pending'), { now: T0 });
    const later = computeVmStatus(v, inst('Scheduled'), { now: T0 + 30 * SEC, previous: first });
    expect(cond(later, 'Ready')?.lastTransitionTime).toBe(new Date(T0).toISOString());
    const ready = computeVmStatus(v, inst('Running'), { now: T0 + 60 * SEC, previous: later });
    expect(cond(ready, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: new Date(T0 + 60 * SEC).toISOString() });
    // Writing the same status again is byte-identical.
    expect(computeVmStatus(v, inst('Running'), { now: T0 + 90 * SEC, previous: ready })).toEqual(ready);
  });

  it('orders conditions Ready, Paused, RestartRequired, Failure', () => {
    const s = computeVmStatus(vm({ runStrategy: 'Always' }), inst('Running', { paused: true, spec: templateSpec('1Gi') }), {
      now: T0,
      failure: { reason: 'SyncFailed', message: 'x' },
    });
    expect(s.conditions?.map((c) => c.type)).toEqual(['Ready', 'Paused', 'RestartRequired', 'Failure']);
  });
});
