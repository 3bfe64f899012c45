/**
 * Whether the git source works, for `get vms`, `describe` and `/readyz`: a fetch that fails
 * (an unreachable remote, a full disk under the source cache) or a revision that cannot be
 * applied (the state dir cannot be written) is a source error, shown with since when until a
 * check (for fetches) or an apply (for applies) succeeds again. Pure bookkeeping: the caller
 * passes `now`.
 */
export interface SourceError {
  /** `fetch` (reading the repository) or `apply` (recording a fetched revision). */
  stage: 'fetch' | 'apply';
  message: string;
  /** When it started failing (ISO). */
  since: string;
  /** The latest failure (ISO). */
  lastAt: string;
}

export class SourceHealth {
  private readonly errors = new Map<SourceError['stage'], SourceError>();

  fail(stage: SourceError['stage'], message: string, now: number): void {
    const iso = new Date(now).toISOString();
    this.errors.set(stage, { stage, message, since: this.errors.get(stage)?.since ?? iso, lastAt: iso });
  }

  ok(stage: SourceError['stage']): void {
    this.errors.delete(stage);
  }

  /** The oldest failing stage, if any. */
  get error(): SourceError | undefined {
    return [...this.errors.values()].sort((a, b) => a.since.localeCompare(b.since))[0];
  }
}

/** One line naming the source error and since when (the `get vms` banner, `/readyz`'s reason). */
export function sourceErrorLine(e: SourceError): string {
  return `the git source is failing since ${e.since} (${e.stage === 'fetch' ? 'fetching' : 'applying'}): ${e.message}`;
}
