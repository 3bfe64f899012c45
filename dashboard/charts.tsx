/**
 * Two small charts as hand-written SVG rather than a chart library: together they are ~2 KB
 * minified where uPlot alone is ~50 KB, they need no canvas (so they scale, print and carry a
 * text alternative), and the data is tiny (≤ 50 bars, ≤ 720 points). Each has a <title> and
 * a visually hidden table of its numbers for screen readers.
 */
import type { Push, Sample } from './live.js';

const W = 480;
const H = 160;
const PAD = { l: 40, r: 8, t: 8, b: 20 };

export const STATUS_COLORS: Record<string, string> = {
  Running: '#1a7f37',
  Starting: '#9a6700',
  Provisioning: '#9a6700',
  Stopped: '#57606a',
  Stopping: '#57606a',
  Paused: '#0969da',
  CrashLoopBackOff: '#cf222e',
  ErrorUnschedulable: '#cf222e',
  Unknown: '#8250df',
};

const colorOf = (s: string): string => STATUS_COLORS[s] ?? '#6e7781';

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((x) => x >= v)!;
}

/** push → Running latency of the last pushes, one bar each (seconds). */
export function PushChart({ pushes }: { pushes: Push[] }) {
  const data = pushes.slice(-50);
  const max = niceMax(Math.max(...data.map((p) => p.seconds), 0));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = data.length ? iw / Math.max(data.length, 10) : 0;
  return (
    <figure class="chart">
      <figcaption id="push-chart-title">Push → Running, last {data.length} VM start{data.length === 1 ? '' : 's'} (seconds)</figcaption>
      {data.length === 0 ? (
        <p class="muted">No push has reached Running since this virtops up started.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="push-chart-title">
          <title>Push to Running latency per VM start</title>
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={PAD.l} x2={W - PAD.r} y1={PAD.t + ih * (1 - f)} y2={PAD.t + ih * (1 - f)} class="grid" />
              <text x={PAD.l - 4} y={PAD.t + ih * (1 - f) + 4} text-anchor="end" class="axis">{(max * f).toFixed(max < 5 ? 1 : 0)}</text>
            </g>
          ))}
          {data.map((p, i) => {
            const h = (p.seconds / max) * ih;
            return (
              <rect key={i} x={PAD.l + i * bw + 1} y={PAD.t + ih - h} width={Math.max(1, bw - 2)} height={h} fill="#0969da">
                <title>{`${p.vm} @ ${p.sha.slice(0, 8)}: ${p.seconds.toFixed(2)} s`}</title>
              </rect>
            );
          })}
        </svg>
      )}
      <table class="sr-only">
        <caption>Push to Running latency</caption>
        <thead><tr><th>VM</th><th>revision</th><th>seconds</th></tr></thead>
        <tbody>{data.map((p, i) => <tr key={i}><td>{p.vm}</td><td>{p.sha.slice(0, 12)}</td><td>{p.seconds.toFixed(2)}</td></tr>)}</tbody>
      </table>
    </figure>
  );
}

/** A step line: a count holds until the next sample changes it. */
function steps(data: Sample[], status: string, x: (t: number) => number, y: (v: number) => number): string {
  const pts: string[] = [];
  data.forEach((p, i) => {
    const v = p.counts[status] ?? 0;
    if (i > 0) pts.push(`${x(p.t).toFixed(1)},${y(data[i - 1]!.counts[status] ?? 0).toFixed(1)}`);
    pts.push(`${x(p.t).toFixed(1)},${y(v).toFixed(1)}`);
  });
  return pts.join(' ');
}

/** VMs by status over time: one line per status. */
export function StatusChart({ history }: { history: Sample[] }) {
  const data = history.slice(-720);
  const statuses = [...new Set(data.flatMap((s) => Object.keys(s.counts)))].sort();
  const max = niceMax(Math.max(0, ...data.flatMap((s) => Object.values(s.counts))));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const t0 = data[0]?.t ?? 0;
  const t1 = Math.max(data.at(-1)?.t ?? 1, t0 + 1);
  const x = (t: number): number => PAD.l + ((t - t0) / (t1 - t0)) * iw;
  const y = (v: number): number => PAD.t + ih - (v / max) * ih;
  const minutes = Math.round((t1 - t0) / 60000);
  return (
    <figure class="chart">
      <figcaption id="status-chart-title">VMs by status, last {minutes < 1 ? 'minute' : `${minutes} min`}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="status-chart-title">
        <title>VMs by status over time</title>
        {[0, 0.5, 1].filter((f) => Number.isInteger(max * f)).map((f) => (
          <g key={f}>
            <line x1={PAD.l} x2={W - PAD.r} y1={y(max * f)} y2={y(max * f)} class="grid" />
            <text x={PAD.l - 4} y={y(max * f) + 4} text-anchor="end" class="axis">{Math.round(max * f)}</text>
          </g>
        ))}
        {statuses.map((s) => (
          <polyline key={s} fill="none" stroke={colorOf(s)} stroke-width="2" points={steps(data, s, x, y)} />
        ))}
      </svg>
      <ul class="legend">{statuses.map((s) => <li key={s}><span class="swatch" style={{ background: colorOf(s) }} aria-hidden="true" />{s}: {data.at(-1)?.counts[s] ?? 0}</li>)}</ul>
    </figure>
  );
}
