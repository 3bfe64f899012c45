import { describe, expect, it } from 'vitest';
import { RateLimitedQueue, retryDelay, type QueueClock } from '../../../reconciler/queue.js';

/** A manual clock: timers fire only when the test advances time. */
function fakeClock(): QueueClock & { advance(ms: number): void } {
  let now = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = next++;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (h) => {
      timers = timers.filter((t) => t.id !== h);
    },
    advance(ms: number) {
      now += ms;
      const due = timers.filter((t) => t.at <= now).sort((a, b) => a.at - b.at);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.fn();
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('retryDelay', () => {
  it.each([
    [0, 0],
    [1, 50],
    [2, 100],
    [5, 800],
    [30, 60_000],
    [1000, 60_000],
  ])('%i failures → %i ms', (n, ms) => {
    expect(retryDelay(n)).toBe(ms);
  });
});

describe('RateLimitedQueue', () => {
  it('deduplicates a key that is queued several times while waiting', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new RateLimitedQueue(async (k) => {
      seen.push(k);
      if (k === 'busy') await gate;
    }, { concurrency: 1 });
    q.add('busy');
    q.add('a');
    q.add('b');
    q.add('a');
    release();
    await q.idle();
    expect(seen).toEqual(['busy', 'a', 'b']);
  });

  it('never runs one key twice at once; an add while running runs it once more afterwards', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new RateLimitedQueue(async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) await gate;
      running--;
    }, { concurrency: 4 });
    q.add('k');
    await tick();
    q.add('k');
    q.add('k');
    release();
    await q.idle();
    await tick();
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('retries a failing key with exponential backoff and resets after a success', async () => {
    const clock = fakeClock();
    let calls = 0;
    const errors: number[] = [];
    const q = new RateLimitedQueue(async () => {
      calls++;
      if (calls <= 3) throw new Error('boom');
    }, { clock, rateLimit: { baseMs: 100, maxMs: 1000 }, onError: (_k, _e, ms) => errors.push(ms) });
    q.add('k');
    await q.idle();
    expect(errors).toEqual([100]);
    clock.advance(99);
    await q.idle();
    expect(calls).toBe(1);
    clock.advance(1);
    await tick();
    await q.idle();
    expect(calls).toBe(2);
    clock.advance(200);
    await tick();
    await q.idle();
    clock.advance(400);
    await tick();
    await q.idle();
    expect(errors).toEqual([100, 200, 400]);
    expect(calls).toBe(4);
    expect(q.failuresOf('k')).toBe(0);
  });

  it('requeueAfterMs schedules another look; the earliest schedule wins', async () => {
    const clock = fakeClock();
    let calls = 0;
    const q = new RateLimitedQueue(async () => {
      calls++;
      return calls === 1 ? { requeueAfterMs: 500 } : {};
    }, { clock });
    q.add('k');
    await q.idle();
    q.addAfter('k', 1000);
    q.addAfter('k', 2000);
    clock.advance(499);
    await tick();
    expect(calls).toBe(1);
    clock.advance(1);
    await tick();
    await q.idle();
    expect(calls).toBe(2);
    clock.advance(5000);
    await tick();
    await q.idle();
    expect(calls).toBe(2);
  });

  it('takes no work after stop()', async () => {
    let calls = 0;
    const q = new RateLimitedQueue(async () => {
      calls++;
    });
    await q.stop();
    q.add('k');
    q.addAfter('k', 1);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(0);
  });
});

describe('RateLimitedQueue.inBackground', () => {
  it('holds no worker, keeps its key busy until it ends, then queues the key again; idle() waits for it', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new RateLimitedQueue(async (k) => {
      seen.push(`${k}${q.busy(k) ? ' (busy)' : ''}`);
      if (k === 'stopping' && seen.length === 1) q.inBackground(k, () => gate);
    }, { concurrency: 1 });
    q.add('stopping');
    q.add('other');
    let idle = false;
    const idled = q.idle().then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 10));
    // The one worker was free for `other` while the background work ran.
    expect(seen).toEqual(['stopping', 'other']);
    expect(q.busy('stopping')).toBe(true);
    expect(idle).toBe(false);
    release();
    await idled;
    expect(seen).toEqual(['stopping', 'other', 'stopping']);
    expect(q.busy('stopping')).toBe(false);
  });

  it('refuses a second background work for a busy key', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new RateLimitedQueue(async () => {});
    q.inBackground('k', () => gate);
    expect(() => q.inBackground('k', async () => {})).toThrow(/already running/);
    release();
    await q.idle();
    expect(q.busy('k')).toBe(false);
  });
});

/** Opens the waiting reconciles' gates one at a time (each may let a queued key in), then waits for the queue. */
async function openOneByOne(gates: (() => void)[], q: RateLimitedQueue): Promise<void> {
  while (gates.length) {
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 5));
  }
  await q.idle();
}

describe('RateLimitedQueue.leaveSlot', () => {
  it('lets the next key run while the reconcile that left its slot goes on; the key still runs once at a time and idle() waits for it', async () => {
    const started: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    const q = new RateLimitedQueue(async (k) => {
      started.push(k);
      if (k === 'a' && runs++ === 0) {
        q.leaveSlot(k);
        q.leaveSlot(k); // a second call changes nothing
        q.add('a'); // marks it dirty: runs again after this reconcile, not beside it
        await gate;
      }
    }, { concurrency: 1 });
    q.add('a');
    q.add('b');
    q.add('c');
    let idle = false;
    const idled = q.idle().then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 10));
    // The one slot went on to b, then c, while a still ran.
    expect(started).toEqual(['a', 'b', 'c']);
    expect(idle).toBe(false);
    release();
    await idled;
    expect(started).toEqual(['a', 'b', 'c', 'a']);
  });

  it('lets at most `concurrency` reconciles go on without a slot: past that one keeps its slot', async () => {
    const left: boolean[] = [];
    const gates: (() => void)[] = [];
    let running = 0;
    let max = 0;
    const q = new RateLimitedQueue(async (k) => {
      running++;
      max = Math.max(max, running);
      left.push(q.leaveSlot(k));
      await new Promise<void>((r) => gates.push(r));
      running--;
    }, { concurrency: 2 });
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f']) q.add(k);
    await new Promise((r) => setTimeout(r, 10));
    // a and b left their slots; c and d kept theirs: four at once, twice the concurrency.
    expect(left).toEqual([true, true, false, false]);
    expect(running).toBe(4);
    await openOneByOne(gates, q);
    expect(max).toBe(4);
  });

  it('gives back only the slot it took: the concurrency holds afterwards', async () => {
    let running = 0;
    let max = 0;
    const gates: (() => void)[] = [];
    const q = new RateLimitedQueue(async (k) => {
      if (k === 'lead') {
        q.leaveSlot(k);
        return;
      }
      running++;
      max = Math.max(max, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
    }, { concurrency: 2 });
    for (const k of ['lead', 'x', 'y', 'z', 'w']) q.add(k);
    await new Promise((r) => setTimeout(r, 10));
    expect(running).toBe(2);
    await openOneByOne(gates, q);
    expect(max).toBe(2);
  });
});

describe('RateLimitedQueue: reconciles that do not end', () => {
  it('reports a reconcile still running after slowAfterMs, once, and not one that ended in time', async () => {
    const clock = fakeClock();
    const slow: string[] = [];
    let release!: () => void;
    const q = new RateLimitedQueue(async (k) => {
      if (k === 'stuck') await new Promise<void>((r) => (release = r));
    }, { clock, slowAfterMs: 1000, onSlow: (k, ms) => slow.push(`${k}:${ms}`) });
    q.add('quick');
    q.add('stuck');
    await tick();
    clock.advance(999);
    expect(slow).toEqual([]);
    clock.advance(1);
    expect(slow).toEqual(['stuck:1000']);
    clock.advance(5000);
    expect(slow).toEqual(['stuck:1000']);
    release();
    await q.idle();
  });
});
