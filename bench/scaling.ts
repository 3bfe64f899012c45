/**
 * Scaling curves (issue 15, part 4): one push of N VMs to `virtops up` at several N, and what
 * it costs as N grows.
 *
 *   npm run bench:scaling [-- --sizes 10,25,50,100] [--test-sizes 100,1000,5000] [--concurrency N] [--point-timeout 1200] [--pool-host-launchers 1000] [--json] [--out FILE]
 *
 * Real guests (`--sizes`): N test guests (real QEMU under TCG, qemu:///system, the process
 * launcher runtime: real launcher processes), one commit adding all N. For each N:
 *   - per VM, commit → its VMI phase Running (the VM's `StatusChanged … → Running` event, as
 *     KubeVirt's perf job reads creation → Running from the VMI's phase transitions): p50,
 *     p95, max (= all Running), with the stages from the same events (commit → revision
 *     applied from up's log; applied → launcher spawning (`Creating`); → domain started
 *     (`Started`); → Running);
 *   - the floor: the very same N domain XMLs (dumped from virtops' domains, their files copied
 *     out of the state dir, renamed) defined and started by N parallel raw `virsh define &&
 *     virsh start`, in the same run after virtops' guests are removed; per domain the time to
 *     its `start` returning: ratios of p50 and of all-Running (goal ≤ 1.3x);
 *   - the Node floor: the same XMLs defined and started by N parallel minimal Node processes
 *     (bench/node-floor-launcher.mjs), after the floor's guests are gone: what one Node process
 *     per VM costs over `virsh` before any of virtops' own work;
 *   - `virtops up`'s RSS/PSS, the launchers' total RSS and PSS (/proc/<pid>/smaps_rollup of every
 *     launcher process), and CPU seconds of up (delta over the push) and of the launchers
 *     (their whole life so far), from utime+stime in /proc/<pid>/stat; QEMU's figures apart.
 * Then all N are removed (one commit) before the next N; each N gets a fresh `up`.
 *
 * `test:///default` (`--test-sizes`): the same push of N bare VMs (no QEMU), where the per-VM
 * process cost dominates. N ≤ `--test-process-max` (100) runs the process runtime (it fits:
 * ~35 MiB PSS per VM); every N also runs the pool runtime (bench/pool-runtime.ts, `up` through
 * bench/pool-bin.mjs as in bench/density.ts: the real launcher code, many launchers in one process), since 1,000 or 5,000 launcher process pairs
 * do not fit in 24 GiB. Baseline: one `virsh` session defining and starting the same number
 * of domains (test:///default keeps its domains per connection, so parallel `virsh`
 * processes would each see an empty driver).
 *
 * Every point is one JSON object in the `--json` line (and in `--out FILE`, appended), which
 * bench/plot-scaling.ts turns into the log-log SVGs.
 */
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import type { VirtualMachine } from '../api/kubevirt.js';
import { bareVm, gitFixture, testGuestVm, type GitFixture } from '../test/integration/standalone/fixture.js';
import { cleanupStateDir, launcherPids, listVms, makeStateDir, startUp, waitFor, type UpProcess } from '../test/integration/standalone/harness.js';
import { pushTestGuestImages, startRegistry, type LocalRegistry } from '../test/helpers/registry.js';
import { emitJson, eventMs, JSON_FLAG, say } from './report.js';
import { testDriverFloorMs } from './test-driver-floor.js';
import { POOL_BIN } from './pool-runtime.js';
import { cpuTimes, pidsWith, smapsRollup } from './proc.js';
import { floorDomains, nodeFloorStart, rawFloorStart, removeFloorDomains, virsh } from './raw-floor.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,25,50,100' },
    'test-sizes': { type: 'string', default: '100,1000,5000' },
    'test-process-max': { type: 'string', default: '100' },
    out: { type: 'string' },
    'point-timeout': { type: 'string', default: '1200' },
    // up's --concurrency for the real-guest points (default: up's own); test:///default points use TEST_DRIVER_CONCURRENCY.
    concurrency: { type: 'string' },
    // One pool host's event loop keeps up with ~3,000 launchers (BENCHMARKS.md): more host processes beyond.
    'pool-host-launchers': { type: 'string', default: '1000' },
    ...JSON_FLAG,
  },
});
const sizeList = (flag: string, raw: string): number[] => {
  const xs = raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${flag} "${raw}" must be a comma-separated list of positive integers, e.g. --${flag} 10,25 (or '' to skip)`);
  return xs;
};
const SIZES = sizeList('sizes', values.sizes!);
// up's --concurrency per kind of point (undefined: up's default, 16).
const QEMU_CONCURRENCY = values.concurrency === undefined ? undefined : Number(values.concurrency);
if (QEMU_CONCURRENCY !== undefined && (!Number.isInteger(QEMU_CONCURRENCY) || QEMU_CONCURRENCY < 1)) throw new Error('--concurrency must be a positive integer (up\'s start slots for the real-guest points)');
const TEST_DRIVER_CONCURRENCY = 32;
const POOL_HOST_LAUNCHERS = Number(values['pool-host-launchers']);
if (!Number.isInteger(POOL_HOST_LAUNCHERS) || POOL_HOST_LAUNCHERS < 1) throw new Error('--pool-host-launchers must be a positive integer (launchers per pool host process)');
const TEST_SIZES = sizeList('test-sizes', values['test-sizes']!);
const PROCESS_MAX = Number(values['test-process-max']);
if (!Number.isInteger(PROCESS_MAX) || PROCESS_MAX < 0) throw new Error('--test-process-max must be a whole number (0: the pool runtime only)');
const POINT_TIMEOUT_MS = Number(values['point-timeout']) * 1000;
if (!(POINT_TIMEOUT_MS > 0)) throw new Error('--point-timeout must be a positive number of seconds, e.g. --point-timeout 1200');

const PREFIX = 'scale-';
const names = (n: number) => Array.from({ length: n }, (_, i) => `${PREFIX}${i}`);

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const summary = (xs: number[]) => ({ p50: pct(xs, 50), p95: pct(xs, 95), max: Math.max(...xs) });
const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

// ---- /proc readers (bench/proc.ts) -------------------------------------------------------

async function sumProcs(pids: number[]): Promise<{ processes: number; rssMiB: number; pssMiB: number; cpuS: number; childrenCpuS: number }> {
  let rss = 0, pss = 0, cpu = 0, children = 0;
  for (const pid of pids) {
    const m = await smapsRollup(pid);
    rss += m.rssKiB;
    pss += m.pssKiB;
    const t = await cpuTimes(pid);
    cpu += t.own;
    children += t.children;
  }
  return { processes: pids.length, rssMiB: rss / 1024, pssMiB: pss / 1024, cpuS: cpu, childrenCpuS: children };
}

// ---- one point -----------------------------------------------------------------------------

interface Point {
  kind: 'qemu' | 'test';
  runtime: 'process' | 'pool';
  n: number;
  /** Two Node processes per VM (launcher-monitor + launcher), one, or the pool. */
  layout: string;
  /** up's --concurrency (VMs reconciled at once); undefined: up's default, 16. */
  upConcurrency?: number;
  loadBefore: number[];
  loadAfter: number[];
  /** Per VM, ms from the commit (before `git commit`) to its VMI phase Running. */
  runningMs: { p50: number; p95: number; max: number };
  /** Stage p50/max in ms: commit → revision applied (one figure); per VM applied → Creating, Creating → Started, Started → Running. */
  stagesMs: { commitToApplied: number; queue: { p50: number; max: number }; start: { p50: number; max: number }; toRunning: { p50: number; max: number } };
  /** qemu: N parallel `virsh define && start`, per domain ms to its start returning; test: one virsh session, all N. */
  floorMs?: { p50: number; p95: number; max: number };
  /** qemu: the same XML defined and started by N parallel minimal Node processes (bench/node-floor-launcher.mjs), per domain ms to its process exiting. */
  nodeFloorMs?: { p50: number; p95: number; max: number };
  /** virtops / floor; nodeFloor*: the Node floor / floor, what one Node process per VM costs before any of virtops' work. */
  ratio?: { p50?: number; allRunning: number; nodeFloorP50?: number; nodeFloorAllRunning?: number };
  up: { rssMiB: number; pssMiB: number; idleRssMiB: number; peakRssMiB: number; cpuS: number; childrenCpuS: number };
  /** cpuS: the launcher processes' own; childrenCpuS: what they ran and reaped (virsh, genisoimage, qemu-img). */
  launchers: { processes: number; rssMiB: number; pssMiB: number; cpuS: number; childrenCpuS: number; pssPerVmMiB: number; rssPerVmMiB: number };
  qemu?: { processes: number; rssMiB: number; pssMiB: number; cpuS: number; childrenCpuS: number };
  /** False when not all N were Running within --point-timeout: the figures are over those that were. */
  complete: boolean;
  running: number;
  /** MemAvailable's lowest sample while waiting (MiB), and whether it fell below the guard. */
  memAvailableMinMiB: number;
  lowMemory: boolean;
  removeMs: number;
  samplesMs: number[];
}

const MIN_AVAILABLE_MIB = 2500;

async function memAvailableMiB(): Promise<number> {
  return Number((await readFile('/proc/meminfo', 'utf8')).match(/^MemAvailable:\s+(\d+)/m)?.[1] ?? 0) / 1024;
}

async function statusKiB(pid: number, key: string): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
}

async function runPoint(kind: 'qemu' | 'test', runtime: 'process' | 'pool', n: number, registry?: { host: string; image: string }): Promise<Point> {
  const git: GitFixture = await gitFixture();
  const stateDir = await makeStateDir();
  const work = await mkdtemp(join(tmpdir(), 'vo-bench-scale-'));
  const vmNames = names(n);
  const placeholder = bareVm('scale-placeholder', { runStrategy: 'Halted' });
  const vms: VirtualMachine[] = vmNames.map((name) => {
    if (kind === 'test') return bareVm(name);
    const vm = testGuestVm({ image: registry!.image, name });
    // Removal between points is not what is measured: no ACPI wait for guests still booting.
    vm.spec.template.spec.terminationGracePeriodSeconds = 0;
    return vm;
  });
  const upConcurrency = kind === 'qemu' ? QEMU_CONCURRENCY : TEST_DRIVER_CONCURRENCY;
  const args = [
    '--repo', git.bare, '--emulation', 'tcg', '--interval', '5m', '--no-freshness-check',
    ...(kind === 'qemu' ? ['--insecure-registry', registry!.host] : ['--libvirt-uri', 'test:///default']),
    ...(upConcurrency === undefined ? [] : ['--concurrency', String(upConcurrency)]),
  ];
  if (kind === 'qemu' && runtime === 'pool') throw new Error('real guests run the process runtime only');
  let up: UpProcess | undefined;
  // Host i of the pool serves <stateDir>/pool-<i>.sock (host 0 pool.sock).
  const poolNeedles = ['launcher-pool', `${stateDir}/pool`];
  const poolHosts = Math.max(1, Math.ceil(n / POOL_HOST_LAUNCHERS));
  try {
    await git.commitVms([placeholder], 'placeholder');
    // The pool runtime is injected from code by the bench-only entry (bench/pool-runtime.ts).
    process.env['VIRTOPS_BENCH_POOL_HOSTS'] = String(poolHosts);
    up = await startUp(args, stateDir, runtime === 'pool' ? { bin: POOL_BIN } : {});
    const server = up.server;
    const upPid = up.proc.pid!;
    await waitFor('placeholder applied', async () => (await listVms(server)).vms.some((v) => v.name === placeholder.metadata.name), 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = (await statusKiB(upPid, 'VmRSS')) / 1024;
    const loadBefore = load();
    const cpu0 = await cpuTimes(upPid);

    say(`${kind} ${runtime} N=${n}: pushing (load ${loadBefore.join(' ')})`);
    const pushedAt = Date.now();
    await git.commitVms([placeholder, ...vms], `add ${n}`);
    const poll = n >= 1000 ? 1000 : 250;
    const want = new Set(vmNames);
    // Booted test guests hold ~210 MiB each (QEMU PSS): 100 of them nearly fill 24 GiB. Below
    // MIN_AVAILABLE_MIB the point stops waiting (recorded incomplete) and removes its VMs.
    let lowMemory = false;
    let memMin = Infinity;
    const complete = await waitFor(`${n} Running`, async () => {
      const avail = await memAvailableMiB();
      memMin = Math.min(memMin, avail);
      if (avail < MIN_AVAILABLE_MIB) return (lowMemory = true);
      return (await listVms(server)).vms.filter((v) => want.has(v.name) && v.status?.printableStatus === 'Running').length === n;
    }, POINT_TIMEOUT_MS, poll).then(() => !lowMemory, () => false);
    if (lowMemory) say(`  MemAvailable fell below ${MIN_AVAILABLE_MIB} MiB: stopped waiting`);
    const allRunningAt = Date.now();
    // Memory and CPU at the moment all are Running (the launchers' spawn and sync included).
    const upMem = await smapsRollup(upPid);
    const cpu1 = await cpuTimes(upPid);
    const upCpu = cpu1.own - cpu0.own;
    // up's own helpers (git, virsh) and the launcher processes it reaped: spawned children of up.
    const upChildrenCpu = cpu1.children - cpu0.children;
    const peakRss = (await statusKiB(upPid, 'VmHWM')) / 1024;
    const lpids = runtime === 'pool' ? await pidsWith(...poolNeedles) : (await launcherPids(stateDir)).map((p) => p.pid);
    const layoutInfo = runtime === 'pool'
      ? `pool (${poolHosts} process${poolHosts === 1 ? '' : 'es'} hosting every launcher)`
      : await launcherPids(stateDir).then((ps) => {
        const mon = ps.filter((p) => p.monitor).length;
        const launchers = ps.length - mon;
        if (mon > 0 && launchers > 0) return `two Node processes per VM (launcher-monitor + launcher): ${mon} monitors, ${launchers} launchers`;
        return `one Node process per VM: ${ps.length} ${mon > 0 ? 'launcher-monitor processes running the launcher in-process' : 'launcher processes'}`;
      });
    const launchers = await sumProcs(lpids);
    const qemu = kind === 'qemu' ? await sumProcs(await pidsWith('qemu-system', `guest=default_${PREFIX}`)) : undefined;

    const list = await listVms(server);
    const log = up.logText().split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l) as { time: number; msg: string }; } catch { return undefined; } });
    const appliedAt = log.find((l) => l && l.time >= pushedAt && l.msg.startsWith('applying revision'))?.time ?? NaN;
    const running: number[] = [], queue: number[] = [], start: number[] = [], toRunning: number[] = [];
    for (const v of list.vms.filter((x) => want.has(x.name) && x.status?.printableStatus === 'Running')) {
      const run = eventMs(v, 'StatusChanged', /→ Running$/);
      const creating = eventMs(v, 'Creating');
      const started = eventMs(v, 'Started');
      if (run === undefined) throw new Error(`${v.name}: Running but no "→ Running" event; events: ${JSON.stringify(v.events)}`);
      running.push(run - pushedAt);
      if (creating !== undefined) queue.push(creating - appliedAt);
      if (creating !== undefined && started !== undefined) start.push(started - creating);
      if (started !== undefined) toRunning.push(run - started);
    }
    const pm = (xs: number[]) => ({ p50: pct(xs, 50), max: Math.max(...xs) });
    const runningMs = summary(running);
    if (!complete) {
      // Keep what says why (up's log, the pool's log, the VMs' records) before the cleanup.
      const keep = await mkdtemp(join(tmpdir(), `vo-bench-scale-incomplete-${n}-`));
      await writeFile(join(keep, 'up.log'), up.logText());
      await writeFile(join(keep, 'vms.json'), JSON.stringify(list));
      await copyFile(join(stateDir, 'pool.log'), join(keep, 'pool.log')).catch(() => undefined);
      say(`  logs kept in ${keep}`);
    }
    if (!complete) say(`  INCOMPLETE: ${running.length} of ${n} Running after ${POINT_TIMEOUT_MS / 1000} s; the figures below are over those`);
    say(`  all Running ${((allRunningAt - pushedAt) / 1000).toFixed(1)} s after the commit; per VM p50 ${(runningMs.p50 / 1000).toFixed(2)} s, p95 ${(runningMs.p95 / 1000).toFixed(2)} s, max ${(runningMs.max / 1000).toFixed(2)} s`);

    // The floor's copies of the domains, taken while virtops' exist.
    const floorXml = kind === 'qemu' ? await floorDomains(stateDir, work, vmNames.map((name) => `default_${name}`)) : [];

    // Remove all N (one commit), until every domain is gone.
    const r0 = performance.now();
    await git.commitVms([placeholder], `remove ${n}`);
    await waitFor('all pruned', async () => {
      const l = await listVms(server);
      if (l.vms.some((v) => want.has(v.name))) return false;
      if (kind !== 'qemu') return true;
      const left = (await virsh('list', '--all', '--name')).stdout;
      return !left.includes(`default_${PREFIX}`);
    }, 1_800_000, poll);
    const removeMs = performance.now() - r0;

    let floorMs: Point['floorMs'];
    let nodeFloorMs: Point['nodeFloorMs'];
    if (kind === 'qemu') {
      floorMs = summary(await rawFloorStart(floorXml));
      await removeFloorDomains(n);
      // The Node floor on the same machine state: the floor's guests are gone again.
      nodeFloorMs = summary(await nodeFloorStart(floorXml));
      await removeFloorDomains(n);
    } else {
      const t = await testDriverFloorMs(n);
      floorMs = { p50: t, p95: t, max: t };
    }
    const loadAfter = load();
    const point: Point = {
      kind, runtime, n, layout: layoutInfo, upConcurrency, loadBefore, loadAfter, complete, running: running.length, memAvailableMinMiB: Math.round(memMin), lowMemory,
      runningMs,
      stagesMs: { commitToApplied: appliedAt - pushedAt, queue: pm(queue), start: pm(start), toRunning: pm(toRunning) },
      floorMs,
      ...(nodeFloorMs ? { nodeFloorMs } : {}),
      ratio: nodeFloorMs
        ? { p50: runningMs.p50 / floorMs.p50, allRunning: runningMs.max / floorMs.max, nodeFloorP50: nodeFloorMs.p50 / floorMs.p50, nodeFloorAllRunning: nodeFloorMs.max / floorMs.max }
        : { allRunning: runningMs.max / floorMs.max },
      up: { rssMiB: upMem.rssKiB / 1024, pssMiB: upMem.pssKiB / 1024, idleRssMiB: idleRss, peakRssMiB: peakRss, cpuS: upCpu, childrenCpuS: upChildrenCpu },
      launchers: { ...launchers, pssPerVmMiB: launchers.pssMiB / n, rssPerVmMiB: launchers.rssMiB / n },
      ...(qemu ? { qemu } : {}),
      removeMs,
      samplesMs: running.sort((a, b) => a - b),
    };
    say(`  floor ${kind === 'qemu' ? `(N parallel virsh define && start) p50 ${(floorMs.p50 / 1000).toFixed(2)} s, all ${(floorMs.max / 1000).toFixed(2)} s; ratio p50 ${point.ratio!.p50!.toFixed(2)}x` : `(one virsh session) ${(floorMs.max / 1000).toFixed(2)} s;`} all-Running ${point.ratio!.allRunning.toFixed(2)}x`);
    if (nodeFloorMs) say(`  Node floor (N parallel minimal Node processes: binding, connection, define, start) p50 ${(nodeFloorMs.p50 / 1000).toFixed(2)} s, all ${(nodeFloorMs.max / 1000).toFixed(2)} s; over the floor p50 ${point.ratio!.nodeFloorP50!.toFixed(2)}x, all ${point.ratio!.nodeFloorAllRunning!.toFixed(2)}x`);
    say(`  stages: commit → applied ${point.stagesMs.commitToApplied} ms; queue p50 ${point.stagesMs.queue.p50} max ${point.stagesMs.queue.max}; launcher start p50 ${point.stagesMs.start.p50} max ${point.stagesMs.start.max}; started → Running p50 ${point.stagesMs.toRunning.p50} max ${point.stagesMs.toRunning.max} ms`);
    say(`  up RSS ${point.up.rssMiB.toFixed(0)} MiB (PSS ${point.up.pssMiB.toFixed(0)}, idle ${idleRss.toFixed(0)}, peak ${peakRss.toFixed(0)}), CPU ${upCpu.toFixed(1)} s (+${upChildrenCpu.toFixed(1)} s children); launchers (${layoutInfo}): RSS ${launchers.rssMiB.toFixed(0)} MiB, PSS ${launchers.pssMiB.toFixed(0)} MiB (${point.launchers.pssPerVmMiB.toFixed(1)}/VM), CPU ${launchers.cpuS.toFixed(1)} s (+${launchers.childrenCpuS.toFixed(1)} s children)${qemu ? `; QEMU RSS ${qemu.rssMiB.toFixed(0)} MiB, PSS ${qemu.pssMiB.toFixed(0)}, CPU ${qemu.cpuS.toFixed(0)} s` : ''}; removal ${(removeMs / 1000).toFixed(1)} s; load ${loadAfter.join(' ')}`);
    return point;
  } finally {
    await up?.stop().catch(() => undefined);
    if (runtime === 'pool') {
      for (const p of await pidsWith(...poolNeedles)) process.kill(p, 'SIGTERM');
      await waitFor('pool exit', async () => (await pidsWith(...poolNeedles)).length === 0, 120_000).catch(async () => {
        for (const p of await pidsWith(...poolNeedles)) process.kill(p, 'SIGKILL');
      });
    }
    await cleanupStateDir(stateDir);
    if (kind === 'qemu') {
      const left = (await virsh('list', '--all', '--name')).stdout.split('\n').map((s) => s.trim()).filter((d) => d.startsWith(`default_${PREFIX}`) || /^floor_\d+$/.test(d));
      for (const d of left) {
        await virsh('destroy', d);
        await virsh('undefine', d);
      }
    }
    await rm(work, { recursive: true, force: true });
    await git.cleanup();
  }
}

async function main(): Promise<void> {
  const points: Point[] = [];
  const record = async (p: Point) => {
    points.push(p);
    if (values.out) await appendFile(values.out, `${JSON.stringify(p)}\n`);
  };
  for (const n of TEST_SIZES) {
    if (n <= PROCESS_MAX) await record(await runPoint('test', 'process', n));
    await record(await runPoint('test', 'pool', n));
  }
  if (SIZES.length) {
    let registry: LocalRegistry | undefined;
    try {
      registry = await startRegistry();
      const image = (await pushTestGuestImages(registry)).kernelBootImage;
      for (const n of SIZES) {
        say(`MemAvailable before N=${n}: ${Math.round(await memAvailableMiB())} MiB`);
        await record(await runPoint('qemu', 'process', n, { host: registry.host, image }));
      }
    } finally {
      await registry?.stop();
    }
  }
  say('\nkind   runtime  N     Running p50/p95/max s     floor p50/max s  ratio p50/all  up RSS  launchers RSS/PSS MiB  CPU up+launchers s');
  for (const p of points) {
    say(`${p.kind.padEnd(6)} ${p.runtime.padEnd(8)} ${String(p.n).padEnd(5)} ${[p.runningMs.p50, p.runningMs.p95, p.runningMs.max].map((x) => (x / 1000).toFixed(2)).join('/').padEnd(25)} ${[p.floorMs?.p50 ?? NaN, p.floorMs?.max ?? NaN].map((x) => (x / 1000).toFixed(2)).join('/').padEnd(16)} ${`${p.ratio?.p50?.toFixed(2) ?? '-'}/${p.ratio?.allRunning.toFixed(2)}`.padEnd(14)} ${p.up.rssMiB.toFixed(0).padEnd(7)} ${`${p.launchers.rssMiB.toFixed(0)}/${p.launchers.pssMiB.toFixed(0)}`.padEnd(22)} ${(p.up.cpuS + p.launchers.cpuS).toFixed(1)} (+${(p.up.childrenCpuS + p.launchers.childrenCpuS).toFixed(1)} children)${p.complete ? '' : ` INCOMPLETE ${p.running}/${p.n}`}`);
  }
  emitJson('scaling', { cpuSource: '/proc/<pid>/stat: utime+stime (own) and cutime+cstime (reaped children); up: delta over the push; launchers: whole life until all Running', points });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scaling: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
