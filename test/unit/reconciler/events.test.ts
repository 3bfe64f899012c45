import { describe, expect, it } from 'vitest';
import { EVENT_AGGREGATION_WINDOW_MS, recordEvent, type AggregatedEvent } from '../../../reconciler/core/index.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');
const warn = (reason: string, message = 'm') => ({ type: 'Warning' as const, reason, message });

describe('recordEvent: Kubernetes-style aggregation of repeats', () => {
  it('the same event within the window counts on the existing entry, moved to the end', () => {
    let h: AggregatedEvent[] = [];
    h = recordEvent(h, warn('A'), T0, 30);
    h = recordEvent(h, warn('B'), T0 + 1000, 30);
    h = recordEvent(h, warn('A'), T0 + 2000, 30);
    h = recordEvent(h, warn('A'), T0 + 3000, 30);
    expect(h).toEqual([
      { ...warn('B'), time: new Date(T0 + 1000).toISOString() },
      { ...warn('A'), time: new Date(T0 + 3000).toISOString(), count: 3, firstTime: new Date(T0).toISOString() },
    ]);
  });

  it.each([
    ['another message', warn('A', 'other'), T0 + 1000],
    ['another type', { type: 'Normal' as const, reason: 'A', message: 'm' }, T0 + 1000],
    ['the same, after the window', warn('A'), T0 + EVENT_AGGREGATION_WINDOW_MS],
  ])('%s is a new entry', (_name, e, at) => {
    const h = recordEvent(recordEvent<AggregatedEvent>([], warn('A'), T0, 30), e, at, 30);
    expect(h).toHaveLength(2);
    expect(h[1]!.count).toBeUndefined();
  });

  it('a repeat a thousand times stays one entry; the history is bounded', () => {
    let h: AggregatedEvent[] = [];
    for (let i = 0; i < 1000; i++) h = recordEvent(h, warn('Loop'), T0 + i * 100, 30);
    expect(h).toHaveLength(1);
    expect(h[0]!.count).toBe(1000);
    for (let i = 0; i < 50; i++) h = recordEvent(h, warn(`R${i}`), T0 + 200_000 + i, 30);
    expect(h).toHaveLength(30);
    expect(h.at(-1)!.reason).toBe('R49');
  });
});
