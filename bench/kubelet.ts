/**
 * Launcher Pods under a real kubelet vs the process-runtime agent (issue 10), one run, one
 * control plane (reconciler/cluster/testenv), real git, the test guest (TCG) on both.
 *
 *   npm run bench:kubelet -- [--vms 20] [--json]
 *
 * 1. push → Running for N VMs (default 20) pinned to the kubelet node (launcher Pods with
 *    their own libvirt daemon, run by kubelet + containerd, the agent beside the kubelet) and
 *    then the same N pinned to a process-runtime node (`virtops agent --process-runtime`:
 *    launchers as host processes against the host's libvirtd). Each set is pushed in one
 *    commit; the clock stops when every VM of the set shows printableStatus Running; the set
 *    is removed before the next. Ratio = kubelet / process-runtime.
 * 2. Per-VM overhead of one launcher Pod on the kubelet node (measured while the N VMs run,
 *    after the guest's READY marker): summed RSS and PSS (smaps_rollup) of every process in
 *    the Pod's memory cgroup, and the Pod cgroup's memory usage (v1 memory.usage_in_bytes,
 *    and without page cache), each minus guest memory; beside the overhead synth puts in the
 *    Pod (virtops.io/memory-overhead) and KubeVirt's (the seed: a 4 GiB guest requests
 *    4261567892 bytes, i.e. ~249 MiB over the guest).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import YAML from 'yaml';
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachine } from '../api/kubevirt.js';
import { runAgent, runController, type AgentHandle, type ControllerHandle } from '../reconciler/cluster/run.js';
import { HttpKubeClient, loadKubeConfig } from '../reconciler/cluster/kube.js';
import { ANNOTATION_MEMORY_OVERHEAD, renderLauncherPod } from '../synth/launcher-pod.js';
import { parseQuantity } from '../synth/quantity.js';
import { cgroupOf, inPod, pidsWhere, startKubeletEnv, type KubeletEnv } from '../test/helpers/kubelet.js';
import { GUEST_MARKERS } from '../test/helpers/test-guest.js';
import { crdDocuments, listJson } from '../test/integration/cluster/harness.js';
import { gitFixture, testGuestVm, type GitFixture } from '../test/integration/standalone/fixture.js';
import { emitJson, say } from './report.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const N = Number(arg('vms', '20'));
if (!Number.isInteger(N) || N < 1) throw new Error(`--vms "${arg('vms', '20')}" is not a positive whole number: pass e.g. --vms 20`);
const NS = 'bench-kubelet';
const PR_NODE = 'bench-process-runtime';
// The seed's `memory: 4G` is decimal (4e9 bytes): 4261567892 − 4e9 = 261567892 bytes ≈ 249.4 MiB.
const KUBEVIRT_SEED = { guestBytes: 4e9, requestBytes: 4261567892 };
// Logs to stderr: under --json stdout holds only the figures' line.
const log = pino({ level: process.env['VIRTOPS_BENCH_LOG'] ?? 'warn' }, pino.destination(2));
const MiB = 2 ** 20;
const mib = (b: number) => Math.round((b / MiB) * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => ((last = err), undefined));
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** N test-guest VMs pinned to `node`, with launcher Pod templates for its kind. */
function vmSet(env: KubeletEnv, prefix: string, node: string, kubelet: boolean): string {
  const docs: object[] = [];
  for (let i = 0; i < N; i++) {
    const vm: VirtualMachine = testGuestVm({ image: `${env.podRegistry}/virtops/test-guest:latest`, name: `${prefix}-${i}` });
    vm.metadata.namespace = NS;
    vm.spec.template.spec.nodeSelector = { 'kubernetes.io/hostname': node };
    const template = renderLauncherPod(vm, { launcherImage: env.launcherImage, emulation: 'tcg', ...(kubelet ? { libvirtDaemon: 'pod' as const, nodeSocketDir: join(env.dir, 'launchers') } : {}) });
    if (kubelet) template.spec.containers[0]!.args!.push('--insecure-registry', env.podRegistry);
    docs.push(vm, template);
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

/** RSS and PSS (kB in /proc → bytes) of a process. */
function memOf(pid: number): { rss: number; pss: number } {
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(roll)?.[1] ?? 0) * 1024;
  return { rss: kb('Rss'), pss: kb('Pss') };
}

/** The Pod-level v1 memory cgroup of a process in it: usage and usage minus page cache. */
function podCgroupMemory(pid: number, podUid: string): { usage: number; rssOnly: number } | undefined {
  const path = cgroupOf(pid, 'memory');
  const i = path?.indexOf(`pod${podUid}`) ?? -1;
  if (!path || i < 0) return undefined;
  const dir = join('/sys/fs/cgroup/memory', path.slice(0, i + `pod${podUid}`.length));
  if (!existsSync(join(dir, 'memory.usage_in_bytes'))) return undefined;
  const usage = Number(readFileSync(join(dir, 'memory.usage_in_bytes'), 'utf8').trim());
  const stat = readFileSync(join(dir, 'memory.stat'), 'utf8');
  const cache = Number(/^total_cache (\d+)/m.exec(stat)?.[1] ?? 0);
  return { usage, rssOnly: usage - cache };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:kubelet needs root (a kubelet node, libvirt qemu:///system)');
  const env = await startKubeletEnv({ prefix: 'virtops-bk-', progress: (l) => say(`[setup] ${l}`) });
  let git: GitFixture | undefined;
  let controller: ControllerHandle | undefined;
  const agents: AgentHandle[] = [];
  const admin = new HttpKubeClient(loadKubeConfig(env.cp.kubeconfigPath));
  const vms = () => listJson<VirtualMachine>(admin, 'kubevirt.io/v1', 'VirtualMachine', NS);
  const pods = () => listJson<V1Pod>(admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher');
  try {
    git = await gitFixture();
    await admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    agents.push(await runAgent(
      { node: env.node.name, processRuntime: false, stateDir: join(env.dir, 'agent'), emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [], intervalMs: 5000, launcherSocketDir: join(env.dir, 'launchers') },
      log.child({ c: 'kubelet-agent' }), { client: admin },
    ));
    agents.push(await runAgent(
      { node: PR_NODE, processRuntime: true, stateDir: join(env.dir, 'pr'), emulation: 'tcg', libvirtUri: 'qemu:///system', insecureRegistries: [env.podRegistry], intervalMs: 5000 },
      log.child({ c: 'process-agent' }), { client: admin },
    ));
    controller = await runController(
      { repo: git.bare, branch: 'main', distPath: 'dist', namespace: NS, leaderElect: false, intervalMs: 2000, freshness: false, identity: 'bench', leaseDurationMs: 15_000 },
      log.child({ c: 'controller' }), { client: admin },
    );
    await git.commitDist({ 'crds.k8s.yaml': crdDocuments() }, 'CRDs');
    await until('the VM CRD served', async () => ((await vms()) ? true : undefined), 60_000);

    const runSet = async (label: string, prefix: string, node: string, kubelet: boolean, measure?: () => Promise<void>): Promise<number> => {
      say(`[${label}] pushing ${N} VMs to node ${node}`);
      const t0 = performance.now();
      await git!.commitDist({ 'crds.k8s.yaml': crdDocuments(), 'vms.k8s.yaml': vmSet(env, prefix, node, kubelet) }, `${N} VMs on ${node}`);
      let lastCount = -1;
      await until(`${label}: ${N} VMs Running`, async () => {
        const running = (await vms()).filter((v) => v.metadata.name?.startsWith(`${prefix}-`) && v.status?.printableStatus === 'Running').length;
        if (running !== lastCount) say(`[${label}] ${running}/${N} Running at ${Math.round((performance.now() - t0) / 1000)} s`);
        lastCount = running;
        return running === N ? true : undefined;
      }, 30 * 60_000, 1000);
      const ms = performance.now() - t0;
      say(`[${label}] push → ${N} Running: ${Math.round(ms)} ms`);
      await measure?.();
      await git!.commitDist({ 'crds.k8s.yaml': crdDocuments() }, `the ${label} VMs leave`);
      await until(`${label}: VMs and launcher Pods gone`, async () => ((await vms()).length === 0 && (await pods()).length === 0 ? true : undefined), 10 * 60_000, 1000);
      return ms;
    };

    let overhead: Record<string, unknown> = {};
    const measurePod = async (): Promise<void> => {
      const pod = (await pods()).find((p) => p.spec?.nodeName === env.node.name && p.status?.phase === 'Running')!;
      const podUid = pod.metadata!.uid!;
      const vmName = pod.metadata!.labels!['vm.kubevirt.io/name']!;
      const serial = join(env.node.dir, 'kubelet', 'pods', podUid, 'volumes', 'kubernetes.io~empty-dir', 'public', 'logs', `${NS}_${vmName}-serial0.log`);
      await until(`${vmName}: the guest READY marker`, async () => (existsSync(serial) && readFileSync(serial, 'utf8').includes(GUEST_MARKERS.ready) ? true : undefined), 15 * 60_000, 2000);
      const pids = pidsWhere((_c, pid) => inPod(pid, podUid));
      const per = pids.map((pid) => ({ pid, cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2).join(' ').slice(0, 60), ...memOf(pid) }));
      const rss = per.reduce((s, p) => s + p.rss, 0);
      const pss = per.reduce((s, p) => s + p.pss, 0);
      const cg = podCgroupMemory(pids[0]!, podUid);
      const vm = (await vms()).find((v) => v.metadata.name === vmName)!;
      const guest = parseQuantity(vm.spec.template.spec.domain.memory?.guest ?? '0');
      const synth = JSON.parse(pod.metadata?.annotations?.[ANNOTATION_MEMORY_OVERHEAD] ?? '{}') as { total?: string };
      const synthBytes = synth.total ? parseQuantity(synth.total) : undefined;
      const kubevirtBytes = KUBEVIRT_SEED.requestBytes - KUBEVIRT_SEED.guestBytes;
      overhead = {
        pod: pod.metadata?.name, processes: per.map((p) => ({ cmd: p.cmd, rssMiB: mib(p.rss), pssMiB: mib(p.pss) })),
        guestMiB: mib(guest), rssMiB: mib(rss), pssMiB: mib(pss),
        rssOverheadMiB: mib(rss - guest), pssOverheadMiB: mib(pss - guest),
        ...(cg ? { cgroupUsageMiB: mib(cg.usage), cgroupUsageOverheadMiB: mib(cg.usage - guest), cgroupNoCacheOverheadMiB: mib(cg.rssOnly - guest) } : {}),
        ...(synthBytes !== undefined ? { synthOverheadMiB: mib(synthBytes) } : {}),
        kubevirtSeedOverheadMiB: mib(kubevirtBytes),
      };
      for (const p of per) say(`[overhead] ${p.cmd.padEnd(60)} rss ${mib(p.rss)} MiB pss ${mib(p.pss)} MiB`);
      say(`[overhead] guest ${mib(guest)} MiB; summed RSS ${mib(rss)} (−guest ${mib(rss - guest)}), PSS ${mib(pss)} (−guest ${mib(pss - guest)})${cg ? `, Pod cgroup ${mib(cg.usage)} (−guest ${mib(cg.usage - guest)}; without page cache −guest ${mib(cg.rssOnly - guest)})` : ''} MiB; synth's overhead ${synthBytes !== undefined ? mib(synthBytes) : '?'} MiB; KubeVirt's (seed, 4 GiB guest) ${mib(kubevirtBytes)} MiB`);
    };

    const kubeletMs = await runSet('kubelet', 'bk', env.node.name, true, measurePod);
    const processMs = await runSet('process-runtime', 'bp', PR_NODE, false);
    const ratio = Math.round((kubeletMs / processMs) * 100) / 100;
    say(`push → ${N} Running: kubelet node ${Math.round(kubeletMs)} ms, process-runtime node ${Math.round(processMs)} ms, ratio ${ratio}`);
    emitJson('kubelet', { vms: N, kubeletMs: Math.round(kubeletMs), processRuntimeMs: Math.round(processMs), ratio, overhead });
  } finally {
    await controller?.stop().catch(() => undefined);
    for (const a of agents) await a.stop().catch(() => undefined);
    await env.stop();
    await git?.cleanup();
  }
}

await main();
process.exit(0);
