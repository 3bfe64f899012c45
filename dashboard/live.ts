/**
 * The live state of the overview, fed by the server-sent events of GET /api/v1/events
 * (reconciler/standalone/events-stream.ts): a snapshot, then `vms` (upserts, removals),
 * `summary`, `sample` (status counts for the chart) and `push` (a push → Running latency).
 */
import { useEffect, useState } from 'preact/hooks';
import { age, type DashboardRow } from '../reconciler/standalone/dashboard-shared.js';

export type Row = DashboardRow;

export interface Commit {
  sha: string;
  subject: string;
  body: string;
  author: string;
  email: string;
  date: string;
}

export interface Summary {
  revision: string | null;
  appliedAt: string | null;
  commit: Commit | null;
  refused: { sha: string; errors: string[]; at: string; commit: Commit | null } | null;
  sourceError: { stage: string; message: string; since: number } | null;
  counts: Record<string, number>;
  total: number;
}

export interface Sample {
  t: number;
  counts: Record<string, number>;
}

export interface Push {
  sha: string;
  vm: string;
  seconds: number;
  at: number;
}

const key = (r: { namespace: string; name: string }): string => `${r.namespace}/${r.name}`;

class Live {
  rows = new Map<string, Row>();
  /** Sorted keys, rebuilt when a VM comes or goes. */
  order: string[] = [];
  summary: Summary | undefined;
  history: Sample[] = [];
  pushes: Push[] = [];
  connected = false;
  version = 0;
  private listeners = new Set<() => void>();
  private source: EventSource | undefined;
  private frame = 0;

  start(): void {
    if (this.source) return;
    const es = new EventSource('/api/v1/events');
    this.source = es;
    es.addEventListener('open', () => this.set(() => (this.connected = true)));
    es.addEventListener('error', () => {
      this.set(() => (this.connected = false));
      // A closed stream after a 401 (session gone): back to the login page.
      if (es.readyState === EventSource.CLOSED) void fetch('/api/v1/session').then((r) => r.status === 401 && location.assign('/login'));
    });
    es.addEventListener('snapshot', (e) => {
      const s = JSON.parse((e as MessageEvent<string>).data) as { summary: Summary; vms: Row[]; history: Sample[]; pushes: Push[] };
      this.set(() => {
        this.rows = new Map(s.vms.map((r) => [key(r), r]));
        this.order = [...this.rows.keys()].sort();
        this.summary = s.summary;
        this.history = s.history;
        this.pushes = s.pushes;
      });
    });
    es.addEventListener('vms', (e) => {
      const d = JSON.parse((e as MessageEvent<string>).data) as { upsert: Row[]; remove: string[] };
      this.set(() => {
        let reorder = d.remove.length > 0;
        for (const r of d.upsert) {
          if (!this.rows.has(key(r))) reorder = true;
          this.rows.set(key(r), r);
        }
        for (const k of d.remove) this.rows.delete(k);
        if (reorder) this.order = [...this.rows.keys()].sort();
      });
    });
    es.addEventListener('summary', (e) => this.set(() => (this.summary = JSON.parse((e as MessageEvent<string>).data) as Summary)));
    es.addEventListener('sample', (e) => this.set(() => this.history = [...this.history.slice(-719), JSON.parse((e as MessageEvent<string>).data) as Sample]));
    es.addEventListener('push', (e) => this.set(() => this.pushes = [...this.pushes.slice(-49), JSON.parse((e as MessageEvent<string>).data) as Push]));
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(change: () => void): void {
    change();
    this.version++;
    // One render per frame however many events arrive (1,000 VMs starting at once).
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        for (const l of this.listeners) l();
      });
    }
  }
}

export const live = new Live();

/** Re-renders the component when the live state changes. */
export function useLive(): Live {
  const [, setVersion] = useState(0);
  useEffect(() => {
    live.start();
    return live.subscribe(() => setVersion(live.version));
  }, []);
  return live;
}

export { age };

/** A clock that ticks every `ms` (ages in the list). */
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
