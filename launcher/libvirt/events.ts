/**
 * Lifecycle event sources. The N-API binding has no event support, so events come from a
 * `virsh event --all --loop --timestamp` child whose lines are parsed here; when virsh is
 * missing, a poller diffs domain states instead. Both feed the same DomainEvent shape, so
 * a native source can replace them without touching callers.
 */
import type { DomainEvent, DomainEventType, DomainState } from './driver.js';
import { backoffDelay, sleep } from './backoff.js';

const EVENT_TYPES: ReadonlySet<string> = new Set<DomainEventType>([
  'Defined', 'Undefined', 'Started', 'Suspended', 'Resumed', 'Stopped', 'Shutdown', 'PMSuspended', 'Crashed',
]);

// 2026-11-27 05:04:11.578+0000: event 'lifecycle' for domain 'probe-evt': Started Booted
const LIFECYCLE_LINE =
  /^(?<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[+-]\d{4}): event 'lifecycle' for domain '?(?<domain>.+?)'?: (?<type>\S+)(?: (?<detail>.*))?$/;

/** Parses one line of `virsh event --timestamp` output; null for anything but lifecycle events. */
export function parseVirshEventLine(line: string): DomainEvent | null {
  const m = LIFECYCLE_LINE.exec(line.trim());
  if (!m?.groups) return null;
  const { ts, domain, type, detail } = m.groups as { ts: string; domain: string; type: string; detail?: string };
  if (!EVENT_TYPES.has(type)) return null;
  // "2026-11-27 05:04:11.578+0000" → ISO 8601 that Date parses everywhere.
  const iso = ts.replace(' ', 'T').replace(/([+-]\d\d)(\d\d)$/, '$1:$2');
  return { domain, type: type as DomainEventType, detail: detail ?? '', timestamp: new Date(iso), source: 'virsh' };
}

/** Events implied by two successive snapshots of domain states (for the polling source). */
export function diffDomainStates(
  prev: ReadonlyMap<string, DomainState>,
  next: ReadonlyMap<string, DomainState>,
): { domain: string; type: DomainEventType; detail: string }[] {
  const out: { domain: string; type: DomainEventType; detail: string }[] = [];
  for (const [domain, state] of next) {
    const before = prev.get(domain);
    if (before === undefined) out.push({ domain, type: 'Defined', detail: 'Added' });
    if (before === state) continue;
    const t = transitionEvent(before ?? 'Shutoff', state);
    if (t) out.push({ domain, ...t });
  }
  for (const domain of prev.keys()) {
    if (!next.has(domain)) out.push({ domain, type: 'Undefined', detail: 'Removed' });
  }
  return out;
}

function transitionEvent(from: DomainState, to: DomainState): { type: DomainEventType; detail: string } | null {
  switch (to) {
    case 'Running':
    case 'Blocked':
      if (from === 'Paused' || from === 'PMSuspended') return { type: 'Resumed', detail: 'Unpaused' };
      if (from === 'Running' || from === 'Blocked') return null;
      return { type: 'Started', detail: 'Booted' };
    case 'Paused':
      return { type: 'Suspended', detail: 'Paused' };
    case 'Shutoff':
      return from === 'Shutoff' ? null : { type: 'Stopped', detail: 'Shutdown' };
    case 'Shutdown':
      return { type: 'Shutdown', detail: 'Finished' };
    case 'Crashed':
      return { type: 'Crashed', detail: 'Panicked' };
    case 'PMSuspended':
      return { type: 'PMSuspended', detail: 'Memory' };
    default:
      return null;
  }
}

export interface EventSource {
  start(): void;
  stop(): Promise<void>;
}

export interface EventSink {
  emit(event: DomainEvent): void;
  /** The source lost its link to libvirtd (virsh exited); the driver should check its connection. */
  lost(err: Error): void;
  /** The source cannot work at all here (virsh missing); the driver should switch sources. */
  unsupported(err: Error): void;
}

/** Streams events from a `virsh event` child, restarting it with backoff when it exits. */
export class VirshEventSource implements EventSource {
  private stopped = true;
  private abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly uri: string, private readonly sink: EventSink, private readonly virsh = 'virsh') {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.abort = new AbortController();
    this.loop = this.run().catch((err: unknown) => this.sink.lost(err as Error));
  }

  private async run(): Promise<void> {
    const { execa } = await import('execa');
    let attempt = 0;
    while (!this.stopped) {
      const startedAt = Date.now();
      const child = execa(this.virsh, ['-c', this.uri, 'event', '--all', '--loop', '--timestamp'], {
        buffer: false,
        reject: false,
        stdin: 'ignore',
        cancelSignal: this.abort.signal,
        env: { LC_ALL: 'C' },
      });
      try {
        for await (const line of child.iterable({ from: 'stdout' })) {
          const ev = parseVirshEventLine(String(line));
          if (ev) this.sink.emit(ev);
        }
      } catch {
        // The iterable throws when the child fails; the result below says why.
      }
      const result = await child;
      if (this.stopped) return;
      const code = (result as { code?: string }).code;
      if (code === 'ENOENT') {
        this.sink.unsupported(new Error(`'${this.virsh}' not found: falling back to polling for domain events`));
        return;
      }
      const why = String(result.stderr ?? '').trim() || `virsh event exited with ${result.exitCode ?? result.signal}`;
      this.sink.lost(new Error(why));
      attempt = Date.now() - startedAt > 30_000 ? 0 : attempt + 1;
      await sleep(backoffDelay(attempt), this.abort.signal).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort(new Error('event source stopped'));
    await this.loop;
  }
}

/** Synthesises events by diffing domain states every `intervalMs`. */
export class PollingEventSource implements EventSource {
  private timer: NodeJS.Timeout | undefined;
  private last: Map<string, DomainState> | undefined;
  private busy = false;

  constructor(
    private readonly list: () => Promise<{ name: string; state: DomainState }[]>,
    private readonly sink: EventSink,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const next = new Map((await this.list()).map((d) => [d.name, d.state] as const));
      if (this.last) {
        const now = new Date();
        for (const e of diffDomainStates(this.last, next)) this.sink.emit({ ...e, timestamp: now, source: 'poll' });
      }
      this.last = next;
    } catch (err) {
      this.sink.lost(err as Error);
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
