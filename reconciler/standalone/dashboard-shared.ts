/**
 * What the server (events-stream.ts, format.ts) and the browser (dashboard/) share: the row
 * of the overview's VM list and kubectl's short ages. No imports, so the dashboard's
 * browser bundle and its DOM-only type check can take it as it is.
 */

/** One row of the overview's VM list. */
export interface DashboardRow {
  namespace: string;
  name: string;
  status: string;
  ready: boolean;
  revision: string;
  /** The first interface address the status reports ('' when none is known). */
  ip: string;
  firstSeen: string;
  override?: string;
  running: boolean;
}

/** kubectl's short ages: 45s, 3m12s, 5h3m, 2d4h. */
export function age(fromIso: string, now: number): string {
  const s = Math.max(0, Math.floor((now - Date.parse(fromIso)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}
