import { describe, expect, it } from 'vitest';
import { backoffDelay, nextBackoff, NO_BACKOFF, type BackoffState } from '../../../reconciler/core/index.js';
import { SEC, T0 } from './fixtures.js';

describe('backoffDelay', () => {
  it.each([
    [0, 0],
    [1, 10],
    [2, 20],
    [3, 40],
    [4, 80],
    [5, 160],
    [6, 300],
    [7, 300],
    [1000, 300],
  ])('%i failures → %i s', (n, s) => expect(backoffDelay(n)).toBe(s * SEC));
});

describe('nextBackoff', () => {
  it('progresses 10 s, 20 s, 40 s … 300 s over quick consecutive failures', () => {
    let state: BackoffState = NO_BACKOFF;
    let now = T0;
    const waits: number[] = [];
    for (let i = 1; i <= 8; i++) {
      state = nextBackoff(state, { type: 'failed', uid: `u${i}`, runningSince: now + SEC, finishedAt: now + 2 * SEC }, now + 2 * SEC);
      now += 2 * SEC;
      waits.push(((state.retryAfter ?? 0) - now) / SEC);
      now = state.retryAfter ?? now;
    }
    expect(waits).toEqual([10, 20, 40, 80, 160, 300, 300, 300]);
    expect(state.consecutiveFailures).toBe(8);
  });

  it('counts the same failed instance once (level-triggered callers repeat it)', () => {
    const once = nextBackoff(NO_BACKOFF, { type: 'failed', uid: 'a' }, T0);
    expect(nextBackoff(once, { type: 'failed', uid: 'a' }, T0 + 5 * SEC)).toBe(once);
  });

  it('resets once the instance has run stably for stableAfterMs', () => {
    const s = { consecutiveFailures: 5, retryAfter: T0 - SEC, lastFailedUid: 'x' };
    expect(nextBackoff(s, { type: 'running', uid: 'y', since: T0 - 299 * SEC }, T0)).toBe(s);
    expect(nextBackoff(s, { type: 'running', uid: 'y', since: T0 - 300 * SEC }, T0)).toEqual(NO_BACKOFF);
  });

  it('a failure after a long stable run starts over at 10 s', () => {
    const s = { consecutiveFailures: 5, retryAfter: T0 - 3600 * SEC, lastFailedUid: 'x' };
    const next = nextBackoff(s, { type: 'failed', uid: 'y', runningSince: T0 - 3000 * SEC, finishedAt: T0 }, T0);
    expect(next).toEqual({ consecutiveFailures: 1, retryAfter: T0 + 10 * SEC, lastFailedUid: 'y' });
  });

  it('a clean shutdown clears the count', () => {
    expect(nextBackoff({ consecutiveFailures: 2, retryAfter: T0 }, { type: 'succeeded', uid: 'z' }, T0)).toEqual(NO_BACKOFF);
  });

  it('honours a custom policy', () => {
    const policy = { initialMs: SEC, maxMs: 3 * SEC, stableAfterMs: 10 * SEC };
    let s: BackoffState = NO_BACKOFF;
    const delays = [1, 2, 3].map((i) => {
      s = nextBackoff(s, { type: 'failed', uid: `p${i}` }, T0, policy);
      return (s.retryAfter ?? 0) - T0;
    });
    expect(delays).toEqual([SEC, 2 * SEC, 3 * SEC]);
  });
});
