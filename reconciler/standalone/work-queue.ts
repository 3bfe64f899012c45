/**
 * A keyed work queue in the style of client-go's workqueue: a key is processed by at most
 * one worker at a time; adding a key that is being processed marks it to run again right
 * after; `concurrency` keys run in parallel. A slow key (an image pull) never holds up others.
 */
export class WorkQueue {
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly order: string[] = [];
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly handler: (key: string) => Promise<void>,
    private readonly concurrency: number,
    private readonly onError: (key: string, err: unknown) => void,
  ) {}

  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) this.order.push(key);
    this.pump();
  }

  /** Adds `key` after `ms` (one pending timer per key; the earliest wins). */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    const existing = this.timers.get(key) as (NodeJS.Timeout & { dueAt?: number }) | undefined;
    const due = Date.now() + ms;
    if (existing && (existing.dueAt ?? 0) <= due) return;
    if (existing) clearTimeout(existing);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, Math.max(0, ms)) as NodeJS.Timeout & { dueAt?: number };
    t.dueAt = due;
    t.unref();
    this.timers.set(key, t);
  }

  get busy(): boolean {
    return this.running > 0 || this.order.length > 0;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops taking work; resolves when running handlers have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.order.length = 0;
    this.dirty.clear();
    await this.idle();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.order.length > 0) {
      const key = this.order.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      this.running++;
      void this.handler(key)
        .catch((err: unknown) => this.onError(key, err))
        .finally(() => {
          this.processing.delete(key);
          this.running--;
          if (this.dirty.has(key) && !this.stopped) this.order.push(key);
          this.pump();
          if (!this.busy) {
            const w = this.idleWaiters;
            this.idleWaiters = [];
            for (const r of w) r();
          }
        });
    }
  }
}
