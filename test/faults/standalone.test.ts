/**
 * Seeded fault injection, single host (issue 9, part 4). A real `virtops up` on
 * qemu:///system (TCG) follows a real git repository; its state dir is a small loop-mounted
 * ext4 filesystem. A schedule drawn from one seed ($VIRTOPS_FAULT_SEED, else random; printed)
 * interleaves push / start / stop / change / delete sequences with faults: SIGKILL of `up`
 * (restarted on the same state dir), of a launcher process (launcher-monitor), a QEMU; libvirtd and
 * virtlogd restarts; invalid and duplicate-name commits; the state dir's filesystem full.
 * After each fault, once converged (bounded), the invariants (lib/invariants.ts): every VM git
 * says should run has exactly one domain, one launcher process and one instance record; nothing
 * belongs to no VM; persistent disks survive; a refused commit touches nothing running.
 * Figures: one JSON line and test/faults/.results/standalone.json (BENCHMARKS.md).
 *
 * One real test guest (kernel boot from the local registry, cloud-init ISO, a PVC) and
 * "blank" VMs (QEMU with an emptyDisk and a cloud-init ISO but nothing to boot: it idles in
 * firmware) keep it real and within the time budget on 2 cores.
 */
import { mkdir, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../../reconciler/agent/process-runtime.js';
import { apiCall } from '../../reconciler/standalone/client.js';
import type { VmList } from '../../reconciler/standalone/format.js';
import { type LocalRegistry, pushTestGuestImages, startRegistry } from '../helpers/registry.js';
import { sleep } from '../helpers/wait.js';
import { gitFixture, type GitFixture } from '../integration/standalone/fixture.js';
import { launcherPids, startUp, type UpProcess } from '../integration/standalone/harness.js';
import { FaultFigures, machineLine, RESULTS_DIR } from './lib/figures.js';
import { createLoopFs, ensureDaemons, qemuProcesses, removeDomains, restartDaemon, type LoopFs } from './lib/host.js';
import { checkInvariants, runningSnapshot, snapshotChanges, type DiskLedger } from './lib/invariants.js';
import { buildSchedule, faultSeed, replayHint, type Step } from './lib/schedule.js';
import { distFiles, expected, manifest, NAMESPACE, observe, persistentDiskPaths, pvcPath, type VmModel } from './lib/standalone-world.js';

const FILE = 'test/faults/standalone.test.ts';

/** A signal to a process that may have exited meanwhile. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
const PREFIX = 'vo-ft-';
const URI = 'qemu:///system';
const FAULTS = ['kill-up', 'kill-launcher', 'kill-qemu', 'restart-libvirtd', 'restart-virtlogd', 'commit-invalid', 'commit-duplicate', 'disk-full'] as const;
const OPS = ['add', 'delete', 'change', 'strategy', 'api-start', 'api-stop'] as const;
type Fault = (typeof FAULTS)[number];
type Op = (typeof OPS)[number];
const COUNT = Number(process.env['VIRTOPS_FAULT_COUNT'] ?? 50);
/** Bound on converging after one fault; a miss is a violation (and the run goes on). */
const CONVERGE_MS = 90_000;

describe('fault injection, single host (virtops up, qemu:///system)', () => {
  const seed = faultSeed();
  const schedule = buildSchedule<Fault, Op>(seed, { faults: FAULTS, ops: OPS, count: COUNT, minPerFault: Math.min(4, Math.floor(COUNT / FAULTS.length)), opsPerStep: [0, 2] });
  const figures = new FaultFigures('standalone', seed);
  const model: VmModel[] = [
    { name: `${PREFIX}g1`, kind: 'guest', present: true, strategy: 'Always', memoryMi: 128 },
    { name: `${PREFIX}b1`, kind: 'blank', present: true, strategy: 'Always', memoryMi: 64 },
    { name: `${PREFIX}b2`, kind: 'blank', present: true, strategy: 'Always', memoryMi: 64 },
    { name: `${PREFIX}b3`, kind: 'blank', present: true, strategy: 'Halted', memoryMi: 64 },
    { name: `${PREFIX}b4`, kind: 'blank', present: false, strategy: 'Always', memoryMi: 64 },
  ];
  const ledger: DiskLedger = {};
  let registry: LocalRegistry | undefined;
  let fs: LoopFs | undefined;
  let git: GitFixture | undefined;
  let up: UpProcess | undefined;
  let image = '';
  let upArgs: string[] = [];
  let goodSha = '';
  let stateDir = '';
  let upRestarts = 0;

  const log = (line: string) => console.log(`[faults seed=${seed}] ${line}`);

  beforeAll(async () => {
    registry = await startRegistry();
    image = (await pushTestGuestImages(registry)).kernelBootImage;
    // 192 MiB: the guest image (~13 MiB), qcow2 overlays, ISOs, logs and the git cache fit many times.
    fs = await createLoopFs('vo-ft-', 192);
    stateDir = fs.mountPoint;
    await mkdir(dirname(pvcPath(stateDir)), { recursive: true });
    await writeFile(pvcPath(stateDir), '');
    await truncate(pvcPath(stateDir), 16 * 2 ** 20);
    git = await gitFixture();
    upArgs = ['--repo', git.bare, '--emulation', 'tcg', '--interval', '2s', '--insecure-registry', registry.host, '--crash-loop-backoff', '1s', '--crash-loop-backoff-max', '4s', '--libvirt-uri', URI];
    up = await startUp(upArgs, stateDir);
    goodSha = await git.commitVms(model.filter((m) => m.present).map((m) => manifest(m, image)), 'initial VMs');
    const problems = await converge(180_000);
    if (problems.length) throw new Error(`the initial VMs did not converge within 180 s:\n  ${problems.join('\n  ')}\n${replayHint(seed, FILE)}`);
    await recordDisks();
  }, 600_000);

  afterAll(async () => {
    // Whatever happened: daemons running, the fill file gone, up stopped, launchers and
    // domains removed, the filesystem unmounted, temp dirs removed.
    await ensureDaemons();
    await fs?.free();
    await up?.stop().catch(() => undefined);
    if (stateDir) {
      for (const p of await launcherPids(stateDir)) signal(p.pid, 'SIGTERM');
      const deadline = Date.now() + 30_000;
      while ((await launcherPids(stateDir)).length && Date.now() < deadline) await sleep(200);
      for (const p of await launcherPids(stateDir)) signal(p.pid, 'SIGKILL');
    }
    await removeDomains(URI, `${NAMESPACE}_${PREFIX}`);
    for (const q of await qemuProcesses(`${NAMESPACE}_${PREFIX}`)) signal(q.pid, 'SIGKILL');
    await fs?.destroy();
    await git?.cleanup();
    await registry?.stop();
  }, 180_000);

  /** Polls the invariants until they hold on two reads in a row; returns [] or the last problems. */
  async function converge(timeoutMs = CONVERGE_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let last: string[] = ['not checked yet'];
    let cleanSince: number | undefined;
    for (;;) {
      await ensureUpAlive();
      try {
        const obs = await observe({ server: up!.server, stateDir, libvirtUri: URI, prefix: PREFIX, model });
        last = checkInvariants(expected(model), obs, { revision: goodSha, disks: ledger });
      } catch (err) {
        last = [`observing failed: ${(err as Error).message}`];
      }
      if (last.length === 0) {
        if (cleanSince !== undefined && Date.now() - cleanSince >= 1000) return [];
        cleanSince ??= Date.now();
      } else {
        cleanSince = undefined;
      }
      if (Date.now() > deadline) return last;
      await sleep(250);
    }
  }

  /** `up` must only ever exit when the test kills it: otherwise a violation, and it is started again. */
  async function ensureUpAlive(): Promise<void> {
    if (up && up.proc.exitCode === null && up.proc.signalCode === null && (await processAlive(up.proc.pid!))) return;
    figures.violation({ step: currentStep, fault: currentFault, invariant: 'up keeps running', detail: `virtops up exited on its own (code ${up?.proc.exitCode}, signal ${up?.proc.signalCode}); last log:\n${up?.logText().split('\n').slice(-15).join('\n')}` });
    up = await startUp(upArgs, stateDir);
  }

  /** Persistent disks seen for the first time join the ledger (the PVC always; emptyDisks while their VM is in git). */
  async function recordDisks(): Promise<void> {
    for (const m of model.filter((x) => x.present)) {
      for (const p of persistentDiskPaths(stateDir, m)) {
        const ino = ledger[p] ? undefined : await stat(p).then((s) => s.ino, () => undefined);
        if (ino !== undefined) ledger[p] = { inode: ino, vm: m.name };
      }
    }
    ledger[pvcPath(stateDir)] ??= { inode: (await stat(pvcPath(stateDir))).ino, vm: model[0]!.name, always: true };
  }

  let currentStep = -1;
  let currentFault = 'setup';

  async function commitModel(message: string): Promise<void> {
    goodSha = await git!.commitDist(distFiles(model, image), message);
  }

  /** Carries out one lifecycle op on the model and pushes it (or calls the API); returns what it did, or undefined when nothing fit. */
  async function runOp(op: Op, pick: number): Promise<string | undefined> {
    const choose = (c: VmModel[]) => (c.length ? c[pick % c.length] : undefined);
    switch (op) {
      case 'add': {
        const v = choose(model.filter((m) => !m.present));
        if (!v) return undefined;
        Object.assign(v, { present: true, strategy: 'Always' as const });
        delete v.override;
        await commitModel(`add ${v.name}`);
        return `add ${v.name}`;
      }
      case 'delete': {
        // Never the last one: a commit with an empty dist/ is refused (nothing would be left to run).
        const present = model.filter((m) => m.present);
        const v = present.length > 1 ? choose(present) : undefined;
        if (!v) return undefined;
        v.present = false;
        delete v.override;
        for (const p of persistentDiskPaths(stateDir, v)) delete ledger[p];
        await commitModel(`delete ${v.name}`);
        return `delete ${v.name}`;
      }
      case 'change': {
        const v = choose(model.filter((m) => m.present));
        if (!v) return undefined;
        v.memoryMi = v.memoryMi === (v.kind === 'guest' ? 128 : 64) ? v.memoryMi + 32 : v.kind === 'guest' ? 128 : 64;
        delete v.override;
        await commitModel(`change ${v.name}: memory ${v.memoryMi}Mi`);
        return `change ${v.name} (memory ${v.memoryMi}Mi)`;
      }
      case 'strategy': {
        const v = choose(model.filter((m) => m.present));
        if (!v) return undefined;
        v.strategy = v.strategy === 'Always' ? 'Halted' : 'Always';
        delete v.override;
        await commitModel(`${v.name}: runStrategy ${v.strategy}`);
        return `strategy ${v.name} ${v.strategy}`;
      }
      case 'api-start':
      case 'api-stop': {
        const action = op === 'api-start' ? 'start' : 'stop';
        // An override lasts until the next revision that touches the VM, and a push not yet
        // applied is such a revision even though it was pushed first: like a user who looks
        // before acting, wait until up has applied what git has.
        await caughtUp();
        const v = choose(model.filter((m) => m.present && (action === 'start') !== expected([m])[0]!.shouldRun));
        if (!v) return undefined;
        await apiCall(up!.server, 'POST', `/api/v1/vms/${NAMESPACE}/${v.name}/${action}`);
        v.override = action;
        return `virtops ${action} ${v.name}`;
      }
    }
  }

  /** Waits (bounded) for a process the fault can kill; when every VM is stopped, starts one first. */
  async function candidates<T>(list: () => Promise<T[]>, pick: number): Promise<T[]> {
    if (!model.some((m) => expected([m])[0]!.shouldRun)) await runOp('api-start', pick);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const c = await list();
      if (c.length || Date.now() > deadline) return c;
      await sleep(200);
    }
  }

  function badCommitFiles(kind: 'commit-invalid' | 'commit-duplicate', pick: number): { files: Record<string, string>; what: string } {
    const files = distFiles(model, image);
    const present = model.filter((m) => m.present);
    const target = present[pick % Math.max(1, present.length)] ?? model[0]!;
    if (kind === 'commit-duplicate') {
      // The same VM (namespace/name) in two files.
      files[`zz-copy-of-${target.name}.k8s.yaml`] = distFiles([{ ...target, present: true }], image)[`${target.name}.k8s.yaml`]!;
      return { files, what: `duplicate ${target.name}` };
    }
    const vm = manifest({ ...target, present: true }, image) as unknown as Record<string, any>;
    const mutations: [string, () => void][] = [
      ['runStrategy Sometimes', () => (vm.spec.runStrategy = 'Sometimes')],
      ['memory.guest "lots"', () => (vm.spec.template.spec.domain.memory.guest = 'lots')],
      ['a disk without a volume', () => vm.spec.template.spec.domain.devices.disks.push({ name: 'ghost', disk: { bus: 'virtio' } })],
      ['metadata.name with upper case', () => (vm.metadata.name = 'Not_A_Name')],
    ];
    const [what, mutate] = mutations[Math.floor(pick / 7) % mutations.length]!;
    mutate();
    files[`${target.name}.k8s.yaml`] = YAML.stringify(vm);
    return { files, what: `${target.name}: ${what}` };
  }

  /** A fault's `after` runs before the convergence wait: problems it found, and (commits) when the refusal showed. */
  type After = () => Promise<{ problems: string[]; refusedAt?: number }>;

  async function injectFault(step: Step<Fault, Op>): Promise<{ detail: string; after?: After; at?: number; skipped?: boolean }> {
    const pick = step.pick;
    switch (step.fault) {
      case 'kill-up': {
        const at = Date.now();
        await up!.kill9();
        upRestarts++;
        up = await startUp(upArgs, stateDir);
        return { detail: 'SIGKILL virtops up, started again on the same state dir', at };
      }
      case 'kill-launcher': {
        // The one process per VM (`launcher-monitor`, the launcher in-process): its supervisor,
        // the node agent in `up`, must notice, reap and clean up after it.
        const c = await candidates(async () => (await launcherPids(stateDir)).filter((p) => p.monitor), pick);
        if (!c.length) return { detail: 'no launcher process to kill within 30 s', skipped: true };
        const p = c[pick % c.length]!;
        const at = Date.now();
        signal(p.pid, 'SIGKILL');
        return { detail: `SIGKILL launcher-monitor pid ${p.pid} (instance ${p.uid})`, at };
      }
      case 'kill-qemu': {
        const c = await candidates(() => qemuProcesses(`${NAMESPACE}_${PREFIX}`), pick);
        if (!c.length) return { detail: 'no QEMU to kill within 30 s', skipped: true };
        const q = c[pick % c.length]!;
        const at = Date.now();
        signal(q.pid, 'SIGKILL');
        return { detail: `SIGKILL QEMU pid ${q.pid} (${q.domain})`, at };
      }
      case 'restart-libvirtd':
      case 'restart-virtlogd': {
        const down = await restartDaemon(step.fault === 'restart-libvirtd' ? 'libvirtd' : 'virtlogd');
        return { detail: `${step.fault.slice(8)} down ${down} ms`, at: Date.now() };
      }
      case 'commit-invalid':
      case 'commit-duplicate': {
        // What runs before the bad commit must be what runs after it.
        const settled = await converge();
        if (settled.length) return { detail: 'not settled before the bad commit', after: async () => ({ problems: settled }) };
        const before = runningSnapshot(await observe({ server: up!.server, stateDir, libvirtUri: URI, prefix: PREFIX, model }));
        const { files, what } = badCommitFiles(step.fault, pick);
        const sha = await git!.commitDist(files, `bad: ${what}`);
        return {
          detail: `pushed ${sha.slice(0, 12)} (${what})`,
          after: async () => {
            const seen = await waitRefused(sha);
            if (!seen) return { problems: [`commit ${sha.slice(0, 12)} (${what}) was not refused within ${CONVERGE_MS / 1000} s`] };
            const refusedAt = Date.now();
            await sleep(2500); // a resync pass (--interval 2s) after the refusal
            const after = runningSnapshot(await observe({ server: up!.server, stateDir, libvirtUri: URI, prefix: PREFIX, model }));
            return { problems: snapshotChanges(before, after).map((c) => `refused commit ${sha.slice(0, 12)} changed what ran: ${c}`), refusedAt };
          },
        };
      }
      case 'disk-full': {
        await caughtUp();
        const filled = await fs!.fill();
        // Something to do while full: one more lifecycle op (a push, the git cache and every state write need space).
        const op = OPS[pick % OPS.length]!;
        const did = await runOp(op, pick).catch((err: Error) => `(${op} failed: ${err.message})`);
        await sleep(5000);
        await fs!.free();
        return { at: Date.now(), detail: `filled ${(filled / 2 ** 20).toFixed(0)} MiB; during it: ${did ?? 'nothing'}; freed after 5 s` };
      }
    }
  }

  /** Waits (bounded: a miss shows later as a convergence problem) until up has applied the last good commit. */
  async function caughtUp(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const list = await apiCall<VmList>(up!.server, 'GET', '/api/v1/vms').catch(() => undefined);
      if (list?.revision === goodSha) return;
      await sleep(200);
    }
  }

  async function waitRefused(sha: string): Promise<boolean> {
    const deadline = Date.now() + CONVERGE_MS;
    while (Date.now() < deadline) {
      await ensureUpAlive();
      const list = await apiCall<VmList>(up!.server, 'GET', '/api/v1/vms').catch(() => undefined);
      if (list?.refused?.sha === sha) return true;
      await sleep(250);
    }
    return false;
  }

  it(`survives ${COUNT} seeded faults with every invariant holding`, async () => {
    let misses = 0;
    for (const step of schedule) {
      currentStep = step.index;
      currentFault = step.fault;
      const stepStart = Date.now();
      const did: string[] = [];
      for (const o of step.ops) {
        const d = await runOp(o.op, o.pick);
        if (d) did.push(d);
      }
      await sleep((step.pick % 4) * 500);
      const t0 = Date.now();
      const { detail, after, at, skipped } = await injectFault(step);
      if (!skipped) figures.injected(step.fault);
      const tInjected = Date.now();
      const checked = after ? await after() : { problems: [] };
      for (const p of checked.problems) figures.violation({ step: step.index, fault: step.fault, invariant: 'a refused commit touches nothing running', detail: p });
      const problems = await converge();
      // A bad commit has converged when its refusal shows (and nothing moved, checked above).
      // Otherwise from the kill, the daemon back up, or the disk freed.
      const ms = checked.refusedAt !== undefined ? checked.refusedAt - tInjected : Date.now() - (at ?? t0);
      if (problems.length) {
        figures.timedOut();
        for (const p of problems) figures.violation({ step: step.index, fault: step.fault, invariant: 'converged', detail: p });
        misses++;
        // For the post-mortem: up's log around the miss (its launchers log into their pod dirs).
        await mkdir(RESULTS_DIR, { recursive: true });
        await writeFile(join(RESULTS_DIR, `standalone-up-step${step.index + 1}.log`), up?.logText() ?? '');
      } else {
        if (!skipped) figures.converged(step.fault, ms);
        misses = 0;
        await recordDisks();
      }
      log(`step ${step.index + 1}/${schedule.length}: ${did.length ? did.join(', ') : 'no ops'} | ${step.fault}: ${detail} | ${problems.length ? `NOT converged: ${problems.slice(0, 3).join('; ')}` : `converged in ${(ms / 1000).toFixed(1)} s`} (step ${((Date.now() - stepStart) / 1000).toFixed(1)} s)`);
      if (misses >= 2) {
        figures.violation({ step: step.index, fault: step.fault, invariant: 'converged', detail: 'two faults in a row did not converge: stopping the run' });
        break;
      }
    }
    figures.extra = { vms: model.length, upRestarts, faultsScheduled: schedule.length };
    const summary = await figures.write(await machineLine());
    expect(summary.violationDetails, `invariant violations; ${replayHint(seed, FILE)}`).toEqual([]);
    expect(summary.faultsInjected).toBeGreaterThanOrEqual(Math.min(50, COUNT));
  });
});
