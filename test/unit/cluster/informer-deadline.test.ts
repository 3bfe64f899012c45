/**
 * deadlineWatch and withTimeout (reconciler/cluster/informer.ts) against a fake watch: a
 * watch that never ends and never answers is given up; the caller's own abort ends a watch
 * without reporting it (ListWatch would otherwise abort the watch that replaced it).
 */
import { describe, expect, it } from 'vitest';
import { deadlineWatch, withTimeout } from '../../../reconciler/cluster/informer.js';
import { sleep } from '../../helpers/wait.js';

/** A fake of client-node's Watch: records each call and lets the test drive it. */
function fakeWatch() {
  const calls: { params: Record<string, unknown>; callback: (phase: string, obj: unknown, raw: unknown) => void; done: (err: unknown) => void; controller: AbortController }[] = [];
  return {
    calls,
    watch(_path: string, params: Record<string, unknown>, callback: (phase: string, obj: unknown, raw: unknown) => void, done: (err: unknown) => void) {
      const controller = new AbortController();
      calls.push({ params, callback, done, controller });
      return Promise.resolve(controller);
    },
  };
}

describe('deadlineWatch', () => {
  it('asks the server to end each watch and to send bookmarks', async () => {
    const inner = fakeWatch();
    const w = deadlineWatch(inner, { minSeconds: 30, maxSeconds: 60 });
    const c = await w.watch('/api/v1/pods', { resourceVersion: '5' }, () => undefined, () => undefined);
    const p = inner.calls[0]!.params;
    expect(p.resourceVersion).toBe('5');
    expect(p.allowWatchBookmarks).toBe(true);
    expect(p.timeoutSeconds).toBeGreaterThanOrEqual(30);
    expect(p.timeoutSeconds).toBeLessThanOrEqual(60);
    c.abort();
  });

  it('gives up a watch that delivered nothing past its timeout and grace, with an error', async () => {
    const inner = fakeWatch();
    const errors: unknown[] = [];
    await deadlineWatch(inner, { minSeconds: 0, maxSeconds: 0, graceMs: 50, checkMs: 10 }).watch('/p', {}, () => undefined, (e) => errors.push(e));
    await sleep(200);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/delivered nothing/);
    expect(inner.calls[0]!.controller.signal.aborted).toBe(true);
  });

  it('keeps a watch that keeps delivering, and forwards what it delivers', async () => {
    const inner = fakeWatch();
    const seen: string[] = [];
    const errors: unknown[] = [];
    // 8 deliveries 100 ms apart outlast the 500 ms grace only if each one resets it (generous
    // margins: a loaded machine stretches sleeps).
    const c = await deadlineWatch(inner, { minSeconds: 0, maxSeconds: 0, graceMs: 500, checkMs: 10 }).watch('/p', {}, (phase) => seen.push(phase), (e) => errors.push(e));
    for (let i = 0; i < 8; i++) {
      inner.calls[0]!.callback('BOOKMARK', { metadata: { resourceVersion: String(i) } }, {});
      await sleep(100);
    }
    expect(errors).toEqual([]);
    expect(seen).toHaveLength(8);
    c.abort();
  });

  it("reports the server's end of a watch once, and nothing after the caller aborts", async () => {
    const inner = fakeWatch();
    const errors: unknown[] = [];
    await deadlineWatch(inner).watch('/p', {}, () => undefined, (e) => errors.push(e));
    inner.calls[0]!.done(null);
    inner.calls[0]!.done(new Error('late'));
    expect(errors).toEqual([null]);

    const aborted: unknown[] = [];
    const c = await deadlineWatch(inner).watch('/p', {}, () => undefined, (e) => aborted.push(e));
    c.abort();
    expect(inner.calls[1]!.controller.signal.aborted).toBe(true);
    inner.calls[1]!.done(new Error('AbortError'));
    expect(aborted).toEqual([]);
  });
});

describe('withTimeout', () => {
  it('rejects naming what did not answer, and passes a timely answer through', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'listing /api/v1/pods')).rejects.toThrow(/listing \/api\/v1\/pods did not answer/);
    await expect(withTimeout(Promise.resolve(7), 1000, 'x')).resolves.toBe(7);
  });
});
