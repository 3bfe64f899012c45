/**
 * The VM decision function: given a VM (desired), its observed instance and a little
 * remembered state, return what to do next. Mirrors KubeVirt's virt-controller:
 *
 * | runStrategy     | no instance            | instance finished OK   | instance failed            |
 * |-----------------|------------------------|------------------------|----------------------------|
 * | Always          | create (after backoff) | delete + create        | delete + create (backoff)  |
 * | RerunOnFailure  | create (after backoff) | leave stopped          | delete + create (backoff)  |
 * | Manual          | wait for `start`       | leave stopped          | leave stopped              |
 * | Halted          | nothing                | delete                 | delete                     |
 * | Once            | create once            | leave stopped          | leave stopped              |
 *
 * Overrides: `stop` stops whatever the strategy says; `start` (and `restart`, after it has
 * stopped the older instance) makes sure an instance created after the request runs once,
 * then the strategy rules again; on a Halted VM `start` means Always (as `virtctl start`
 * does). An explicit start skips the crash-loop backoff: a human asked for it.
 * `pause`/`unpause` affect only the instance that existed when they were requested.
 *
 * A finished instance stays recorded (so "ran once"/"shut down cleanly" is not forgotten)
 * until a stop or a restart deletes it; callers must keep reporting it as `observed`.
 */
import { vmiGraceSeconds } from '../../api/grace.js';
import type { RunStrategy, VirtualMachine } from '../../api/kubevirt.js';
import { backoffEventFor, inBackoff, nextBackoff } from './backoff.js';
import { effectiveRunStrategy } from './run-strategy.js';
import { isFinal, restartOnChange, templateChanged } from './spec-change.js';
import type { Action, BackoffPolicy, BackoffState, DecisionContext, Millis, ObservedInstance } from './types.js';
import { NO_BACKOFF } from './types.js';


export interface Intent {
  /** Effective strategy after overrides (start on Halted → Always); undefined if invalid. */
  strategy?: RunStrategy;
  /** The VM should have a running instance now (or as soon as backoff allows). */
  wantRunning: boolean;
  /** An explicit start/restart is pending (not yet satisfied by a newer instance). */
  startRequested: boolean;
  error?: string;
}

export function isLive(observed: ObservedInstance | undefined): boolean {
  return observed !== undefined && !isFinal(observed);
}

/** The backoff state after taking the observed instance into account (idempotent). */
export function reconcileBackoff(
  state: BackoffState | undefined,
  observed: ObservedInstance | undefined,
  now: Millis,
  policy?: BackoffPolicy,
): BackoffState {
  const current = state ?? NO_BACKOFF;
  const event = backoffEventFor(observed);
  return event ? nextBackoff(current, event, now, policy) : current;
}

export function vmIntent(vm: VirtualMachine, observed: ObservedInstance | undefined, ctx: DecisionContext): Intent {
  const rs = effectiveRunStrategy(vm);
  if (!rs.ok) return { wantRunning: false, startRequested: false, error: rs.error };
  const override = ctx.override;
  if (vm.metadata.deletionTimestamp) return { strategy: rs.strategy, wantRunning: false, startRequested: false };
  if (override?.action === 'stop') return { strategy: rs.strategy, wantRunning: false, startRequested: false };

  const wantsStart = override?.action === 'start' || override?.action === 'restart';
  const strategy: RunStrategy = wantsStart && rs.strategy === 'Halted' ? 'Always' : rs.strategy;
  const satisfied = observed !== undefined && override !== undefined && observed.createdAt >= override.at;
  const startRequested = wantsStart && !satisfied;
  if (startRequested) return { strategy, wantRunning: true, startRequested };

  const live = observed !== undefined && isLive(observed) && !observed.terminating;
  switch (strategy) {
    case 'Always':
      return { strategy, wantRunning: true, startRequested };
    case 'RerunOnFailure':
      return { strategy, wantRunning: observed?.phase !== 'Succeeded', startRequested };
    case 'Manual':
      return { strategy, wantRunning: live, startRequested };
    case 'Halted':
      return { strategy, wantRunning: false, startRequested };
    case 'Once':
      return { strategy, wantRunning: observed ? !isFinal(observed) : !ctx.onceCompleted, startRequested };
  }
}

export function desiredRunning(vm: VirtualMachine, observed: ObservedInstance | undefined, ctx: DecisionContext): boolean {
  return vmIntent(vm, observed, ctx).wantRunning;
}

export function decideVmActions(
  vm: VirtualMachine,
  observed: ObservedInstance | undefined,
  ctx: DecisionContext,
  policy?: BackoffPolicy,
): Action[] {
  const intent = vmIntent(vm, observed, ctx);
  if (intent.error) return [{ type: 'none', reason: 'invalid VM spec', error: intent.error }];
  const grace = vmiGraceSeconds(vm.spec.template.spec);
  const override = ctx.override;

  if (observed?.terminating) return [{ type: 'none', reason: 'instance is terminating' }];

  if (!intent.wantRunning) {
    if (!observed) return [{ type: 'none', reason: 'stopped' }];
    const stopWhy = vm.metadata.deletionTimestamp
      ? 'VM is being deleted'
      : override?.action === 'stop'
        ? 'stop requested'
        : intent.strategy === 'Halted'
          ? 'runStrategy Halted'
          : undefined;
    if (isLive(observed)) {
      // Manual/Once/RerunOnFailure never stop a live guest on their own: wantRunning is only
      // false for a live instance when an explicit reason above applies.
      return [{ type: 'delete-instance', uid: observed.uid, gracePeriodSeconds: grace, reason: stopWhy ?? 'stopped' }];
    }
    // Finished instance: Halted/stop/delete clean it up; the other strategies keep the record.
    if (stopWhy) return [{ type: 'delete-instance', uid: observed.uid, gracePeriodSeconds: 0, reason: `${stopWhy}: remove finished instance` }];
    return [{ type: 'none', reason: `instance ${observed.phase === 'Succeeded' ? 'finished' : 'failed'}; runStrategy ${intent.strategy} does not restart it` }];
  }

  // Restart: first stop the instance that predates the request.
  if (override?.action === 'restart' && observed && observed.createdAt < override.at) {
    return [{ type: 'delete-instance', uid: observed.uid, gracePeriodSeconds: isLive(observed) ? grace : 0, reason: 'restart requested' }];
  }

  if (!observed || isFinal(observed)) {
    const backoff = reconcileBackoff(ctx.backoff, observed, ctx.now, policy);
    const why = intent.startRequested
      ? `${override?.action ?? 'start'} requested`
      : !observed
        ? `runStrategy ${intent.strategy}: start`
        : `runStrategy ${intent.strategy}: restart after instance ${observed.phase === 'Failed' ? 'failure' : 'stop'}`;
    if (!intent.startRequested && inBackoff(backoff, ctx.now)) {
      return [{ type: 'wait-backoff', until: backoff.retryAfter as Millis, reason: `CrashLoopBackOff after ${backoff.consecutiveFailures} consecutive failure(s)` }];
    }
    const actions: Action[] = [];
    if (observed) actions.push({ type: 'delete-instance', uid: observed.uid, gracePeriodSeconds: 0, reason: 'remove finished instance before restart' });
    actions.push({ type: 'create-instance', reason: why });
    return actions;
  }

  // A live instance that should keep running.
  if (observed.phase !== 'Running') return [{ type: 'none', reason: `instance is ${observed.phase}` }];
  if (templateChanged(vm, observed)) {
    if (restartOnChange(vm)) {
      // Both steps in one list: under Manual/Once a bare delete would leave the VM stopped.
      const reason = 'template changed and virtops.io/restart-on-change is "true": restarting to apply it';
      return [
        { type: 'delete-instance', uid: observed.uid, gracePeriodSeconds: grace, reason },
        { type: 'create-instance', reason },
      ];
    }
  }
  const pauseApplies = override !== undefined && observed.createdAt <= override.at;
  const wantPaused = pauseApplies && override.action === 'pause';
  if ((observed.paused ?? false) !== wantPaused) {
    return [{ type: 'sync-instance', uid: observed.uid, paused: wantPaused, reason: wantPaused ? 'pause requested' : 'unpause' }];
  }
  return [{ type: 'none', reason: templateChanged(vm, observed) ? 'running; RestartRequired: template changes apply at next restart' : 'running' }];
}
