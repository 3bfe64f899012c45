/**
 * Seeded fault injection in cluster mode (issue 9, part 4): a control plane of its own
 * (etcd, kube-apiserver, scheduler, controller-manager from reconciler/cluster/testenv), a
 * real git repository, `virtops controller` and `virtops agent --process-runtime` as real
 * processes, launchers on libvirt's test:///default driver (each launcher's connection holds
 * its domain, so another helper's libvirtd restart cannot disturb this test). A random
 * schedule (seed from $VIRTOPS_FAULT_SEED, else random; printed, and printed again with any
 * failure) interleaves push / start / stop / change / delete commits with faults: SIGKILL and
 * restart of the controller, the agent, kube-apiserver and etcd; SIGKILL of a launcher
 * process (launcher-monitor, the launcher in-process); an invalid commit. After each fault, once converged (bounded wait),
 * the invariants: every VM git says should run has one VMI (Running), one launcher Pod, one
 * launcher process (launcher-monitor) and one domain (asked of the launcher); nothing
 * (VMI, Pod, process, host dir, socket) belongs to no VM; a refused commit changed nothing
 * running. Figures: one JSON line and test/faults/.results/cluster.json (BENCHMARKS.md).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachine, VirtualMachineInstance } from '../../api/kubevirt.js';
import { callLauncher } from '../../launcher/server/client.js';
import { podKey } from '../../reconciler/agent/host-config.js';
import { CLI_BIN } from '../../reconciler/cluster/run.js';
import { binariesPresent, defaultBinDir, ensureBinaries, goAvailable, runningComponents, startControlPlane, type Component, type ControlPlane } from '../../reconciler/cluster/testenv/index.js';
import { bareVm, gitFixture, vmDocuments, type GitFixture } from '../integration/standalone/fixture.js';
import { launcherPids } from '../integration/standalone/harness.js';
import { commitVms, crdDocuments, deleteNode, deleteVmsAndWait, identities, listJson, stopLaunchersUnder, tempDir, type Env, type Identities } from '../integration/cluster/harness.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { buildSchedule, faultSeed, replayHint, type Step } from './lib/schedule.js';
import { FaultFigures, RESULTS_DIR, machineLine } from './lib/figures.js';

const FAULTS = ['controller-kill', 'agent-kill', 'apiserver-kill', 'etcd-kill', 'launcher-kill', 'bad-commit'] as const;
const OPS = ['push', 'start', 'stop', 'change', 'delete'] as const;
type Fault = (typeof FAULTS)[number];
type Op = (typeof OPS)[number];

const FILE = 'test/faults/cluster.test.ts';
const COUNT = Number(process.env.VIRTOPS_FAULT_COUNT ?? 52);
/**
 * How long the system may take to converge after one fault before it counts as a violation.
 * A launcher kill is a crash: its VM waits out CrashLoopBackOff, which the controller is told
 * to keep at 1 s doubling to 4 s (KubeVirt's 10 s doubling to 5 min while a VM has not run
 * 5 min would make repeated kills of one VM wait minutes; a run once went past 240 s).
 */
const CONVERGE_MS = 120_000;
const CONVERGE_AFTER_CRASH_MS = 120_000;
/** The VM names the schedule plays with; at most this many exist at once. */
const POOL = ['v0', 'v1', 'v2', 'v3', 'v4'];

const canRun = binariesPresent() || goAvailable();
if (!canRun && process.env.CI === 'true') throw new Error(`the cluster fault test must run in CI but cannot: Go is not installed and ${defaultBinDir()} holds no kube/etcd binaries`);

const suffix = randomBytes(3).toString('hex');
const NS = `vo-fault-${suffix}`;
const NODE = `vo-fnode-${suffix}`;

interface Desired {
  runStrategy: 'Always' | 'Halted';
  memoryMi: number;
}

/** What the running system looks like, as far as the invariants care. */
interface Snapshot {
  vms: Map<string, { printableStatus?: string }>;
  vmis: VirtualMachineInstance[];
  pods: V1Pod[];
  launchers: { pid: number; monitor: boolean; uid: string }[];
  podDirs: string[];
  sockets: string[];
}

describe.skipIf(!canRun)('cluster mode under a seeded storm of faults', () => {
  let cp: ControlPlane;
  let cpDir: Awaited<ReturnType<typeof tempDir>>;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let stateDir: string;
  let ids: Identities;
  let git: GitFixture;
  let controller: ResultPromise | undefined;
  let agent: ResultPromise | undefined;
  let incarnation = 0;
  const trail: string[] = [];
  const seed = faultSeed();
  const desired = new Map<string, Desired>();
  /** How often and when each VM's launcher was last killed (see inject). */
  const lastKill = new Map<string, { count: number; at: number }>();

  const note = (line: string) => {
    trail.push(`${new Date().toISOString()} ${line}`);
    if (process.env.VIRTOPS_FAULT_VERBOSE) console.log(line);
  };
  const logFile = (who: string) => join(work.dir, `${who}.log`);

  function startControllerProcess(): void {
    incarnation++;
    const file = logFile('controller');
    appendFileSync(file, `--- incarnation ${incarnation}\n`);
    controller = execa(process.execPath, [CLI_BIN, 'controller', '--kubeconfig', ids.controller.kubeconfigPath, '--repo', git.bare, '--namespace', NS, '--interval', '2s', '--cache-dir', join(work.dir, 'controller-cache'), '--identity', `c${incarnation}`, '--crash-loop-backoff', '1s', '--crash-loop-backoff-max', '4s'], {
      reject: false, stdout: { file, append: true }, stderr: { file, append: true }, env: { VIRTOPS_LOG_LEVEL: 'info' },
    });
  }

  function startAgentProcess(): void {
    const file = logFile('agent');
    agent = execa(process.execPath, [CLI_BIN, 'agent', '--node', NODE, '--kubeconfig', ids.agent.kubeconfigPath, '--process-runtime', '--state-dir', stateDir, '--emulation', 'tcg', '--libvirt-uri', 'test:///default', '--interval', '2s'], {
      reject: false, stdout: { file, append: true }, stderr: { file, append: true }, env: { VIRTOPS_LOG_LEVEL: 'info' },
    });
  }

  async function kill(p: ResultPromise | undefined): Promise<void> {
    if (!p || p.exitCode !== null) return;
    p.kill('SIGKILL');
    await p;
  }

  // ---- git ------------------------------------------------------------------------------------

  function manifests(state: Map<string, Desired>): VirtualMachine[] {
    return [...state].sort(([a], [b]) => a.localeCompare(b)).map(([name, d]) => {
      const v = bareVm(name, { runStrategy: d.runStrategy, memory: `${d.memoryMi}Mi` });
      v.metadata.namespace = NS;
      return v;
    });
  }

  const pushDesired = (message: string) => commitVms(git, manifests(desired), message);

  /** A lifecycle operation on the desired state (and a push of it). */
  async function applyOp(op: Op, pick: number): Promise<void> {
    const present = [...desired.keys()];
    const absent = POOL.filter((n) => !desired.has(n));
    const of = <T>(list: T[]) => list[pick % list.length];
    switch (op) {
      case 'push': {
        const name = of(absent);
        if (!name) return;
        desired.set(name, { runStrategy: 'Always', memoryMi: 64 });
        break;
      }
      case 'start': {
        const name = of(present.filter((n) => desired.get(n)!.runStrategy === 'Halted'));
        if (!name) return;
        desired.get(name)!.runStrategy = 'Always';
        break;
      }
      case 'stop': {
        const name = of(present.filter((n) => desired.get(n)!.runStrategy === 'Always'));
        if (!name) return;
        desired.get(name)!.runStrategy = 'Halted';
        break;
      }
      case 'change': {
        const name = of(present);
        if (!name) return;
        desired.get(name)!.memoryMi += 16;
        break;
      }
      case 'delete': {
        const name = of(present);
        if (!name) return;
        desired.delete(name);
        break;
      }
    }
    note(`op ${op}: ${JSON.stringify(Object.fromEntries(desired))}`);
    await pushDesired(`op ${op}`);
  }

  // ---- observing ------------------------------------------------------------------------------

  async function socketsUnder(dir: string): Promise<string[]> {
    return (await execa('find', [dir, '-type', 's'], { reject: false })).stdout.split('\n').filter(Boolean);
  }

  async function snapshot(): Promise<Snapshot> {
    const [vms, vmis, pods, launchers, podDirs, sockets] = await Promise.all([
      listJson<VirtualMachine>(ids.admin, 'kubevirt.io/v1', 'VirtualMachine', NS),
      listJson<VirtualMachineInstance>(ids.admin, 'kubevirt.io/v1', 'VirtualMachineInstance', NS),
      listJson<V1Pod>(ids.admin, 'v1', 'Pod', NS, 'kubevirt.io=virt-launcher'),
      launcherPids(`${stateDir}/`),
      readdir(join(stateDir, 'pods')).catch(() => [] as string[]),
      socketsUnder(stateDir),
    ]);
    return { vms: new Map(vms.map((v) => [v.metadata.name!, { printableStatus: v.status?.printableStatus }])), vmis, pods, launchers, podDirs, sockets };
  }

  /** Every invariant that does not hold in `s` (empty: converged and clean). */
  async function broken(s: Snapshot): Promise<string[]> {
    const out: string[] = [];
    const uids = new Set(s.vmis.map((v) => v.metadata.uid!));
    const running = [...desired].filter(([, d]) => d.runStrategy === 'Always').map(([n]) => n);
    for (const [name, d] of desired) {
      const want = d.runStrategy === 'Always' ? 'Running' : 'Stopped';
      const got = s.vms.get(name)?.printableStatus;
      if (got !== want) out.push(`VM ${name}: printableStatus ${got ?? '(no VM)'}, git wants ${want}`);
    }
    for (const name of s.vms.keys()) if (!desired.has(name)) out.push(`VM ${name} exists but git no longer has it`);
    for (const name of running) {
      const vmis = s.vmis.filter((v) => v.metadata.name === name);
      if (vmis.length !== 1 || vmis[0]!.status?.phase !== 'Running' || vmis[0]!.metadata.deletionTimestamp) {
        out.push(`VM ${name}: ${vmis.length} VMI(s), phase ${vmis.map((v) => `${v.status?.phase}${v.metadata.deletionTimestamp ? ' (terminating)' : ''}`).join(',') || '-'}; want one Running`);
        continue;
      }
      const uid = vmis[0]!.metadata.uid!;
      const pods = s.pods.filter((p) => p.metadata?.labels?.['kubevirt.io/created-by'] === uid);
      if (pods.length !== 1 || pods[0]!.status?.phase !== 'Running') out.push(`VM ${name}: ${pods.length} launcher Pod(s) for VMI ${uid} (${pods.map((p) => p.status?.phase).join(',')}); want one Running`);
      const procs = s.launchers.filter((l) => l.uid === uid);
      // One process per VM: `launcher-monitor` runs the launcher in-process.
      if (procs.filter((l) => l.monitor).length !== 1 || procs.filter((l) => !l.monitor).length !== 0) {
        out.push(`VM ${name}: ${procs.filter((l) => l.monitor).length} launcher-monitor process(es) and ${procs.filter((l) => !l.monitor).length} separate launcher(s) for VMI ${uid}; want one and none`);
        continue;
      }
      const dir = podKey(NS, uid.replace(/[^a-z0-9]/g, '').slice(0, 12));
      const sock = s.sockets.find((x) => x.startsWith(join(stateDir, 'pods', dir) + '/') && x.endsWith('/launcher-sock'));
      if (!sock) {
        out.push(`VM ${name}: no launcher socket under pods/${dir}`);
        continue;
      }
      const info = await callLauncher<{ domain?: string; state?: string; vmi?: { uid?: string } }>(sock, 'GET', '/v1/info', undefined, 5000).catch((err: unknown) => ({ status: 0, body: { error: String(err) } as Record<string, unknown> }));
      const b = info.body as { domain?: string; state?: string; vmi?: { uid?: string } };
      if (b.domain !== `${NS}_${name}` || b.state !== 'Running' || b.vmi?.uid !== uid) out.push(`VM ${name}: its launcher reports ${JSON.stringify(info.body)}; want domain ${NS}_${name} Running for ${uid}`);
    }
    // Nothing belongs to no VM.
    for (const v of s.vmis) if (!running.includes(v.metadata.name!)) out.push(`VMI ${v.metadata.name} (${v.metadata.uid}) belongs to no running VM of git`);
    for (const p of s.pods) if (!uids.has(p.metadata?.labels?.['kubevirt.io/created-by'] ?? '')) out.push(`launcher Pod ${p.metadata?.name} belongs to no VMI`);
    for (const l of s.launchers) if (!uids.has(l.uid)) out.push(`launcher ${l.monitor ? 'monitor ' : ''}pid ${l.pid} (VMI ${l.uid}) belongs to no VMI`);
    const dirs = new Set(s.pods.map((p) => podKey(NS, (p.metadata?.labels?.['kubevirt.io/created-by'] ?? '').replace(/[^a-z0-9]/g, '').slice(0, 12))));
    for (const d of s.podDirs) if (!dirs.has(d)) out.push(`host dir pods/${d} belongs to no launcher Pod`);
    for (const x of s.sockets) if (![...dirs].some((d) => x.startsWith(join(stateDir, 'pods', d) + '/'))) out.push(`socket ${x} belongs to no launcher Pod`);
    // The control plane itself is whole again (a component that died with another is a finding).
    const up = runningComponents(cp.dir);
    for (const c of ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'] as Component[]) if (!up.includes(c)) out.push(`control plane component ${c} is not running`);
    if (controller?.exitCode !== null) out.push(`virtops controller exited (${controller?.exitCode})`);
    if (agent?.exitCode !== null) out.push(`virtops agent exited (${agent?.exitCode})`);
    return out;
  }

  /** Polls until every invariant holds; returns how long that took, or the last problems. */
  async function converge(timeoutMs = CONVERGE_MS): Promise<{ ok: true; ms: number } | { ok: false; problems: string[] }> {
    const t0 = Date.now();
    let last: string[] = [];
    while (Date.now() - t0 < timeoutMs) {
      last = await snapshot().then(broken).catch((err: unknown) => [`observing failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`]);
      if (last.length === 0) return { ok: true, ms: Date.now() - t0 };
      await sleep(250);
    }
    return { ok: false, problems: last };
  }

  // ---- faults ---------------------------------------------------------------------------------

  /**
   * At least `n` VMs running before a launcher is killed, so kills spread over VMs (each kill
   * puts its VM into CrashLoopBackOff, which doubles while kills of one VM come within 5 min).
   */
  async function ensureRunningVms(n: number): Promise<void> {
    const running = () => [...desired.values()].filter((d) => d.runStrategy === 'Always').length;
    if (running() >= n) return;
    while (running() < n) await applyOp([...desired.values()].some((d) => d.runStrategy === 'Halted') ? 'start' : 'push', 0);
    const r = await converge();
    if (!r.ok) throw new Error(`the VMs to inject a launcher fault into never reached Running: ${r.problems.join('; ')}`);
  }

  /**
   * SIGKILL and restart on the same port. The ports are in the ephemeral range: while the
   * server is down, a client retrying against it can be handed that very port for its own
   * end (a loopback self-connect), and the restart fails with EADDRINUSE until that client
   * lets go. That is the test environment's, not virtops': retry the start, and count it.
   */
  async function restartComponent(c: Component, figures: FaultFigures): Promise<void> {
    await cp.stopComponent(c, { signal: 'SIGKILL' });
    for (let attempt = 1; ; attempt++) {
      try {
        await cp.startComponent(c);
        return;
      } catch (err) {
        if (attempt >= 10 || !/address already in use/.test(String(err))) throw err;
        figures.extra['portInUseRetries'] = ((figures.extra['portInUseRetries'] as number | undefined) ?? 0) + 1;
        note(`${c} restart: port in use (attempt ${attempt}); retrying`);
        await sleep(2000);
      }
    }
  }

  /** Injects one fault; for a bad commit, also checks that it changed nothing running. */
  async function inject(step: Step<Fault, Op>, figures: FaultFigures): Promise<string[]> {
    switch (step.fault) {
      case 'controller-kill':
        await kill(controller);
        startControllerProcess();
        return [];
      case 'agent-kill':
        await kill(agent);
        startAgentProcess();
        return [];
      case 'apiserver-kill':
        await restartComponent('kube-apiserver', figures);
        return [];
      case 'etcd-kill':
        await restartComponent('etcd', figures);
        return [];
      case 'launcher-kill': {
        await ensureRunningVms(4);
        // The one process per VM (`launcher-monitor`, the launcher in-process).
        const monitor = true;
        // Each kill of a VM's launcher is a crash: its next start waits out CrashLoopBackOff
        // (10 s, doubling while the VM has not run 5 min), so spread the kills: the VM killed
        // least often first, then the one killed longest ago.
        let s = await snapshot();
        const has = (x: Snapshot) => x.launchers.some((l) => l.monitor === monitor && x.vmis.some((v) => v.metadata.uid === l.uid));
        // The pushes just made may not have started any launcher yet: then wait for them.
        if (!has(s) && (await converge()).ok) s = await snapshot();
        const vmOf = new Map(s.vmis.map((v) => [v.metadata.uid!, v.metadata.name!]));
        const rank = (l: { uid: string }) => {
          const k = lastKill.get(vmOf.get(l.uid)!);
          return [k?.count ?? 0, k?.at ?? 0] as const;
        };
        const candidates = s.launchers.filter((l) => l.monitor === monitor && vmOf.has(l.uid))
          .sort((a, b) => rank(a)[0] - rank(b)[0] || rank(a)[1] - rank(b)[1] || a.pid - b.pid);
        const first = candidates[0] ? rank(candidates[0]) : undefined;
        const best = candidates.filter((c) => rank(c)[0] === first?.[0] && rank(c)[1] === first?.[1]);
        const victim = best[step.pick % Math.max(1, best.length)];
        if (!victim) return [`no ${monitor ? 'launcher monitor' : 'launcher'} process to kill although a VM should be running`];
        const vm = vmOf.get(victim.uid)!;
        lastKill.set(vm, { count: (lastKill.get(vm)?.count ?? 0) + 1, at: Date.now() });
        note(`SIGKILL ${monitor ? 'monitor' : 'launcher'} pid ${victim.pid} of VM ${vmOf.get(victim.uid)} (VMI ${victim.uid})`);
        try {
          process.kill(victim.pid, 'SIGKILL');
        } catch (err) {
          // It exited between the snapshot and the kill (its VM was restarting): no fault landed.
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
          note(`pid ${victim.pid} had already exited`);
        }
        return [];
      }
      case 'bad-commit': {
        // From a converged state, so "changed nothing" has a baseline.
        const before = await converge();
        if (!before.ok) return [`not converged before the bad commit: ${before.problems.join('; ')}`];
        const base = await snapshot();
        const bad = badCommit(step.pick);
        note(`bad commit (${bad.kind})`);
        const sha = await git.commitDist(bad.files, `bad: ${bad.kind}`);
        const refused = await waitFor('the controller to refuse the bad commit', async () => (await readFile(logFile('controller'), 'utf8')).includes(`commit ${sha.slice(0, 12)} refused`), 60_000).then(() => true, () => false);
        const problems: string[] = [];
        if (!refused) problems.push(`bad commit ${sha.slice(0, 12)} (${bad.kind}) was never refused`);
        // Give a wrongly accepted commit time to act before comparing.
        await sleep(2000);
        const after = await snapshot();
        const key = (s: Snapshot) => JSON.stringify({
          vmis: s.vmis.map((v) => v.metadata.uid).sort(),
          pods: s.pods.map((p) => p.metadata?.uid).sort(),
          launchers: s.launchers.map((l) => l.pid).sort((a, b) => a - b),
          vms: [...s.vms].map(([n, v]) => `${n}:${v.printableStatus}`).sort(),
        });
        if (key(after) !== key(base)) problems.push(`the refused commit (${bad.kind}) changed what runs: before ${key(base)} after ${key(after)}`);
        figures.extra[`badCommit:${bad.kind}`] = ((figures.extra[`badCommit:${bad.kind}`] as number | undefined) ?? 0) + 1;
        // Git moves on: the last good state again, as a new commit.
        await pushDesired('after the bad commit');
        return problems;
      }
    }
  }

  /**
   * An invalid commit that would also change what runs if it were applied: every running VM
   * halted and one VM more, plus one of several defects.
   */
  function badCommit(pick: number): { kind: string; files: Record<string, string> } {
    const halted = new Map([...desired].map(([n, d]) => [n, { ...d, runStrategy: 'Halted' as const }]));
    const files: Record<string, string> = { 'crds.k8s.yaml': crdDocuments() };
    for (const v of manifests(halted)) files[`${v.metadata.name}.k8s.yaml`] = vmDocuments(v);
    const extra = bareVm('intruder');
    extra.metadata.namespace = NS;
    files['intruder.k8s.yaml'] = vmDocuments(extra);
    const kinds = ['schema', 'yaml', 'duplicate'] as const;
    const kind = kinds[pick % kinds.length]!;
    if (kind === 'schema') files['broken.k8s.yaml'] = `apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: broken\n  namespace: ${NS}\nspec:\n  runStrategy: Sometimes\n  template:\n    spec:\n      domain:\n        devices: {}\n`;
    if (kind === 'yaml') files['broken.k8s.yaml'] = 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: [unclosed\n';
    if (kind === 'duplicate') files['intruder-again.k8s.yaml'] = vmDocuments(extra);
    return { kind, files };
  }

  // ---- setup and teardown ---------------------------------------------------------------------

  beforeAll(async () => {
    await ensureBinaries({ onProgress: (line) => process.stderr.write(`${line}\n`) });
    cpDir = await tempDir('vo-fault-cp-');
    cp = await startControlPlane({ dir: cpDir.dir });
    work = await tempDir('vo-fault-');
    // Short: launcher sockets live under it.
    stateDir = join(work.dir, 's');
    mkdirSync(stateDir);
    ids = await identities(cp as Env, NS);
    git = await gitFixture();
    for (const n of POOL.slice(0, 3)) desired.set(n, { runStrategy: 'Always', memoryMi: 64 });
    await pushDesired('initial VMs');
    startAgentProcess();
    startControllerProcess();
  }, 300_000);

  afterAll(async () => {
    if (ids) await deleteVmsAndWait(ids.admin, NS);
    await kill(controller);
    await kill(agent);
    if (stateDir) await stopLaunchersUnder(stateDir);
    if (ids) await deleteNode(ids.admin, NODE);
    await cp?.stop();
    await cpDir?.cleanup();
    await git?.cleanup();
    if (work) await rm(work.dir, { recursive: true, force: true });
  }, 180_000);

  it(`survives ${COUNT} seeded faults with every invariant holding after each`, async () => {
    const figures = new FaultFigures('cluster', seed);
    const schedule = buildSchedule<Fault, Op>(seed, { faults: FAULTS, ops: OPS, count: COUNT, minPerFault: Math.max(1, Math.min(5, Math.floor(COUNT / FAULTS.length))), opsPerStep: [0, 2], weights: { 'controller-kill': 2, 'agent-kill': 2, 'apiserver-kill': 2, 'etcd-kill': 2, 'bad-commit': 2, 'launcher-kill': 2 } });
    const failLines: string[] = [];
    const fail = async (what: string) => {
      const tail = async (who: string) => (await readFile(logFile(who), 'utf8').catch(() => '')).trim().split('\n').slice(-40).join('\n');
      failLines.push(what);
      // The whole logs, not only their tails (the temp dir goes in afterAll).
      mkdirSync(RESULTS_DIR, { recursive: true });
      for (const who of ['controller', 'agent']) cpSync(logFile(who), join(RESULTS_DIR, `cluster-${seed}-${who}.log`), { force: true });
      cpSync(join(cp.dir, 'logs'), join(RESULTS_DIR, `cluster-${seed}-control-plane`), { recursive: true, force: true });
      process.stderr.write(`\n${what}\nseed ${seed}: ${replayHint(seed, FILE)}\n----- steps -----\n${trail.slice(-30).join('\n')}\n----- controller log (last 40) -----\n${await tail('controller')}\n----- agent log (last 40) -----\n${await tail('agent')}\n`);
    };

    const first = await converge(180_000);
    if (!first.ok) {
      await fail(`the initial VMs never converged: ${first.problems.join('; ')}`);
      throw new Error(`${failLines[0]} (seed ${seed}; ${replayHint(seed, FILE)})`);
    }
    note(`initial state converged in ${first.ms} ms`);

    for (const step of schedule) {
      for (const o of step.ops) await applyOp(o.op, o.pick);
      // The fault lands while those pushes are being worked on (0–2 s later).
      if (step.ops.length) await sleep(step.pick % 2000);
      note(`step ${step.index}: ${step.fault}`);
      figures.injected(step.fault);
      const t0 = Date.now();
      const problems = await inject(step, figures).catch((err: unknown) => [`injecting ${step.fault} failed: ${(err instanceof Error ? err.message : String(err)).slice(-600)}`]);
      for (const p of problems) figures.violation({ step: step.index, fault: step.fault, invariant: step.fault === 'bad-commit' ? 'refused commit changes nothing' : 'fault injected', detail: p });
      const r = await converge(step.fault === 'launcher-kill' ? CONVERGE_AFTER_CRASH_MS : CONVERGE_MS);
      if (r.ok) {
        figures.converged(step.fault, Date.now() - t0);
        note(`step ${step.index}: converged ${Date.now() - t0} ms after ${step.fault}`);
      } else {
        figures.timedOut();
        for (const p of r.problems) figures.violation({ step: step.index, fault: step.fault, invariant: 'converged within bound', detail: p });
      }
      if (problems.length || !r.ok) {
        await fail(`step ${step.index} (${step.fault}): ${[...problems, ...(r.ok ? [] : r.problems)].join('; ')}`);
        // One unconverged system makes every later step time out too: stop here.
        if (!r.ok) break;
      }
    }

    const summary = await figures.write(await machineLine());
    expect(summary.violations, `${failLines.join('\n')}\nseed ${seed}: ${replayHint(seed, FILE)}`).toBe(0);
    expect(summary.faultsInjected).toBeGreaterThanOrEqual(Math.min(COUNT, 50));
  });
});
