/**
 * A rate-limited work queue keyed by `namespace/name`, in the manner of client-go's
 * workqueue: a key is queued at most once, never processed by two workers at a time (an
 * add during processing marks it dirty and it runs again afterwards), failures are retried
 * with per-key exponential backoff, and `addAfter` schedules a later look (resync, waiting
 * for backoff). The clock and timers are injectable so the behaviour is table-testable.
 * Long work for a key that must not hold a worker (a guest's graceful stop) runs through
 * `inBackground`: the key waits meanwhile, and is queued again when the work ends. A
 * reconcile whose remaining work needs no slot (a launcher that answers and is handed its VMI)
 * gives its slot up with `leaveSlot` and goes on, up to as many as there are slots.
 */

export interface QueueClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: QueueClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface RateLimit {
  /** First retry delay. */
  baseMs: number;
  /** Cap of the per-key delay. */
  maxMs: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { baseMs: 50, maxMs: 60_000 };

/** The per-key retry delay after `failures` consecutive failures (pure). */
export function retryDelay(failures: number, limit: RateLimit = DEFAULT_RATE_LIMIT): number {
  if (failures <= 0) return 0;
  return Math.min(limit.baseMs * 2 ** Math.min(failures - 1, 30), limit.maxMs);
}

/** What a reconcile asks of the queue: nothing, or another look after `requeueAfterMs`. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

export type Reconciler = (key: string) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  concurrency?: number;
  rateLimit?: RateLimit;
  clock?: QueueClock;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
  /**
   * Called once per reconcile still running after `slowAfterMs` (default 2 min): a key whose
   * reconcile never ends is never looked at again, so it must at least show in the log.
   */
  onSlow?: (key: string, runningMs: number) => void;
  slowAfterMs?: number;
}

export class RateLimitedQueue {
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; handle: unknown }>();
  private readonly idleWaiters: (() => void)[] = [];
  /** inBackground work in flight, by key. */
  private readonly background = new Map<string, Promise<void>>();
  /** Running reconciles that left their slot (leaveSlot); `processing` holds them too. */
  private readonly slotless = new Set<string>();
  private stopped = false;
  private readonly concurrency: number;
  private readonly limit: RateLimit;
  private readonly clock: QueueClock;

  constructor(private readonly reconcile: Reconciler, private readonly opts: WorkQueueOptions = {}) {
    this.concurrency = opts.concurrency ?? 8;
    this.limit = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
    this.clock = opts.clock ?? REAL_CLOCK;
  }

  get length(): number {
    return this.pending.length;
  }

  /** Consecutive failures of a key (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  /** Looks at `key` again in `ms`; an earlier pending schedule wins over a later one. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const current = this.delayed.get(key);
    if (current && current.at <= at) return;
    if (current) this.clock.clearTimeout(current.handle);
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /**
   * Runs `work` for `key` outside the workers, so that it holds no slot however long it takes.
   * Until it ends the key is `busy` (its reconcile should return at once); then the key is
   * queued again. `work` handles its own errors (a rejection is only dropped here).
   */
  inBackground(key: string, work: () => Promise<void>): void {
    // Its reconcile returns while the key is busy, so a second start is a caller's bug.
    if (this.background.has(key)) throw new Error(`queue: background work for ${key} is already running`);
    const done = work().catch(() => undefined).finally(() => {
      this.background.delete(key);
      this.add(key);
    });
    this.background.set(key, done);
  }

  /**
   * Called by `key`'s running reconcile: it goes on without its slot, which the next queued
   * key takes at once. At most `concurrency` reconciles go on without one, so no more than
   * twice `concurrency` run at a time; past that the reconcile keeps its slot (false). The key
   * is still not run twice at a time, and `idle` still waits for it.
   */
  leaveSlot(key: string): boolean {
    if (!this.processing.has(key)) return false;
    if (this.slotless.has(key)) return true;
    if (this.slotless.size >= this.concurrency) return false;
    this.slotless.add(key);
    this.pump();
    return true;
  }

  /** Whether `inBackground` work for `key` is still running. */
  busy(key: string): boolean {
    return this.background.has(key);
  }

  /** Resolves when nothing is queued, running or in the background (delayed keys do not count). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.processing.size > 0 || this.pending.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      // Background work that ends queues its key again: look once more after it.
      else if (this.background.size > 0) await Promise.allSettled(this.background.values());
      else return;
    }
  }

  /** Stops taking work; resolves when running reconciles have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.handle);
    this.delayed.clear();
    this.pending.length = 0;
    this.queued.clear();
    this.dirty.clear();
    await this.idle();
  }

  /** Running reconciles that hold a slot (at most `concurrency`). */
  private get holdingSlots(): number {
    return this.processing.size - this.slotless.size;
  }

  private pump(): void {
    while (!this.stopped && this.holdingSlots < this.concurrency && this.pending.length > 0) {
      const key = this.pending.shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      void this.run(key);
    }
    if (this.processing.size === 0 && this.pending.length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async run(key: string): Promise<void> {
    const slowAfter = this.opts.slowAfterMs ?? 120_000;
    const slow = this.opts.onSlow ? this.clock.setTimeout(() => this.opts.onSlow?.(key, slowAfter), slowAfter) : undefined;
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = retryDelay(n, this.limit);
      this.opts.onError?.(key, err, delay);
      this.addAfter(key, delay);
    } finally {
      if (slow !== undefined) this.clock.clearTimeout(slow);
      this.processing.delete(key);
      this.slotless.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
