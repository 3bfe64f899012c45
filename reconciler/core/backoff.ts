/**
 * CrashLoopBackOff for VMs: after each failed instance the next start waits, starting at
 * ~10 s and doubling up to 5 minutes (KubeVirt's order of magnitude). A run that lasted at
 * least `stableAfterMs` resets the count, so a VM that crashes once a week never ends up
 * waiting 5 minutes. Pure: the caller passes `now` and persists the returned state.
 */
import type { BackoffEvent, BackoffPolicy, BackoffState, Millis, ObservedInstance } from './types.js';
import { NO_BACKOFF } from './types.js';

export const DEFAULT_BACKOFF_POLICY: BackoffPolicy = Object.freeze({
  initialMs: 10_000,
  maxMs: 300_000,
  stableAfterMs: 300_000,
});

/** Delay before the next start after `failures` consecutive failures (failures >= 1). */
export function backoffDelay(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF_POLICY): Millis {
  if (failures <= 0) return 0;
  // Cap the exponent first so large counts cannot overflow to Infinity.
  const exp = Math.min(failures - 1, 30);
  return Math.min(policy.initialMs * 2 ** exp, policy.maxMs);
}

export function nextBackoff(
  state: BackoffState,
  event: BackoffEvent,
  now: Millis,
  policy: BackoffPolicy = DEFAULT_BACKOFF_POLICY,
): BackoffState {
  switch (event.type) {
    case 'failed': {
      // Level-triggered callers report the same failed instance on every pass: count it once.
      if (state.lastFailedUid === event.uid) return state;
      const ranStably =
        event.runningSince !== undefined &&
        (event.finishedAt ?? now) - event.runningSince >= policy.stableAfterMs;
      const consecutiveFailures = ranStably ? 1 : state.consecutiveFailures + 1;
      return {
        consecutiveFailures,
        retryAfter: now + backoffDelay(consecutiveFailures, policy),
        lastFailedUid: event.uid,
      };
    }
    case 'succeeded':
      // A clean shutdown is not a crash.
      return state.consecutiveFailures === 0 && state.retryAfter === undefined ? state : { ...NO_BACKOFF };
    case 'running':
      if (state.consecutiveFailures === 0 && state.retryAfter === undefined) return state;
      return now - event.since >= policy.stableAfterMs ? { ...NO_BACKOFF } : state;
  }
}

/** The backoff event an observed instance implies, if any. */
export function backoffEventFor(observed: ObservedInstance | undefined): BackoffEvent | undefined {
  if (!observed) return undefined;
  switch (observed.phase) {
    case 'Failed':
      return {
        type: 'failed',
        uid: observed.uid,
        ...(observed.runningSince !== undefined ? { runningSince: observed.runningSince } : {}),
        ...(observed.finishedAt !== undefined ? { finishedAt: observed.finishedAt } : {}),
      };
    case 'Succeeded':
      return { type: 'succeeded', uid: observed.uid };
    case 'Running':
      return observed.runningSince !== undefined ? { type: 'running', uid: observed.uid, since: observed.runningSince } : undefined;
    default:
      return undefined;
  }
}

/** True while a new start must wait. */
export function inBackoff(state: BackoffState | undefined, now: Millis): boolean {
  return state?.retryAfter !== undefined && state.retryAfter > now;
}
