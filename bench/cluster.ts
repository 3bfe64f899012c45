/**
 * Cluster-mode benchmark on a real control plane (reconciler/cluster/testenv: etcd,
 * kube-apiserver, kube-scheduler, kube-controller-manager), real git, launchers on libvirt's
 * test:///default driver.
 *
 *   npx tsx bench/cluster.ts [--vms 100] [--rss-vms 1000] [--skip writes,scale,rss] [--json]
 *     [--controller-bin <other checkout>/cli/bin.js] [--controller-node-options '<node flags>'] [--controller-env K=V,...] [--rss-steady-wait 60]
 *     [--agent-vms 100 [--agent-env K=V,...]]   (the controller and the agent run with the install manifests' GLIBC_TUNABLES,
 *     the controller also with their NODE_OPTIONS; --controller-env GLIBC_TUNABLES=,NODE_OPTIONS= / --agent-env GLIBC_TUNABLES=
 *     for the defaults)
 *
 * 1. API writes per VM from apply to Running: every write the controller and the agent make
 *    goes through HttpKubeClient, which counts them; one VM is pushed and the writes naming it
 *    (VM, VMI, its launcher Pod, events about it) are counted until it is Running and 4 s
 *    after. Target ≤ 3 status/update writes (issue 15) (KubeVirt's perf-scale job: ~8–9 per VMI); the SSA
 *    apply and the two creates are printed separately.
 * 2. N VMs (default 100) from one push → all Running. Target < 30 s. Baseline measured in the
 *    same run: the API floor, i.e. the same number of VMs + VMIs + Pods created and their
 *    statuses patched directly by one client, with no controller or agent in between.
 *    Launchers run in the benchmarks' pool runtime (bench/pool-runtime.ts: one process, real Launcher class and
 *    command socket per VM): 100 launcher processes would need ~24 GB.
 * 3. Controller RSS with M VMs (default 1,000, Always, no agent: 1,000 VMIs and 1,000 Pending
 *    launcher Pods in its caches), as a separate `virtops controller` process. Goal ≤ 150 MiB
 *    at 1,000, ≤ 100 MiB at 100 (issue 15). Baseline: the same process idle with one VM. Where
 *    the memory is comes from bench/mem-probe.cjs, preloaded into that process: V8 heap
 *    committed vs used, the live heap after a full GC, anonymous vs file-backed RSS.
 * 4. With --agent-vms K (runs first; best alone: --skip writes,scale,rss): the node agent's
 *    RSS with K VMIs Running on its node, as a separate process (`node bench/pool-bin.mjs agent
 *    --process-runtime`: `virtops agent` bundled, with the pool runtime injected, so its
 *    launchers are in the pool's process, not in the agent's). Goal ≤ 70 MiB at 100 (issue 15).
 */
import { emitJson, say } from './report.js';
import { cpuTimes } from './proc.js';
import { CONTROLLER_NODE_OPTIONS as INSTALL_CONTROLLER_NODE_OPTIONS, DAEMON_GLIBC_TUNABLES } from '../synth/install.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { pino } from 'pino';
import YAML from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { VirtualMachine } from '../api/kubevirt.js';
import { renderCrd, VM_CRD, VMI_CRD } from '../synth/crds.js';
import { HttpKubeClient, loadKubeConfig } from '../reconciler/cluster/kube.js';
import { CLI_BIN, runAgent, runController } from '../reconciler/cluster/run.js';
import { startControlPlane } from '../reconciler/cluster/testenv/index.js';
import { bareVm, gitFixture, vmDocuments, type GitFixture } from '../test/integration/standalone/fixture.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const N = Number(arg('vms', '100'));
const M = Number(arg('rss-vms', '1000'));
/** Every `--skip` given (each comma-separated), not only the first. */
const skip = new Set(process.argv.flatMap((v, i) => (process.argv[i - 1] === '--skip' ? v.split(',') : [])).filter(Boolean));
/** Extra Node/V8 flags for the measured controller process (its command line), to weigh e.g. heap limits against CPU. */
const CONTROLLER_NODE_OPTIONS = arg('controller-node-options', '');
/** Extra environment for the measured controller, e.g. MALLOC_ARENA_MAX=2 (comma-separated K=V). */
const envArg = (name: string): Record<string, string> => Object.fromEntries(arg(name, '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const CONTROLLER_ENV = envArg('controller-env');
/** Seconds after the loaded samples before a last, steady-state sample (V8 gives back idle heap after ~1 min). */
const STEADY_WAIT_S = Number(arg('rss-steady-wait', '60'));
const MEM_PROBE = new URL('./mem-probe.cjs', import.meta.url).pathname;
/**
 * The `virtops` executable whose controller is measured (default this checkout's cli/bin.js):
 * another checkout's, e.g. an export of an earlier commit, measures "before" in the same session.
 */
const CONTROLLER_BIN = arg('controller-bin', CLI_BIN);
/** Section 4 (off unless > 0): the node agent's RSS with this many VMIs Running on its node. */
const AGENT_VMS = Number(arg('agent-vms', '0'));
/** Extra environment of the measured agent, e.g. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072. */
const AGENT_ENV = envArg('agent-env');
/** What the daemons run with, as the install manifests set it (synth/install.ts), plus --controller-env / --agent-env. */
const CONTROLLER_RUN_ENV: Record<string, string> = { GLIBC_TUNABLES: DAEMON_GLIBC_TUNABLES, NODE_OPTIONS: INSTALL_CONTROLLER_NODE_OPTIONS, ...CONTROLLER_ENV };
const AGENT_RUN_ENV: Record<string, string> = { GLIBC_TUNABLES: DAEMON_GLIBC_TUNABLES, ...AGENT_ENV };
/** `env` for a measured daemon: its run env, with NODE_OPTIONS after the memory probe's options. */
const withProbe = (run: Record<string, string>, probeOptions: string): Record<string, string> => ({ ...run, NODE_OPTIONS: [probeOptions, run['NODE_OPTIONS'] ?? ''].filter(Boolean).join(' ') });
/** Where to write a heap snapshot of the measured controller, taken after the full GC (default: none). */
const HEAP_SNAPSHOT = arg('heap-snapshot', '');
const log = pino({ level: process.env['VIRTOPS_BENCH_LOG'] ?? 'warn' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    // Errors count as "not yet" (e.g. the CRDs are not installed until the first apply).
    const ok = await fn().catch((err: unknown) => ((last = err), false));
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

const crds = () => [renderCrd(VM_CRD), renderCrd(VMI_CRD)].map((d) => YAML.stringify(d)).join('---\n');
function vmsIn(ns: string, names: string[], runStrategy: VirtualMachine['spec']['runStrategy'] = 'Always'): VirtualMachine[] {
  return names.map((n) => ({ ...bareVm(n, { runStrategy }), metadata: { name: n, namespace: ns } }) as VirtualMachine);
}
async function push(git: GitFixture, vms: VirtualMachine[], msg: string): Promise<void> {
  // One file for all VMs keeps the commit small to write.
  await git.commitDist({ 'crds.k8s.yaml': crds(), 'vms.k8s.yaml': vms.map((v) => vmDocuments(v)).join('---\n') }, msg);
}
async function countRunning(admin: HttpKubeClient, ns: string): Promise<number> {
  const l = await admin.list('kubevirt.io/v1', 'VirtualMachine', { namespace: ns });
  return (l.items as VirtualMachine[]).filter((v) => v.status?.printableStatus === 'Running').length;
}
async function rssKb(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
}
const mib = (kb: number) => (kb / 1024).toFixed(1);

/** Stops the launcher pool this run started (its socket is in this run's temp dir), by pid. */
async function stopPool(dir: string): Promise<void> {
  const pids = (await execa('pgrep', ['-f', join(dir, 'pool.sock')], { reject: false })).stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  }
}

interface ProbeReport {
  memoryUsage: NodeJS.MemoryUsage;
  spaces: { name: string; size: number; used: number }[];
  smaps: Record<string, number>;
  anon?: { brkHeap: number; mallocArenas: number; other: number };
}
/** Asks the measured process (bench/mem-probe.cjs) where its memory is: as it is, then right after a full GC. */
async function memProbe(pid: number, file: string): Promise<{ asIs: ProbeReport; afterGc: ProbeReport } | undefined> {
  const asIs = await probeOnce(pid, file, false);
  if (HEAP_SNAPSHOT) await writeFile(`${file}.snap`, HEAP_SNAPSHOT);
  const afterGc = asIs ? await probeOnce(pid, file, true) : undefined;
  await rm(`${file}.snap`, { force: true });
  return asIs && afterGc ? { asIs, afterGc } : undefined;
}
/** One report; with `gc` the probe collects first (it does when `<file>.gc` exists). */
async function probeOnce(pid: number, file: string, gc: boolean): Promise<ProbeReport | undefined> {
  if (gc) await writeFile(`${file}.gc`, '');
  else await rm(`${file}.gc`, { force: true });
  await rm(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text) return JSON.parse(text) as ProbeReport;
  }
  return undefined;
}
function probeSummary(p: { asIs: ProbeReport; afterGc: ProbeReport }): Record<string, number> {
  const m = (b: number) => Number((b / 2 ** 20).toFixed(1));
  const space = (r: ProbeReport, n: string) => r.spaces.find((s) => s.name === n);
  return {
    rssMiB: m(p.asIs.memoryUsage.rss), heapTotalMiB: m(p.asIs.memoryUsage.heapTotal), heapUsedMiB: m(p.asIs.memoryUsage.heapUsed),
    externalMiB: m(p.asIs.memoryUsage.external), arrayBuffersMiB: m(p.asIs.memoryUsage.arrayBuffers),
    newSpaceMiB: m(space(p.asIs, 'new_space')?.size ?? 0), oldSpaceMiB: m(space(p.asIs, 'old_space')?.size ?? 0), codeSpaceMiB: m(space(p.asIs, 'code_space')?.size ?? 0),
    anonMiB: m(p.asIs.smaps['Anonymous'] ?? 0), fileBackedMiB: m((p.asIs.smaps['Rss'] ?? 0) - (p.asIs.smaps['Anonymous'] ?? 0)),
    brkHeapMiB: m(p.asIs.anon?.brkHeap ?? 0), mallocArenasMiB: m(p.asIs.anon?.mallocArenas ?? 0), otherAnonMiB: m(p.asIs.anon?.other ?? 0),
    liveHeapAfterGcMiB: m(p.afterGc.memoryUsage.heapUsed), heapTotalAfterGcMiB: m(p.afterGc.memoryUsage.heapTotal), rssAfterGcMiB: m(p.afterGc.memoryUsage.rss),
  };
}
function formatProbe(p: { asIs: ProbeReport; afterGc: ProbeReport }): string {
  const s = probeSummary(p);
  return [
    `  where (at the steady sample): RSS ${s['rssMiB']} MiB = anonymous ${s['anonMiB']} + file-backed ${s['fileBackedMiB']} (code, mapped libraries)`,
    `    V8 heap committed ${s['heapTotalMiB']} MiB (new space ${s['newSpaceMiB']}, old ${s['oldSpaceMiB']}, code ${s['codeSpaceMiB']}), used ${s['heapUsedMiB']}; external ${s['externalMiB']} (array buffers ${s['arrayBuffersMiB']})`,
    `    anonymous by mapping: brk heap (malloc's main arena) ${s['brkHeapMiB']}, malloc's thread arenas (64 MiB-aligned regions, a heuristic) ${s['mallocArenasMiB']}, other (V8 pages, stacks) ${s['otherAnonMiB']}`,
    `    after a full GC: live heap ${s['liveHeapAfterGcMiB']} MiB of ${s['heapTotalAfterGcMiB']} committed; RSS ${s['rssAfterGcMiB']} MiB`,
  ].join('\n');
}

/** Section 4: `virtops agent` (bundled, pool runtime) as its own process with AGENT_VMS VMIs Running on its node. */
async function agentRss(kubeconfig: string, admin: HttpKubeClient, ns: (n: string) => Promise<unknown>, dir: string): Promise<Record<string, unknown>> {
  const K = AGENT_VMS;
  await ns('agent-system');
  await ns('agent-rss');
  const agentGit = await gitFixture();
  const agentDir = join(dir, 'agent-rss');
  const probeFile = join(dir, 'agent-mem.json');
  const { POOL_BIN } = await import('./pool-runtime.js');
  let proc: ResultPromise | undefined;
  let controller: Awaited<ReturnType<typeof runController>> | undefined;
  try {
    await push(agentGit, vmsIn('agent-rss', ['idle'], 'Halted'), 'idle');
    controller = await runController(
      { repo: agentGit.bare, branch: 'main', distPath: 'dist', namespace: 'agent-system', leaderElect: false, intervalMs: 600_000, freshness: false, identity: 'bench-agent', leaseDurationMs: 15_000 },
      log, { client: new HttpKubeClient(loadKubeConfig(kubeconfig)) },
    );
    proc = execa(process.execPath, [POOL_BIN, 'agent', '--kubeconfig', kubeconfig, '--node', 'rss-node', '--process-runtime', '--state-dir', agentDir, '--emulation', 'tcg', '--libvirt-uri', 'test:///default', '--interval', '10m', '--port', '0'], {
      reject: false,
      env: { VIRTOPS_LOG_LEVEL: 'warn', VIRTOPS_BENCH_NODE_PODS: String(K), VIRTOPS_MEM_PROBE: probeFile, ...withProbe(AGENT_RUN_ENV, [`--require ${MEM_PROBE}`, '--expose-gc'].join(' ')) },
    });
    await until('the agent registers its Node', async () => (await admin.read<KubernetesObject>({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'rss-node' } })) !== undefined, 60_000, 500);
    await sleep(5000);
    const idle = await rssKb(proc.pid!);
    const t0 = Date.now();
    await push(agentGit, vmsIn('agent-rss', Array.from({ length: K }, (_, i) => `a${i}`)), `${K} VMs`);
    await until(`${K} VMs Running`, async () => (await countRunning(admin, 'agent-rss')) === K, 900_000, 1000);
    const convergedS = (Date.now() - t0) / 1000;
    await sleep(5000);
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      samples.push(await rssKb(proc.pid!));
      await sleep(1000);
    }
    const cpuAtLoaded = (await cpuTimes(proc.pid!)).own;
    await sleep(STEADY_WAIT_S * 1000);
    const steady = await rssKb(proc.pid!);
    const probe = await memProbe(proc.pid!, probeFile);
    const loaded = Math.max(...samples);
    say(`\n## agent RSS with ${K} VMIs Running on its node (converged in ${convergedS.toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
    say(`  idle (Node registered, no VMI): ${mib(idle)} MiB; with ${K}: ${mib(loaded)} MiB (max of 5 samples; min ${mib(Math.min(...samples))}; goal ≤ 70 MiB at 100); ${STEADY_WAIT_S} s later ${mib(steady)} MiB; CPU ${cpuAtLoaded.toFixed(2)} s`);
    if (probe) say(formatProbe(probe));
    say(`  (\`node bench/pool-bin.mjs agent\`: virtops agent from the bench-pool bundle; its launchers run in the pool process, not counted)${Object.keys(AGENT_ENV).length ? `; env: ${JSON.stringify(AGENT_ENV)}` : ''}`);
    return { vmis: K, env: AGENT_RUN_ENV, idleMiB: Number(mib(idle)), loadedMaxMiB: Number(mib(loaded)), steadyMiB: Number(mib(steady)), cpuS: Number(cpuAtLoaded.toFixed(2)), convergedS: Number(convergedS.toFixed(1)), load: loadavg(), ...(probe ? { breakdown: probeSummary(probe) } : {}) };
  } finally {
    if (proc) {
      proc.kill('SIGTERM');
      await proc;
    }
    await controller?.stop().catch(() => undefined);
    const pids = (await execa('pgrep', ['-f', join(agentDir, 'pool.sock')], { reject: false })).stdout.split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    }
    await admin.delete({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'rss-node' } }).catch(() => undefined);
    await agentGit.cleanup();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vo-bench-cluster-'));
  const started = Date.now();
  const json: Record<string, unknown> = {};
  const cp = await startControlPlane({ dir: join(dir, 'cp') });
  say(`control plane ${cp.kubernetesVersion} up in ${Date.now() - started} ms`);
  const admin = new HttpKubeClient(loadKubeConfig(cp.kubeconfigPath));
  const ns = (n: string) => admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } } as KubernetesObject);
  const git = await gitFixture();
  const stops: (() => Promise<void>)[] = [];
  // Interrupted: the control plane stops itself (testenv's signal hook); the detached
  // launcher pool, the temp dir and the git fixture are ours to remove.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void (async () => {
        await stopPool(dir);
        await cp.stop().catch(() => undefined);
        await git.cleanup().catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
        process.exit(130);
      })();
    });
  }
  try {
    await ns('virtops-system');
    if (AGENT_VMS > 0) json['agentRss'] = await agentRss(cp.kubeconfigPath, admin, ns, dir);
    // ---- 1 + 2: writes per VM, N VMs → Running -------------------------------------------
    if (!skip.has('writes') || !skip.has('scale')) {
      const { PoolRuntime } = await import('./pool-runtime.js');
      const pool = new PoolRuntime({ socketPath: join(dir, 'pool.sock'), logFile: join(dir, 'pool.log') });
      const agentClient = new HttpKubeClient(loadKubeConfig(cp.kubeconfigPath));
      const agent = await runAgent(
        { node: 'bench-node', processRuntime: true, stateDir: join(dir, 'agent'), emulation: 'tcg', libvirtUri: 'test:///default', insecureRegistries: [], intervalMs: 60_000 },
        // test:///default guests take no host CPU or memory: the Node advertises room for N
        // VMs (the host's 2 CPUs fit only 20 launcher Pods' requests; the scheduler would
        // leave the rest Unschedulable).
        log, { client: agentClient, launcherRuntime: pool, capacity: { cpus: Math.max(64, N), memoryBytes: (N + 16) * 2 ** 30, pods: N + 20 } },
      );
      stops.push(() => agent.stop());
      const controllerClient = new HttpKubeClient(loadKubeConfig(cp.kubeconfigPath));
      await ns('bench');
      await push(git, vmsIn('bench', ['warmup']), 'warm-up');
      const controller = await runController(
        { repo: git.bare, branch: 'main', distPath: 'dist', namespace: 'virtops-system', leaderElect: false, intervalMs: 600_000, freshness: false, identity: 'bench', leaseDurationMs: 15_000 },
        log, { client: controllerClient },
      );
      stops.push(() => controller.stop());
      await until('warm-up VM Running', async () => (await countRunning(admin, 'bench')) === 1, 120_000);

      if (!skip.has('writes')) {
        const mark = [controllerClient.writes.length, agentClient.writes.length] as const;
        await push(git, vmsIn('bench', ['warmup', 'w1']), 'one VM');
        await controller.source.checkNow('manual');
        await until('w1 Running', async () => (await countRunning(admin, 'bench')) === 2, 120_000, 50);
        // Anything still in flight for w1: the agent's reports settle within its NIC wait (2 s).
        await sleep(4000);
        const ours = [...controllerClient.writes.slice(mark[0]), ...agentClient.writes.slice(mark[1])].filter((w) => w.name === 'w1' || w.name.startsWith('virt-launcher-w1-'));
        const by = (pred: (w: (typeof ours)[number]) => boolean) => ours.filter(pred).length;
        const events = [...controllerClient.writes.slice(mark[0])].filter((w) => w.resource === 'events').length;
        const apply = by((w) => w.verb === 'apply');
        const creates = by((w) => w.verb === 'create');
        const updates = by((w) => w.verb !== 'apply' && w.verb !== 'create');
        say('\n## API writes per VM, apply → Running (1 VM, test:///default)');
        for (const w of ours) say(`  ${w.verb.padEnd(12)} ${w.resource.padEnd(26)} ${w.name}`);
        say(`  server-side apply: ${apply}, creates (VMI, Pod): ${creates}, updates/patches: ${updates}, events: ${events} (not counted)`);
        say(`  updates/patches per VM: ${updates} (target ≤ 3; KubeVirt perf-scale ~8.5 → ratio ${(updates / 8.5).toFixed(2)})`);
        say(`  all writes incl. apply and creates: ${apply + creates + updates}`);
        json['writesPerVm'] = { serverSideApply: apply, creates, updatesAndPatches: updates, events, writes: ours.map((w) => `${w.verb} ${w.resource}`) };
      }

      if (!skip.has('scale')) {
        const names = Array.from({ length: N }, (_, i) => `s${i}`);
        await ns('scale');
        const t0 = Date.now();
        await push(git, vmsIn('scale', names), `${N} VMs`);
        await controller.source.checkNow('manual');
        await until(`${N} VMs Running`, async () => (await countRunning(admin, 'scale')) === N, 600_000, 250);
        const ms = Date.now() - t0;
        // Baseline: the API floor for the same objects, one client, no controller/agent.
        await ns('floor');
        const b0 = Date.now();
        await Promise.all(names.map(async (n) => {
          const vm = vmsIn('floor', [n])[0]!;
          await admin.create(vm as unknown as KubernetesObject);
          await admin.create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: n, namespace: 'floor' }, spec: vm.spec.template.spec } as unknown as KubernetesObject);
          await admin.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${n}`, namespace: 'floor' }, spec: { nodeName: 'none', containers: [{ name: 'c', image: 'x' }] } } as unknown as KubernetesObject);
          await admin.patchCustomStatus('virtualmachineinstances', 'floor', n, { phase: 'Running' });
          await admin.patchCustomStatus('virtualmachines', 'floor', n, { printableStatus: 'Running' });
        }));
        const floorMs = Date.now() - b0;
        say(`\n## ${N} VMs from one push → all Running (test:///default, pool runtime)`);
        say(`  virtops: ${(ms / 1000).toFixed(1)} s (target < 30 s); API floor (create VM+VMI+Pod, patch 2 statuses, no controller): ${(floorMs / 1000).toFixed(1)} s; ratio ${(ms / floorMs).toFixed(1)}`);
        say(`  controller writes total ${controllerClient.totalWrites}, agent writes total ${agentClient.totalWrites}`);
        json['scale'] = { vms: N, pushToAllRunningMs: ms, apiFloorMs: floorMs, ratio: ms / floorMs, controllerWrites: controllerClient.totalWrites, agentWrites: agentClient.totalWrites };
        // Clean up the scale namespace's VMs through git (prune) so their launchers stop.
        await push(git, vmsIn('bench', ['warmup']), 'scale down');
        await controller.source.checkNow('manual');
        await until('scale VMs pruned', async () => (await admin.list('kubevirt.io/v1', 'VirtualMachineInstance', { namespace: 'scale' })).items.length === 0, 300_000, 500);
      }
      for (const s of stops.splice(0).reverse()) await s();
      await stopPool(dir);
      // Its Node must not take the next phase's Pods.
      await admin.delete({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'bench-node' } });
    }

    // ---- 3: controller RSS -------------------------------------------------------------
    if (!skip.has('rss')) {
      await ns('rss-system');
      const rssGit = await gitFixture();
      try {
        await push(rssGit, vmsIn('rss', ['idle'], 'Halted'), 'idle');
        await ns('rss');
        // The probe (bench/mem-probe.cjs) reports on SIGUSR2 where the memory is; --expose-gc
        // only lets it collect once for the live-heap figure, after every RSS sample.
        const probeFile = join(dir, 'controller-mem.json');
        // Node/V8 flags go on the command line: NODE_OPTIONS refuses most V8 flags (--optimize-for-size).
        const nodeOptions = [`--require ${MEM_PROBE}`, '--expose-gc'].join(' ');
        const nodeFlags = CONTROLLER_NODE_OPTIONS.split(/\s+/).filter(Boolean);
        const proc: ResultPromise = execa(process.execPath, [...nodeFlags, CONTROLLER_BIN, 'controller', '--kubeconfig', cp.kubeconfigPath, '--repo', rssGit.bare, '--namespace', 'rss-system', '--interval', '10m', '--no-freshness-check'], { reject: false, env: { VIRTOPS_LOG_LEVEL: 'warn', VIRTOPS_MEM_PROBE: probeFile, ...withProbe(CONTROLLER_RUN_ENV, nodeOptions) } });
        await sleep(8000);
        const idle = await rssKb(proc.pid!);
        const names = Array.from({ length: M }, (_, i) => `r${i}`);
        const t0 = Date.now();
        await push(rssGit, vmsIn('rss', names), `${M} VMs`);
        const vmis = async () => (await admin.list('kubevirt.io/v1', 'VirtualMachineInstance', { namespace: 'rss' })).items.length;
        await until(`${M} VMIs`, async () => (await vmis()) === M, 900_000, 1000);
        const pods = async () => (await admin.list('v1', 'Pod', { namespace: 'rss' })).items.length;
        await until(`${M} launcher Pods`, async () => (await pods()) === M, 600_000, 1000);
        await sleep(5000);
        const samples: number[] = [];
        for (let i = 0; i < 5; i++) {
          samples.push(await rssKb(proc.pid!));
          await sleep(1000);
        }
        const loaded = Math.max(...samples);
        const low = Math.min(...samples);
        const convergedS = (Date.now() - t0) / 1000;
        const cpuAtLoaded = (await cpuTimes(proc.pid!)).own;
        await sleep(STEADY_WAIT_S * 1000);
        const steady = await rssKb(proc.pid!);
        const probe = await memProbe(proc.pid!, probeFile);
        say(`\n## controller RSS with ${M} VMs (${M} VMIs, ${M} Pending launcher Pods cached; converged in ${convergedS.toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
        say(`  idle (1 VM): ${mib(idle)} MiB; with ${M} VMs: ${mib(loaded)} MiB (max of 5 samples, 1 s apart; min ${mib(low)}; target ≤ 150 MiB at 1,000, ≤ 100 MiB at 100); ratio ${(loaded / idle).toFixed(2)}; ${STEADY_WAIT_S} s later ${mib(steady)} MiB`);
        say(`  CPU: ${cpuAtLoaded.toFixed(2)} s (user+system) from start to converged${CONTROLLER_NODE_OPTIONS ? `; node options: ${CONTROLLER_NODE_OPTIONS}` : ''}${Object.keys(CONTROLLER_ENV).length ? `; env: ${JSON.stringify(CONTROLLER_ENV)}` : ''}`);
        if (probe) say(formatProbe(probe));
        say(`  (the controller runs as \`node ${CONTROLLER_BIN === CLI_BIN ? 'cli/bin.js' : CONTROLLER_BIN} controller\`: ${process.env['VIRTOPS_NO_BUNDLE'] ? 'through tsx (VIRTOPS_NO_BUNDLE set)' : 'from the reconciler bundle; VIRTOPS_NO_BUNDLE=1 measures the tsx path'})`);
        json['controllerRss'] = {
          vms: M, idleMiB: Number(mib(idle)), loadedMaxMiB: Number(mib(loaded)), loadedMinMiB: Number(mib(low)), steadyMiB: Number(mib(steady)), steadyWaitS: STEADY_WAIT_S,
          cpuS: Number(cpuAtLoaded.toFixed(2)), convergedS: Number(convergedS.toFixed(1)), nodeOptions: CONTROLLER_NODE_OPTIONS, env: CONTROLLER_RUN_ENV, load: loadavg(), bundle: !process.env['VIRTOPS_NO_BUNDLE'],
          ...(probe ? { breakdown: probeSummary(probe) } : {}),
        };
        proc.kill('SIGTERM');
        await proc;
      } finally {
        await rssGit.cleanup();
      }
    }
    emitJson('cluster', { kubernetes: cp.kubernetesVersion, ...json });
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await cp.stop();
    await git.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
