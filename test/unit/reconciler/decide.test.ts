import { describe, expect, it } from 'vitest';
import type { RunStrategy } from '../../../api/kubevirt.js';
import {
  decideVmActions,
  desiredRunning,
  effectiveRunStrategy,
  type Action,
  type DecisionContext,
  type ObservedInstance,
  type Override,
} from '../../../reconciler/core/index.js';
import { SEC, T0, inst, vm } from './fixtures.js';

const types = (actions: Action[]) => actions.map((a) => a.type).join(',');

describe('effectiveRunStrategy', () => {
  it.each([
    [{ runStrategy: 'Always' as RunStrategy }, 'Always'],
    [{ runStrategy: 'Once' as RunStrategy }, 'Once'],
    [{ running: true }, 'Always'],
    [{ running: false }, 'Halted'],
    [{}, 'Halted'],
  ])('%o → %s', (opts, expected) => {
    expect(effectiveRunStrategy(vm(opts))).toEqual({ ok: true, strategy: expected });
  });

  it('rejects running together with runStrategy, naming both fields', () => {
    const r = effectiveRunStrategy(vm({ running: true, runStrategy: 'Always' }));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/spec\.running.*spec\.runStrategy/);
    const actions = decideVmActions(vm({ running: false, runStrategy: 'Halted' }), undefined, { now: T0 });
    expect(actions).toEqual([expect.objectContaining({ type: 'none', error: expect.stringMatching(/both set/) })]);
  });
});

// Every runStrategy × observed state, no overrides, no backoff.
const observedStates: Record<string, ObservedInstance | undefined> = {
  absent: undefined,
  pending: inst('Pending', { runningSince: undefined }),
  running: inst('Running'),
  succeeded: inst('Succeeded', { reason: 'GuestShutdown' }),
  failed: inst('Failed'),
  terminating: inst('Running', { terminating: true }),
  unknown: inst('Unknown'),
};

const table: Record<RunStrategy, Record<string, string>> = {
  Always: { absent: 'create-instance', pending: 'none', running: 'none', succeeded: 'delete-instance,create-instance', failed: 'wait-backoff', terminating: 'none', unknown: 'none' },
  RerunOnFailure: { absent: 'create-instance', pending: 'none', running: 'none', succeeded: 'none', failed: 'wait-backoff', terminating: 'none', unknown: 'none' },
  Manual: { absent: 'none', pending: 'none', running: 'none', succeeded: 'none', failed: 'none', terminating: 'none', unknown: 'none' },
  Halted: { absent: 'none', pending: 'delete-instance', running: 'delete-instance', succeeded: 'delete-instance', failed: 'delete-instance', terminating: 'none', unknown: 'delete-instance' },
  Once: { absent: 'create-instance', pending: 'none', running: 'none', succeeded: 'none', failed: 'none', terminating: 'none', unknown: 'none' },
};

describe('decideVmActions: runStrategy × observed state', () => {
  for (const [strategy, row] of Object.entries(table) as [RunStrategy, Record<string, string>][]) {
    for (const [state, expected] of Object.entries(row)) {
      it(`${strategy} / ${state} → ${expected}`, () => {
        expect(types(decideVmActions(vm({ runStrategy: strategy }), observedStates[state], { now: T0 }))).toBe(expected);
      });
    }
  }

  it('legacy running:true behaves as Always and running:false as Halted', () => {
    for (const state of Object.keys(observedStates)) {
      expect(types(decideVmActions(vm({ running: true }), observedStates[state], { now: T0 }))).toBe(table.Always[state]);
      expect(types(decideVmActions(vm({ running: false }), observedStates[state], { now: T0 }))).toBe(table.Halted[state]);
    }
  });

  it('uses the template grace period for live instances and 0 for finished ones', () => {
    const live = decideVmActions(vm({ runStrategy: 'Halted' }), inst('Running'), { now: T0 });
    expect(live[0]).toMatchObject({ type: 'delete-instance', uid: 'u1', gracePeriodSeconds: 30 });
    const done = decideVmActions(vm({ runStrategy: 'Halted' }), inst('Succeeded'), { now: T0 });
    expect(done[0]).toMatchObject({ type: 'delete-instance', gracePeriodSeconds: 0 });
  });

  it('Once: after completion the recorded flag prevents a second run even with no instance left', () => {
    expect(types(decideVmActions(vm({ runStrategy: 'Once' }), undefined, { now: T0, onceCompleted: true }))).toBe('none');
    expect(desiredRunning(vm({ runStrategy: 'Once' }), undefined, { now: T0, onceCompleted: true })).toBe(false);
  });

  it('a VM being deleted stops its instance whatever the strategy', () => {
    const a = decideVmActions(vm({ runStrategy: 'Always', deleting: true }), inst('Running'), { now: T0 });
    expect(a[0]).toMatchObject({ type: 'delete-instance', reason: 'VM is being deleted' });
  });
});

describe('decideVmActions: CrashLoopBackOff', () => {
  it('waits until retryAfter after a failure, then deletes and recreates', () => {
    const failed = inst('Failed', { uid: 'f1', runningSince: T0 - 3 * SEC, finishedAt: T0 });
    const first = decideVmActions(vm({ runStrategy: 'Always' }), failed, { now: T0 });
    expect(first).toEqual([{ type: 'wait-backoff', until: T0 + 10 * SEC, reason: expect.stringMatching(/1 consecutive/) }]);
    const backoff = { consecutiveFailures: 1, retryAfter: T0 + 10 * SEC, lastFailedUid: 'f1' };
    expect(types(decideVmActions(vm({ runStrategy: 'Always' }), failed, { now: T0 + 9 * SEC, backoff }))).toBe('wait-backoff');
    expect(types(decideVmActions(vm({ runStrategy: 'Always' }), failed, { now: T0 + 10 * SEC, backoff }))).toBe('delete-instance,create-instance');
  });

  it('a clean guest shutdown under Always restarts without backoff', () => {
    const backoff = { consecutiveFailures: 3, retryAfter: T0 + 60 * SEC, lastFailedUid: 'old' };
    expect(types(decideVmActions(vm({ runStrategy: 'Always' }), inst('Succeeded'), { now: T0, backoff }))).toBe('delete-instance,create-instance');
  });

  it('holds the first start of an absent instance while a backoff is pending', () => {
    const backoff = { consecutiveFailures: 2, retryAfter: T0 + 20 * SEC, lastFailedUid: 'f2' };
    expect(decideVmActions(vm({ runStrategy: 'RerunOnFailure' }), undefined, { now: T0, backoff })).toEqual([
      expect.objectContaining({ type: 'wait-backoff', until: T0 + 20 * SEC }),
    ]);
  });
});

describe('decideVmActions: RestartRequired on template change', () => {
  const changed = inst('Running', { spec: { ...inst('Running').spec, domain: { ...inst('Running').spec.domain, resources: { requests: { memory: '64Mi' } } } } });

  it('never restarts silently: the action says why, status carries RestartRequired', () => {
    const a = decideVmActions(vm({ runStrategy: 'Always' }), changed, { now: T0 });
    expect(a).toEqual([{ type: 'none', reason: expect.stringMatching(/RestartRequired/) }]);
  });

  it('restarts when the VM opts in with virtops.io/restart-on-change: "true"', () => {
    const a = decideVmActions(vm({ runStrategy: 'Manual', annotations: { 'virtops.io/restart-on-change': 'true' } }), changed, { now: T0 });
    expect(a.map((x) => x.type)).toEqual(['delete-instance', 'create-instance']);
    expect(a[0]).toMatchObject({ gracePeriodSeconds: 30, reason: expect.stringMatching(/restart-on-change/) });
  });

  it('treats other annotation values as opt-out', () => {
    const a = decideVmActions(vm({ runStrategy: 'Always', annotations: { 'virtops.io/restart-on-change': 'yes' } }), changed, { now: T0 });
    expect(types(a)).toBe('none');
  });

  it('ignores key order when comparing specs', () => {
    const reordered = inst('Running', { spec: JSON.parse(JSON.stringify({ volumes: inst('Running').spec.volumes, terminationGracePeriodSeconds: 30, domain: inst('Running').spec.domain })) });
    expect(decideVmActions(vm({ runStrategy: 'Always' }), reordered, { now: T0 })).toEqual([{ type: 'none', reason: 'running' }]);
  });
});

describe('decideVmActions: imperative overrides', () => {
  const ov = (action: Override['action'], at = T0 - 10 * SEC): Override => ({ action, at, revision: 'abc' });
  const ctx = (o: Override, extra: Partial<DecisionContext> = {}): DecisionContext => ({ now: T0, override: o, ...extra });

  it.each<[RunStrategy, string, ObservedInstance | undefined, string]>([
    ['Always', 'stop', inst('Running'), 'delete-instance'],
    ['Always', 'stop', undefined, 'none'],
    ['Always', 'stop', inst('Failed'), 'delete-instance'],
    ['Halted', 'start', undefined, 'create-instance'],
    ['Halted', 'start', inst('Running', { createdAt: T0 }), 'none'],
    ['Manual', 'start', undefined, 'create-instance'],
    ['Manual', 'start', inst('Succeeded'), 'delete-instance,create-instance'],
    ['Manual', 'start', inst('Succeeded', { createdAt: T0 - 5 * SEC }), 'none'],
    ['Once', 'start', inst('Failed'), 'delete-instance,create-instance'],
    ['Always', 'restart', inst('Running'), 'delete-instance'],
    ['Always', 'restart', undefined, 'create-instance'],
    ['Always', 'restart', inst('Running', { createdAt: T0 - 5 * SEC }), 'none'],
    ['Manual', 'restart', undefined, 'create-instance'],
    ['Always', 'pause', inst('Running'), 'sync-instance'],
    ['Always', 'pause', inst('Running', { paused: true }), 'none'],
    ['Always', 'pause', inst('Running', { createdAt: T0 - 5 * SEC }), 'none'],
    ['Always', 'unpause', inst('Running', { paused: true }), 'sync-instance'],
    ['Halted', 'pause', undefined, 'none'],
  ])('%s + %s on %o → %s', (strategy, action, observed, expected) => {
    expect(types(decideVmActions(vm({ runStrategy: strategy }), observed, ctx(ov(action as Override['action']))))).toBe(expected);
  });

  it('pause/unpause ask the launcher for the paused state explicitly', () => {
    expect(decideVmActions(vm({ runStrategy: 'Always' }), inst('Running'), ctx(ov('pause')))[0]).toMatchObject({ type: 'sync-instance', paused: true });
    expect(decideVmActions(vm({ runStrategy: 'Always' }), inst('Running', { paused: true }), ctx(ov('unpause')))[0]).toMatchObject({ type: 'sync-instance', paused: false });
  });

  it('an explicit start skips a pending backoff; automatic restarts do not', () => {
    const backoff = { consecutiveFailures: 4, retryAfter: T0 + 80 * SEC, lastFailedUid: 'u1' };
    expect(types(decideVmActions(vm({ runStrategy: 'Always' }), inst('Failed'), ctx(ov('start'), { backoff })))).toBe('delete-instance,create-instance');
    expect(types(decideVmActions(vm({ runStrategy: 'Always' }), inst('Failed'), { now: T0, backoff }))).toBe('wait-backoff');
  });
});
