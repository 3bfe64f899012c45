import { describe, expect, it } from 'vitest';
import { refusalNotice } from '../../../reconciler/standalone/format.js';
import { SourceHealth } from '../../../reconciler/standalone/source-health.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');

describe('SourceHealth: a failing source, since when, until it recovers', () => {
  it('keeps the first failure time while it fails, clears on success, per stage', () => {
    const h = new SourceHealth();
    h.fail('fetch', 'fatal: not a git repository', T0);
    h.fail('fetch', 'fatal: still not', T0 + 5000);
    expect(h.error).toEqual({ stage: 'fetch', message: 'fatal: still not', since: new Date(T0).toISOString(), lastAt: new Date(T0 + 5000).toISOString() });
    h.fail('apply', 'ENOSPC', T0 + 6000);
    h.ok('fetch');
    expect(h.error).toMatchObject({ stage: 'apply', since: new Date(T0 + 6000).toISOString() });
    h.ok('apply');
    expect(h.error).toBeUndefined();
  });

  it('the get vms banner is one line naming the error and since when, above a refusal', () => {
    const h = new SourceHealth();
    h.fail('fetch', 'fatal: could not read\nfrom remote repository', T0);
    const notice = refusalNotice({ revision: 'a'.repeat(40), sourceError: h.error!, refused: { sha: 'b'.repeat(40), errors: ['x'], at: T0 } })!;
    const [first, second] = notice.split('\n');
    expect(first).toBe(`warning: the git source is failing since ${new Date(T0).toISOString()} (fetching): fatal: could not read from remote repository; revision aaaaaaaaaaaa keeps running`);
    expect(second).toMatch(/^warning: commit bbbbbbbbbbbb was refused/);
    expect(refusalNotice({ revision: null })).toBeUndefined();
  });
});
