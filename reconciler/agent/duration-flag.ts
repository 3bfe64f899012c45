/**
 * Duration flags (--interval, --lease-duration) of `up`, `controller` and `agent`, on top of
 * the one duration parser, launcher/flags.ts's parseDuration (the launcher's --qemu-timeout
 * takes the same syntax).
 */
import { parseDuration } from '../../launcher/flags.js';

/**
 * The default upper bound: Node's timers take at most 2^31-1 ms (~24.8 days) and fire after
 * 1 ms when given more, so a longer --interval would spin instead of waiting.
 */
export const MAX_DURATION_MS = 24 * 24 * 3_600_000;

/**
 * A duration flag (`500ms`, `30s`, `1m`, `1m30s`: launcher/flags.ts's parseDuration, the one
 * parser) in milliseconds, or undefined with a message in `errors` when it is not a duration
 * or lies outside [min, max].
 */
export function durationFlag(value: string, flag: string, errors: string[], opts: { min: number; max?: number }): number | undefined {
  const ms = parseDuration(value);
  const max = opts.max ?? MAX_DURATION_MS;
  if (ms === null) errors.push(`${flag} "${value}" is not a duration: use e.g. 500ms, 30s, 1m or 1m30s`);
  else if (ms < opts.min) errors.push(`${flag} "${value}" is too short: use at least ${formatDuration(opts.min)}`);
  else if (ms > max) errors.push(`${flag} "${value}" is too long: use at most ${formatDuration(max)}`);
  else return ms;
  return undefined;
}

/** `2000` → `2s`: the largest unit that divides evenly, so messages read like the flags. */
export function formatDuration(ms: number): string {
  for (const [unit, n] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}
