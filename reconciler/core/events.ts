/**
 * Event aggregation as Kubernetes' event correlator does it: the same event (type, reason and
 * message) again within a window is not a new entry but one more `count` on the existing one,
 * with its `lastTimestamp` moved; so a repeating condition keeps one line in a bounded history
 * instead of pushing everything else out of it. Pure: the caller passes `now`.
 */
import type { Millis } from './types.js';

/** Kubernetes aggregates repeats seen within 10 minutes. */
export const EVENT_AGGREGATION_WINDOW_MS = 10 * 60_000;

export interface AggregatedEvent {
  /** When it last happened (ISO). */
  time: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** Absent: once. */
  count?: number;
  /** When it first happened (ISO), once it has a count. */
  firstTime?: string;
}

/**
 * The history with `e` recorded at `now`: a repeat within the window counts on the existing
 * entry (moved to the end, the history is ordered by last time); anything else is appended.
 * At most `keep` entries, the oldest dropped.
 */
export function recordEvent<E extends AggregatedEvent>(history: readonly E[], e: Omit<E, 'time' | 'count' | 'firstTime'>, now: Millis, keep: number, windowMs = EVENT_AGGREGATION_WINDOW_MS): E[] {
  const time = new Date(now).toISOString();
  const i = history.findIndex((h) => h.type === e.type && h.reason === e.reason && h.message === e.message && now - Date.parse(h.time) < windowMs);
  let next: E[];
  if (i >= 0) {
    const h = history[i]!;
    next = [...history.slice(0, i), ...history.slice(i + 1), { ...h, time, count: (h.count ?? 1) + 1, firstTime: h.firstTime ?? h.time }];
  } else {
    next = [...history, { ...e, time } as E];
  }
  return next.length > keep ? next.slice(next.length - keep) : next;
}
