/**
 * DashboardFeed (events-stream.ts) with a fake backend and fake responses (named as such):
 * the snapshot, coalesced `vms` updates fed by the store's change events, summaries, chart
 * samples, push → Running samples, and a stalled watcher being dropped.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DashboardFeed } from '../../../reconciler/standalone/events-stream.js';
import type { StandaloneBackend, VmView } from '../../../reconciler/standalone/backend.js';

const SHA = 'a'.repeat(40);

function fakeBackend(vms: Map<string, VmView>, applied: { sha?: string; seenAt?: number }) {
  return {
    list: () => [...vms.values()],
    get: (ns: string, name: string) => vms.get(`${ns}/${name}`),
    statusCounts: () => {
      const c: Record<string, number> = {};
      for (const v of vms.values()) c[v.status?.printableStatus ?? 'Unknown'] = (c[v.status?.printableStatus ?? 'Unknown'] ?? 0) + 1;
      return c;
    },
    get appliedRevision() {
      return { manifests: [], inventory: { entries: {} }, ...applied };
    },
  } as unknown as StandaloneBackend;
}

function fakeResponse() {
  const res = new EventEmitter() as EventEmitter & { text: string; headers?: Record<string, string>; writableLength: number; ended: boolean };
  res.text = '';
  res.writableLength = 0;
  res.ended = false;
  Object.assign(res, {
    writeHead: (_s: number, h: Record<string, string>) => (res.headers = h),
    write: (t: string) => ((res.text += t), true),
    end: () => (res.ended = true),
  });
  return res;
}

const fakeRequest = { headers: {} } as IncomingMessage;
const events = (text: string) => [...text.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => ({ event: m[1]!, data: JSON.parse(m[2]!) as Record<string, unknown> }));
const vmView = (name: string, status: string): VmView => ({ namespace: 'default', name, firstSeen: '2026-12-04T00:00:00Z', revision: SHA, inGit: true, status: { printableStatus: status } as VmView['status'], events: [] });

describe('DashboardFeed', () => {
  afterEach(() => vi.useRealTimers());

  it('a snapshot first; store changes coalesced into one vms message, a summary and a chart point; push samples once', async () => {
    vi.useFakeTimers();
    let now = 10_000;
    const vms = new Map([['default/a', vmView('a', 'Starting')], ['default/b', vmView('b', 'Starting')]]);
    const changes = new EventEmitter();
    const summaries: number[] = [];
    const feed = new DashboardFeed({ backend: fakeBackend(vms, { sha: SHA, seenAt: 4_000 }), changes, summary: async () => (summaries.push(1), { n: summaries.length }), now: () => now });
    const res = fakeResponse();
    await feed.attach(fakeRequest, res as unknown as ServerResponse);
    expect(res.headers?.['content-type']).toBe('text/event-stream');
    expect(res.headers?.['content-encoding']).toBeUndefined(); // a small snapshot goes plain
    const [snap] = events(res.text);
    expect(snap!.event).toBe('snapshot');
    expect((snap!.data['vms'] as { name: string }[]).map((r) => r.name)).toEqual(['a', 'b']);

    // Both VMs change: one message, not two.
    vms.set('default/a', vmView('a', 'Running'));
    vms.set('default/b', vmView('b', 'Running'));
    now = 16_500;
    changes.emit('vm', 'default', 'a');
    changes.emit('vm', 'default', 'b');
    changes.emit('vm', 'default', 'a');
    await vi.advanceTimersByTimeAsync(200);
    const after = events(res.text).slice(1);
    expect(after.filter((e) => e.event === 'vms')).toHaveLength(1);
    expect((after.find((e) => e.event === 'vms')!.data['upsert'] as { status: string }[]).map((r) => r.status)).toEqual(['Running', 'Running']);
    expect(after.filter((e) => e.event === 'push').map((e) => [e.data['vm'], e.data['seconds']])).toEqual([['default/a', 12.5], ['default/b', 12.5]]);
    expect(after.some((e) => e.event === 'summary')).toBe(true);
    expect(after.find((e) => e.event === 'sample')!.data['counts']).toEqual({ Running: 2 });

    // The same VM Running again on the same revision is no new push sample; a removed VM is a removal.
    vms.delete('default/b');
    changes.emit('vm', 'default', 'a');
    changes.emit('vm', 'default', 'b');
    await vi.advanceTimersByTimeAsync(200);
    const third = events(res.text).slice(1 + after.length);
    expect(third.filter((e) => e.event === 'push')).toEqual([]);
    expect(third.find((e) => e.event === 'vms')!.data['remove']).toEqual(['default/b']);
    expect(feed.pushes).toHaveLength(2);
    feed.close();
    expect(res.ended).toBe(true);
  });

  it('a stalled watcher is dropped instead of buffering without bound', async () => {
    vi.useFakeTimers();
    const changes = new EventEmitter();
    const vms = new Map([['default/a', vmView('a', 'Running')]]);
    const feed = new DashboardFeed({ backend: fakeBackend(vms, {}), changes, summary: async () => ({}) });
    const res = fakeResponse();
    await feed.attach(fakeRequest, res as unknown as ServerResponse);
    expect(feed.clientCount).toBe(1);
    res.writableLength = 9 * 1024 * 1024;
    changes.emit('vm', 'default', 'a');
    await vi.advanceTimersByTimeAsync(200);
    expect(feed.clientCount).toBe(0);
    expect(res.ended).toBe(true);
    feed.close();
  });
});
