/**
 * The scaling curves of bench:scaling as log-log SVGs, rendered in Node by vega-lite + vega
 * (`view.toSVG()`: no browser, no canvas), from the JSON the bench wrote, so they can be
 * regenerated:
 *
 *   npx tsx bench/plot-scaling.ts FILE.jsonl... [--out-dir bench]
 *
 * Each input line is one point (`--out FILE` of bench:scaling) or a whole `--json` line of it
 * (`{"bench":"scaling", points: [...]}`); a later point with the same kind, runtime and N
 * replaces an earlier one. Writes scaling-time.svg (per-VM commit → Running p50/p95/max and the
 * raw virsh floor against N) and scaling-memory.svg (up's RSS and the launchers' total RSS
 * and PSS against N), and prints each series' log-log slope (1 = linear).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

interface Point {
  kind: 'qemu' | 'test';
  runtime: 'process' | 'pool';
  n: number;
  loadBefore: number[];
  loadAfter: number[];
  complete?: boolean;
  running?: number;
  runningMs: { p50: number; p95: number; max: number };
  stagesMs: { commitToApplied: number; queue: { p50: number; max: number }; start: { p50: number; max: number }; toRunning: { p50: number; max: number } };
  floorMs?: { p50: number; max: number };
  nodeFloorMs?: { p50: number; max: number };
  ratio?: { p50?: number; allRunning: number };
  up: { rssMiB: number; cpuS: number; childrenCpuS?: number };
  launchers: { rssMiB: number; pssMiB: number; cpuS: number; childrenCpuS?: number };
  qemu?: { rssMiB: number; pssMiB: number };
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'out-dir': { type: 'string', default: new URL('.', import.meta.url).pathname } } });
if (positionals.length === 0) throw new Error('give the JSON lines bench:scaling wrote: npx tsx bench/plot-scaling.ts /tmp/scaling.jsonl [--out-dir bench]');

/** Least-squares slope of log(y) on log(x): 1 is linear growth, > 1 super-linear. */
export function logLogSlope(xy: [number, number][]): number {
  const pts = xy.filter(([x, y]) => x > 0 && y > 0).map(([x, y]) => [Math.log(x), Math.log(y)] as const);
  if (pts.length < 2) return NaN;
  const mx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
  const my = pts.reduce((s, p) => s + p[1], 0) / pts.length;
  const num = pts.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const den = pts.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return num / den;
}

async function readPoints(files: string[]): Promise<Point[]> {
  const byKey = new Map<string, Point>();
  for (const f of files) {
    for (const line of (await readFile(f, 'utf8')).split('\n').filter((l) => l.trim().startsWith('{'))) {
      const o = JSON.parse(line) as Point | { bench: string; points: Point[] };
      for (const p of 'points' in o ? o.points : [o]) byKey.set(`${p.kind}/${p.runtime}/${p.n}`, p);
    }
  }
  return [...byKey.values()].sort((a, b) => a.n - b.n);
}

const label = (p: Point) => (p.kind === 'qemu' ? 'test guests (QEMU, TCG)' : `test:///default, ${p.runtime} runtime`);

async function render(spec: TopLevelSpec, file: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  await writeFile(file, await view.toSVG());
  await view.finalize();
}

const logAxis = (title: string) => ({ type: 'quantitative' as const, title, scale: { type: 'log' as const } });

async function main(): Promise<void> {
  const points = await readPoints(positionals);
  const time: { n: number; s: number; series: string; set: string; order: number }[] = [];
  const mem: { n: number; mib: number; series: string; set: string; order: number }[] = [];
  for (const p of points) {
    const set = label(p);
    // Columns: real guests first, then the test driver's process and pool runtimes.
    const order = p.kind === 'qemu' ? 0 : p.runtime === 'process' ? 1 : 2;
    time.push({ n: p.n, s: p.runningMs.p50 / 1000, series: 'virtops p50', set, order }, { n: p.n, s: p.runningMs.max / 1000, series: 'virtops all Running', set, order });
    if (p.kind === 'qemu') time.push({ n: p.n, s: p.runningMs.p95 / 1000, series: 'virtops p95', set, order });
    if (p.floorMs) {
      if (p.kind === 'qemu') time.push({ n: p.n, s: p.floorMs.p50 / 1000, series: 'raw virsh p50', set, order });
      time.push({ n: p.n, s: p.floorMs.max / 1000, series: p.kind === 'qemu' ? 'raw virsh all started' : 'one virsh session, all', set, order });
    }
    if (p.nodeFloorMs) time.push({ n: p.n, s: p.nodeFloorMs.p50 / 1000, series: 'Node floor p50 (minimal Node process per VM)', set, order });
    mem.push({ n: p.n, mib: p.up.rssMiB, series: 'virtops up RSS', set, order }, { n: p.n, mib: p.launchers.rssMiB, series: 'launchers RSS (sum)', set, order }, { n: p.n, mib: p.launchers.pssMiB, series: 'launchers PSS (sum)', set, order });
  }
  const common = { width: 300, height: 240, background: 'white' } as const;
  await render({
    ...common,
    title: 'bench:scaling: commit → VMI Running vs N (log-log)',
    data: { values: time },
    facet: { column: { field: 'set', type: 'nominal', title: null, sort: { field: 'order' } } },
    spec: {
      width: 300, height: 240,
      mark: { type: 'line', point: true },
      encoding: { x: { ...logAxis('N (VMs in one push)'), field: 'n' }, y: { ...logAxis('seconds'), field: 's' }, color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 400 } } },
    },
    resolve: { scale: { y: 'independent' } },
  } as unknown as TopLevelSpec, join(values['out-dir']!, 'scaling-time.svg'));
  await render({
    ...common,
    title: 'bench:scaling: memory vs N (log-log)',
    data: { values: mem },
    facet: { column: { field: 'set', type: 'nominal', title: null, sort: { field: 'order' } } },
    spec: {
      width: 300, height: 240,
      mark: { type: 'line', point: true },
      encoding: { x: { ...logAxis('N (VMs running)'), field: 'n' }, y: { ...logAxis('MiB'), field: 'mib' }, color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 400 } } },
    },
    resolve: { scale: { y: 'independent' } },
  } as unknown as TopLevelSpec, join(values['out-dir']!, 'scaling-memory.svg'));
  // The table BENCHMARKS.md carries, from the same points.
  const s = (ms: number) => (ms / 1000).toFixed(1);
  console.log('\n| set | N | commit → Running p50 / p95 / max s | floor p50 / all s | ratio p50 / all | stages p50 s: applied, queue, launcher start, → Running | up RSS MiB | launchers RSS / PSS MiB (per VM) | CPU s: up, launchers (+children) | load 1m before → after |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const p of [...points].sort((a, b) => label(a).localeCompare(label(b)) || a.n - b.n)) {
    const st = p.stagesMs;
    console.log(`| ${label(p)} | ${p.n}${p.complete === false ? ` (${p.running} Running)` : ''} | ${s(p.runningMs.p50)} / ${s(p.runningMs.p95)} / ${s(p.runningMs.max)} | ${p.floorMs ? `${p.kind === 'qemu' ? s(p.floorMs.p50) : '–'} / ${p.floorMs.max < 1000 ? (p.floorMs.max / 1000).toFixed(2) : s(p.floorMs.max)}` : '–'} | ${p.ratio?.p50 !== undefined ? `${p.ratio.p50.toFixed(2)}x` : '–'} / ${p.ratio ? `${p.ratio.allRunning.toFixed(p.ratio.allRunning >= 10 ? 0 : 2)}x` : '–'} | ${s(st.commitToApplied)}, ${s(st.queue.p50)}, ${s(st.start.p50)}, ${s(st.toRunning.p50)} | ${p.up.rssMiB.toFixed(0)} | ${p.launchers.rssMiB.toFixed(0)} / ${p.launchers.pssMiB.toFixed(0)} (${(p.launchers.pssMiB / p.n).toFixed(1)}) | ${p.up.cpuS.toFixed(1)}, ${p.launchers.cpuS.toFixed(1)}${p.launchers.childrenCpuS !== undefined ? ` (+${p.launchers.childrenCpuS.toFixed(1)})` : ''} | ${p.loadBefore[0]} → ${p.loadAfter[0]} |`);
  }
  console.log();
  for (const [set, rows] of groupBy(time, (r) => r.set)) {
    for (const [series, xs] of groupBy(rows, (r) => r.series)) console.log(`time   ${set} / ${series}: slope ${logLogSlope(xs.map((r) => [r.n, r.s])).toFixed(2)} over N=${xs.map((r) => r.n).join(',')}`);
  }
  for (const [set, rows] of groupBy(mem, (r) => r.set)) {
    for (const [series, xs] of groupBy(rows, (r) => r.series)) console.log(`memory ${set} / ${series}: slope ${logLogSlope(xs.map((r) => [r.n, r.mib])).toFixed(2)} over N=${xs.map((r) => r.n).join(',')}`);
  }
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

await main();
