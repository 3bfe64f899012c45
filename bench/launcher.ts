/**
 * Launcher benchmark: time from PUT /v1/vmi to the domain running, against a raw
 * `virsh define && virsh start` of the same converter output measured in the same run,
 * spawn → command socket answering, and the memory and idle CPU one VM's launcher costs
 * (one `launcher-monitor` process since issue 15 part 1; a separate `launcher` child of the
 * older two-process layout is still measured when present).
 *
 *   npx tsx bench/launcher.ts [--iterations 5] [--paths bin,tsx] [--settle-seconds 1] [--idle-seconds 3] [--node-flags '<flags>'] [--json]
 *
 * Paths: `bin` is what the node agent runs (`node cli/bin.js launcher-monitor ...`: the
 * prebuilt bundle, scripts/build-bundles.mjs); `tsx` is the TypeScript source under tsx
 * (`node --import tsx cli/main.ts launcher-monitor ...`, as the integration tests run it,
 * and how every launcher ran before the bundle).
 *
 * Targets: median(launcher) / median(virsh) ≤ 1.3; per VM ≤ 60 MiB RSS and ≤ 20 MiB PSS;
 * spawn → socket answering ≤ 150 ms. That start-up is also given as the CPU time the process
 * used until then (all its threads, /proc/<pid>/task/<tid>/schedstat): on this shared 2-core
 * machine the wall time depends on the load, the CPU time much less. `--node-flags` replaces
 * the node flags the node agent gives every launcher (LAUNCHER_NODE_FLAGS), e.g. '' for none.
 * Memory is sampled after --settle-seconds plus the idle window: a launcher's RSS still falls
 * by ~3 MiB over its first minute after the sync (V8 gives back the sync's heap), so
 * `--settle-seconds 60` gives the steady state.
 * Both sides start the same test guest (kernel boot from a local registry, cloud-init
 * ISO, emptyDisk) under TCG; "running" is the libvirt state, not guest boot. The virsh
 * side gets its volumes prepared beforehand (untimed), so the ratio is also printed
 * without the launcher's volume preparation. Memory: RSS counts the shared node binary
 * and libraries in full (~34 MiB per node process, shared by every VM on the host); PSS
 * splits shared pages among the processes mapping them; USS (private pages) is what one
 * more VM adds.
 */
import { emitJson, say } from './report.js';
import { cpuTimes } from './proc.js';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { startRegistry, pushTestGuestImages } from '../test/helpers/registry.js';
import { testGuestVmi, waitFor, forceCleanup, REPO, type MonitorHandle } from '../test/integration/launcher/harness.js';
import { callLauncher } from '../launcher/server/client.js';
import { LAUNCHER_NODE_FLAGS } from '../reconciler/agent/process-runtime.js';
import { materializeVolumes, releaseVolumes, ImageStore } from '../launcher/volumes/index.js';
import { convertVmi } from '../launcher/convert/index.js';
import type { VirtualMachineInstance } from '../api/kubevirt.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const iterations = Number(arg('iterations', '5'));
const paths = arg('paths', 'bin,tsx').split(',') as Path[];
const idleSeconds = Number(arg('idle-seconds', '3'));
const settleSeconds = Number(arg('settle-seconds', '1'));
const nodeFlagsArg = process.argv.indexOf('--node-flags');
const nodeFlags: readonly string[] = nodeFlagsArg >= 0 ? (process.argv[nodeFlagsArg + 1] ?? '').split(' ').filter(Boolean) : LAUNCHER_NODE_FLAGS;
type Path = 'bin' | 'tsx';
const ENTRY: Record<Path, string[]> = {
  bin: [join(REPO, 'cli/bin.js')],
  tsx: ['--import', 'tsx', join(REPO, 'cli/main.ts')],
};

const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const mib = (kb: number): string => (kb / 1024).toFixed(1);

interface Mem { rss: number; pss: number; uss: number }
const NO_MEM: Mem = { rss: 0, pss: 0, uss: 0 };
const addMem = (a: Mem, b: Mem): Mem => ({ rss: a.rss + b.rss, pss: a.pss + b.pss, uss: a.uss + b.uss });

async function memKb(pid: number): Promise<Mem> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0);
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0), pss: field('Pss'), uss: field('Private_Clean') + field('Private_Dirty') };
}

/** CPU time of all of a process's threads so far, in ms (ns resolution, unlike /proc/<pid>/stat). */
async function cpuMsAllThreads(pid: number): Promise<number> {
  let ns = 0;
  for (const t of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    ns += Number((await readFile(`/proc/${pid}/task/${t}/schedstat`, 'utf8').catch(() => '0')).split(' ')[0]);
  }
  return ns / 1e6;
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

async function virsh(...args: string[]): Promise<void> {
  await execa('virsh', ['-c', 'qemu:///system', ...args]);
}

/** `virtops launcher-monitor` through `path`, with the flags the harness uses. */
async function startMonitor(path: Path, imageStore: string, insecureRegistry: string): Promise<MonitorHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-bench-launcher-'));
  const name = `lb-${randomBytes(3).toString('hex')}`;
  const uid = `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`;
  const namespace = 'default';
  const shareDir = join(dir, 'share');
  const args = [
    ...ENTRY[path], 'launcher-monitor', '--qemu-timeout', '60s', '--name', name, '--uid', uid, '--namespace', namespace,
    '--kubevirt-share-dir', shareDir, '--ephemeral-disk-dir', join(dir, 'ephemeral'), '--container-disk-dir', join(dir, 'container-disks'),
    '--grace-period-seconds', '1', '--hook-sidecars', '0', '--emulation', 'tcg', '--libvirt-uri', 'qemu:///system',
    '--image-store', imageStore, '--insecure-registry', insecureRegistry,
  ];
  // The node flags the node agent's process runtime gives every launcher.
  const proc = spawn(process.execPath, [...(path === 'bin' ? nodeFlags : []), ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  proc.stderr!.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
        process.stderr.write(`${line}\n`);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const socket = join(shareDir, 'sockets', 'launcher-sock');
  const domain = `${namespace}_${name}`;
  return {
    proc, dir, name, uid, namespace, socket, shareDir, ephemeralDir: join(dir, 'ephemeral'), domain, logs, exited,
    args,
    serialLog: join(shareDir, 'logs', `${domain}-serial0.log`),
    call: (method, p, body) => callLauncher(socket, method, p, body),
  };
}

interface Sample {
  syncMs: number;
  /** Monitor spawned → command socket answering (not part of the sync figure). */
  startupMs: number;
  /** CPU time the process used until its socket answered (all threads). */
  startupCpuMs: number;
  /** CPU time from spawn through the first sync: all threads and reaped helpers. */
  throughSyncCpuMs: number;
  phases: Record<string, number>;
  /** The `launcher-monitor` process: since one process per VM, the launcher runs in it. */
  monitor: Mem;
  /** A separate launcher process (the two-process layout before; zero now). */
  launcher: Mem;
  /** The launcher process's children (a `virsh event` child when that event source is used). */
  launcherChildren: Mem;
  /** CPU used by monitor + launcher (+ children) per second while idle, in ms. */
  idleCpuMsPerS: number;
}

async function measureLauncher(path: Path, imageStoreDir: string, registryHost: string, image: string, record: boolean, samples: Sample[]): Promise<number> {
  let m: MonitorHandle | undefined;
  try {
    const spawnedAt = performance.now();
    m = await startMonitor(path, imageStoreDir, registryHost);
    const h = m;
    // Polled every 20 ms, as an eager node agent would: the first sync follows at once.
    await waitFor('launcher socket', async () => (await h.call('GET', '/healthz')).status === 200, 120_000, 20);
    const startupMs = performance.now() - spawnedAt;
    const startupCpuMs = await cpuMsAllThreads(h.proc.pid!);
    await waitFor('libvirt connected', async () => (await h.call<{ libvirt: string }>('GET', '/v1/info')).body.libvirt === 'connected', 60_000, 20);
    const vmi = testGuestVmi(h, image, 'bench', { imagePullPolicy: 'IfNotPresent' });
    const t0 = performance.now();
    const res = await h.call('PUT', '/v1/vmi', vmi);
    const syncMs = performance.now() - t0;
    // Read right after the sync, before the memory samples' waits add idle CPU.
    const cpuAfterSync = await cpuTimes(h.proc.pid!);
    for (const l of h.logs) if (Number(l['level']) >= 40) process.stderr.write(`  ${path} launcher log: ${JSON.stringify(l)}\n`);
    if (res.status !== 201) throw new Error(`${path}: sync failed: ${res.status} ${JSON.stringify(res.body)}`);
    if (record) {
      const phases = (h.logs.find((l) => l['msg'] === 'sync timings')?.['ms'] ?? {}) as Record<string, number>;
      await new Promise((r) => setTimeout(r, settleSeconds * 1000)); // let the steady state settle before sampling memory
      // One process per VM (`launcher-monitor` runs the launcher in-process); a second
      // Node process, if any, is the launcher child of the older two-process layout.
      let launcherPid: number | undefined;
      for (const c of await childrenOf(h.proc.pid!)) if ((await readFile(`/proc/${c}/cmdline`, 'utf8').catch(() => '')).includes('\0launcher\0')) launcherPid = c;
      const kids = await childrenOf(launcherPid ?? h.proc.pid!);
      const all = [h.proc.pid!, ...(launcherPid !== undefined ? [launcherPid] : []), ...kids];
      const ownCpuS = async (): Promise<number> => (await Promise.all(all.map(async (pid) => (await cpuTimes(pid)).own))).reduce((a, b) => a + b, 0);
      const cpu0 = await ownCpuS();
      const w0 = performance.now();
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const idleCpuMsPerS = ((await ownCpuS()) - cpu0) * 1000 / ((performance.now() - w0) / 1000);
      let launcherChildren = NO_MEM;
      for (const k of kids) launcherChildren = addMem(launcherChildren, await memKb(k).catch(() => NO_MEM));
      const throughSyncCpuMs = (cpuAfterSync.own + cpuAfterSync.children) * 1000;
      samples.push({ syncMs, startupMs, startupCpuMs, throughSyncCpuMs, phases, monitor: await memKb(h.proc.pid!), launcher: launcherPid !== undefined ? await memKb(launcherPid) : NO_MEM, launcherChildren, idleCpuMsPerS });
    }
    await h.call('POST', '/v1/kill');
    h.proc.kill('SIGTERM');
    await h.exited;
    return syncMs;
  } finally {
    await forceCleanup(m);
  }
}

async function measureVirsh(imageStore: ImageStore, work: string, image: string): Promise<number> {
  const name = `vb-${randomBytes(3).toString('hex')}`;
  const dir = join(work, name);
  const base = testGuestVmi({ namespace: 'default', name, uid: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}` }, image, 'bench', { imagePullPolicy: 'IfNotPresent' }) as unknown as VirtualMachineInstance;
  const vols = await materializeVolumes(base, { vmDir: dir, imageStore });
  const { xml } = convertVmi(base, {
    emulation: 'tcg', volumes: vols.volumes, ...(vols.kernelBoot ? { kernelBoot: vols.kernelBoot } : {}),
    socketsDir: join(dir, 'sockets'), logDir: join(dir, 'logs'),
  });
  await execa('mkdir', ['-p', join(dir, 'sockets'), join(dir, 'logs')]);
  const file = join(dir, 'domain.xml');
  await writeFile(file, xml);
  const domain = `default_${name}`;
  try {
    const v0 = performance.now();
    await virsh('define', file);
    await virsh('start', domain);
    return performance.now() - v0;
  } finally {
    await virsh('destroy', domain).catch(() => undefined);
    await virsh('undefine', domain).catch(() => undefined);
    await releaseVolumes(base, { vmDir: dir }, { deleteVm: true });
  }
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const imageStoreDir = await mkdtemp(join(tmpdir(), 'vo-bench-images-'));
  const work = await mkdtemp(join(tmpdir(), 'vo-bench-'));
  const samples: Record<Path, Sample[]> = { bin: [], tsx: [] };
  const virshMs: number[] = [];
  try {
    const { kernelBootImage } = await pushTestGuestImages(registry);
    const imageStore = new ImageStore({ dir: imageStoreDir, insecureRegistries: [registry.host] });
    // Warm-up (not counted): pulls the image into the store, builds the bundle if stale,
    // warms tsx's cache and QEMU's capability cache.
    for (let i = -1; i < iterations; i++) {
      const line: string[] = [];
      for (const path of paths) {
        const ms = await measureLauncher(path, imageStoreDir, registry.host, kernelBootImage, i >= 0, samples[path]);
        line.push(`${path} ${ms.toFixed(0)} ms`);
      }
      const v = await measureVirsh(imageStore, work, kernelBootImage);
      if (i >= 0) virshMs.push(v);
      process.stderr.write(`iteration ${i + 1}/${iterations}${i < 0 ? ' (warm-up)' : ''}: ${line.join(', ')}, virsh ${v.toFixed(0)} ms\n`);
    }
  } finally {
    await registry.stop();
    await rm(imageStoreDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }

  const vm = median(virshMs);
  const json: Record<string, unknown> = { iterations, memorySampledAfterSyncS: settleSeconds + idleSeconds, virshDefineStartMs: vm };
  say(`launcher benchmark (${iterations} iterations, medians; memory ${settleSeconds + idleSeconds} s after the sync; load average ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')})`);
  say(`  virsh define && virsh start (baseline):  ${vm.toFixed(0)} ms   [${virshMs.map((x) => x.toFixed(0)).join(', ')}]`);
  for (const path of paths) {
    const s = samples[path];
    const med = (f: (x: Sample) => number): number => median(s.map(f));
    const lm = med((x) => x.syncMs);
    // validate and materialize run side by side; the later of the two gates the define.
    const gate = (x: Sample): number => Math.max(x.phases['validate'] ?? 0, x.phases['materialize'] ?? 0);
    const withoutVolumes = med((x) => x.syncMs - gate(x) + (x.phases['validate'] ?? 0));
    const withoutBoth = med((x) => x.syncMs - gate(x));
    const phaseNames = Object.keys(s[0]?.phases ?? {});
    const memLine = (label: string, f: (x: Sample) => Mem): string =>
      `    ${label.padEnd(22)} RSS ${mib(med((x) => f(x).rss)).padStart(6)} MiB   PSS ${mib(med((x) => f(x).pss)).padStart(6)} MiB   USS ${mib(med((x) => f(x).uss)).padStart(6)} MiB`;
    say(`  [${path}] ${path === 'bin' ? `node ${nodeFlags.join(' ')}${nodeFlags.length ? ' ' : ''}cli/bin.js launcher-monitor (bundle)` : 'node --import tsx cli/main.ts launcher-monitor'}`);
    say(`    spawn → socket answering (startup): ${med((x) => x.startupMs).toFixed(0)} ms p50   [${s.map((x) => x.startupMs.toFixed(0)).join(', ')}]   (target ≤ 150 ms; not in the ratio)`);
    say(`    CPU used until then (all threads):  ${med((x) => x.startupCpuMs).toFixed(0)} ms p50   [${s.map((x) => x.startupCpuMs.toFixed(0)).join(', ')}]`);
    say(`    CPU from spawn through the sync:    ${med((x) => x.throughSyncCpuMs).toFixed(0)} ms p50   [${s.map((x) => x.throughSyncCpuMs.toFixed(0)).join(', ')}]   (all threads and helpers; 10 ms ticks)`);
    say(`    sync → running (PUT /v1/vmi):       ${lm.toFixed(0)} ms   [${s.map((x) => x.syncMs.toFixed(0)).join(', ')}]`);
    say(`    inside the launcher (median ms):    ${phaseNames.map((k) => `${k} ${med((x) => x.phases[k] ?? 0)}`).join(', ')}`);
    say(`    ratio launcher / baseline:          ${(lm / vm).toFixed(2)}   (target ≤ 1.30)`);
    say(`    ratio without volume preparation:   ${(withoutVolumes / vm).toFixed(2)}   (${withoutVolumes.toFixed(0)} ms: the define waits for validation only)`);
    say(`    ... and without validation:         ${(withoutBoth / vm).toFixed(2)}   (${withoutBoth.toFixed(0)} ms: checks, convert, define, start)`);
    say(memLine('launcher-monitor', (x) => x.monitor));
    say(memLine('separate launcher', (x) => x.launcher));
    say(memLine('launcher children', (x) => x.launcherChildren));
    say(`${memLine('per VM (all of it)', (x) => addMem(x.monitor, x.launcher))}   (target ≤ 60 MiB RSS, ≤ 20 MiB PSS)`);
    say(`    idle CPU (monitor + launcher + children): ${med((x) => x.idleCpuMsPerS).toFixed(1)} ms per second`);
    const memMiB = (f: (x: Sample) => Mem) => ({ rss: Number(mib(med((x) => f(x).rss))), pss: Number(mib(med((x) => f(x).pss))), uss: Number(mib(med((x) => f(x).uss))) });
    json[path] = {
      startupMs: med((x) => x.startupMs), startupCpuMs: med((x) => x.startupCpuMs), throughSyncCpuMs: med((x) => x.throughSyncCpuMs), ...(path === 'bin' ? { nodeFlags } : {}), syncToRunningMs: lm, ratioToVirsh: lm / vm, withoutVolumesMs: withoutVolumes, withoutValidationMs: withoutBoth,
      phasesMs: Object.fromEntries(phaseNames.map((k) => [k, med((x) => x.phases[k] ?? 0)])),
      memoryMiB: { monitor: memMiB((x) => x.monitor), launcher: memMiB((x) => x.launcher), launcherChildren: memMiB((x) => x.launcherChildren), monitorPlusLauncher: memMiB((x) => addMem(x.monitor, x.launcher)) },
      idleCpuMsPerS: med((x) => x.idleCpuMsPerS),
    };
  }
  emitJson('launcher', json);
}

await main();
