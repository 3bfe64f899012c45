/**
 * Live state for the dashboard: server-sent events fed by the state changes `up` already
 * makes (every VM record and applied revision goes through the StateStore, which the
 * backend writes only when something changed), and a short in-memory history for the
 * charts (VMs by status over time, push → Running latency of the last pushes).
 *
 *   NotifyingStateStore   the StateStore `up` uses, telling listeners what it wrote
 *   dashboardRow()        the overview's row of a VM (pure)
 *   DashboardFeed         SSE clients, coalesced updates (one message per 150 ms at most), history
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { StateStore, type AppliedState, type VmRecord } from './state-store.js';
import type { VmView } from './backend.js';
import type { DashboardRow } from './dashboard-shared.js';

/** A StateStore that says what it wrote: `vm` (ns, name), `applied`. Writes are unchanged. */
export class NotifyingStateStore extends StateStore {
  readonly changes = new EventEmitter();

  override async writeVm(rec: VmRecord): Promise<void> {
    await super.writeVm(rec);
    this.changes.emit('vm', rec.namespace, rec.name);
  }

  override async removeVm(namespace: string, name: string): Promise<void> {
    await super.removeVm(namespace, name);
    this.changes.emit('vm', namespace, name);
  }

  override async writeApplied(state: AppliedState): Promise<void> {
    await super.writeApplied(state);
    this.changes.emit('applied');
  }
}

export type { DashboardRow };

export function dashboardRow(v: VmView): DashboardRow {
  const st = v.status as (VmView['status'] & { interfaces?: { ipAddress?: string }[] }) | undefined;
  return {
    namespace: v.namespace,
    name: v.name,
    status: v.inGit ? (st?.printableStatus ?? 'Unknown') : 'Pruning',
    ready: st?.ready === true,
    revision: v.revision ?? '',
    ip: st?.interfaces?.find((i) => i.ipAddress)?.ipAddress ?? '',
    firstSeen: v.firstSeen,
    ...(v.override ? { override: v.override.action } : {}),
    running: v.instance !== undefined,
  };
}

export interface HistoryPoint {
  /** ms since the epoch */
  t: number;
  counts: Record<string, number>;
}

export interface PushSample {
  sha: string;
  vm: string;
  seconds: number;
  /** When the VM turned Running (ms since the epoch). */
  at: number;
}

/**
 * A push → Running sample when a VM is seen Running on the applied revision for the first
 * time since that revision was yielded (the same span virtops_push_to_running_seconds
 * measures: from the source yielding the revision to the VM running it). Pure.
 */
export function pushSample(row: DashboardRow, applied: Pick<AppliedState, 'sha' | 'seenAt'>, seen: ReadonlySet<string>, now: number): PushSample | undefined {
  if (!applied.sha || applied.seenAt === undefined || row.status !== 'Running' || row.revision !== applied.sha) return undefined;
  const key = `${applied.sha}/${row.namespace}/${row.name}`;
  if (seen.has(key)) return undefined;
  return { sha: applied.sha, vm: `${row.namespace}/${row.name}`, seconds: Math.max(0, now - applied.seenAt) / 1000, at: now };
}

/** What the feed reads: `up`'s backend, or the cluster dashboard's view of the API server (reconciler/cluster/dashboard.ts). */
export interface FeedSource {
  list(): VmView[];
  get(namespace: string, name: string): VmView | undefined;
  readonly appliedRevision: Pick<AppliedState, 'sha' | 'seenAt'>;
  statusCounts(): Record<string, number>;
}

export interface FeedOptions {
  backend: FeedSource;
  changes: EventEmitter;
  /** The overview's header: revision, commit, refusal, counts. */
  summary: () => Promise<unknown>;
  /** Status counts sampled this often for the chart (default 5 s; 720 points kept). */
  sampleMs?: number;
  now?: () => number;
}

const COALESCE_MS = 150;
/** Snapshots above this many characters (~150 VMs) open a gzip-encoded stream. */
const GZIP_ABOVE = 32 * 1024;
const HISTORY_POINTS = 720;
const PUSH_SAMPLES = 50;

/**
 * One SSE client: gzip-encoded when the browser accepts it and the snapshot is large (a
 * 1,000-VM snapshot is ~190 KB as JSON, ~6 KB gzipped); small ones go plain, which measured
 * a little faster to the first rows on a loaded host.
 */
interface StreamClient {
  write(text: string): void;
  end(): void;
  /** Bytes queued and not yet taken by the connection. */
  backlog(): number;
}

/** A watcher this far behind (a stalled tab) is disconnected; EventSource reconnects and gets a fresh snapshot. */
const MAX_BACKLOG = 8 * 1024 * 1024;

function streamClient(req: IncomingMessage, res: ServerResponse, large: boolean): StreamClient {
  const headers = { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' };
  if (!large || !/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
    res.writeHead(200, headers);
    return { write: (t) => void res.write(t), end: () => res.end(), backlog: () => res.writableLength };
  }
  res.writeHead(200, { ...headers, 'content-encoding': 'gzip', vary: 'accept-encoding' });
  // A small window and memory level: ~64 KiB of zlib state per watching browser.
  const gz = createGzip({ level: 6, windowBits: 13, memLevel: 6 });
  gz.pipe(res);
  res.on('close', () => gz.destroy());
  return {
    // Each message is flushed at once: a stream must not wait for more data to compress.
    write: (t) => {
      gz.write(t);
      gz.flush(zlibConstants.Z_SYNC_FLUSH);
    },
    end: () => gz.end(),
    backlog: () => res.writableLength + gz.writableLength,
  };
}

export class DashboardFeed {
  private readonly clients = new Set<StreamClient>();
  private readonly dirty = new Set<string>();
  private appliedDirty = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly sampler: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;
  readonly history: HistoryPoint[] = [];
  readonly pushes: PushSample[] = [];
  private readonly pushSeen = new Set<string>();
  private readonly now: () => number;
  private readonly onVm = (ns: string, name: string): void => this.mark(`${ns}/${name}`);
  private readonly onApplied = (): void => {
    this.appliedDirty = true;
    this.schedule();
  };

  constructor(private readonly opts: FeedOptions) {
    this.now = opts.now ?? Date.now;
    opts.changes.on('vm', this.onVm);
    opts.changes.on('applied', this.onApplied);
    this.sample();
    this.sampler = setInterval(() => this.sample(), opts.sampleMs ?? 5_000);
    this.sampler.unref();
    // A comment line keeps proxies and the browser from timing the stream out.
    this.heartbeat = setInterval(() => this.broadcast(': keep-alive\n\n'), 15_000);
    this.heartbeat.unref();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** GET /api/v1/events: a snapshot first (`snapshot`), then `vms` and `summary` as things change. */
  async attach(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const snapshot = { summary: await this.opts.summary(), vms: this.opts.backend.list().map(dashboardRow), history: this.history, pushes: this.pushes };
    const text = `retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
    const client = streamClient(req, res, text.length > GZIP_ABOVE);
    client.write(text);
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
  }

  close(): void {
    this.opts.changes.off('vm', this.onVm);
    this.opts.changes.off('applied', this.onApplied);
    clearInterval(this.sampler);
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private mark(key: string): void {
    this.dirty.add(key);
    this.schedule();
  }

  private schedule(): void {
    this.flushTimer ??= setTimeout(() => void this.flush(), COALESCE_MS);
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    const keys = [...this.dirty];
    this.dirty.clear();
    const applied = this.opts.backend.appliedRevision;
    const upsert: DashboardRow[] = [];
    const remove: string[] = [];
    for (const key of keys) {
      const [ns, name] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
      const v = this.opts.backend.get(ns, name);
      if (!v) {
        remove.push(key);
        continue;
      }
      const row = dashboardRow(v);
      upsert.push(row);
      const s = pushSample(row, applied, this.pushSeen, this.now());
      if (s) {
        this.pushSeen.add(`${s.sha}/${s.vm}`);
        this.pushes.push(s);
        if (this.pushes.length > PUSH_SAMPLES) this.pushes.shift();
        this.broadcast(`event: push\ndata: ${JSON.stringify(s)}\n\n`);
      }
    }
    if (upsert.length || remove.length) this.broadcast(`event: vms\ndata: ${JSON.stringify({ upsert, remove })}\n\n`);
    // Counts change with any VM; the header (revision, refusal) with the applied state.
    if (this.clients.size && (this.appliedDirty || upsert.length || remove.length)) {
      this.appliedDirty = false;
      this.broadcast(`event: summary\ndata: ${JSON.stringify(await this.opts.summary())}\n\n`);
    }
    // A status change is a point on the chart at once, not at the next 5 s sample.
    if (upsert.length || remove.length) {
      const counts = this.opts.backend.statusCounts();
      if (JSON.stringify(counts) !== JSON.stringify(this.history.at(-1)?.counts)) this.sample(counts);
    }
  }

  private sample(counts = this.opts.backend.statusCounts()): void {
    const point = { t: this.now(), counts };
    this.history.push(point);
    if (this.history.length > HISTORY_POINTS) this.history.shift();
    this.broadcast(`event: sample\ndata: ${JSON.stringify(point)}\n\n`);
  }

  private broadcast(text: string): void {
    for (const c of this.clients) {
      if (c.backlog() > MAX_BACKLOG) {
        this.clients.delete(c);
        c.end();
      } else c.write(text);
    }
  }
}
