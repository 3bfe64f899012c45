/**
 * Against the floor (issue 15, part 5): create and remove the same N test guests (real QEMU
 * under TCG, qemu:///system) with `virtops up` from a git push, and with N parallel raw
 * `virsh define && virsh start` / `virsh shutdown` of the very same domains (the floor), in
 * one run, alternating rounds so both sides see the same machine.
 *
 *   npm run bench:floor [-- --vms 20] [--rounds 3] [--concurrency N (up's; default its own, 16)] [--poll-ms 250] [--json]
 *
 * virtops side, timed from `git push` (writing dist/ and `git commit` come first, as the
 * floor's XMLs are prepared before its clock starts; the time from before the commit is
 * recorded too): one push adds the N VMs → the last of their VMI phases Running (each VM's
 * `StatusChanged … → Running` event, when up recorded it, as bench:scaling and KubeVirt's perf
 * job read it; the bench asks up's API every --poll-ms until all N are Running and records
 * when it saw that too, which lags by up to one interval);
 * one push removes them → every domain gone (graceful: ACPI, the guest powers off in ~1.5 s,
 * then launcher, disks, ISO and sockets removed). Floor side: the domain XML virtops defined
 * for each VM (dumped once in the first round), with every file it names copied out of the
 * state dir (kernel, initrd, cloud-init ISO, emptyDisk), renamed `floor_<n>`: N parallel
 * `define && start` until all have returned; N parallel ACPI `shutdown` until all are shut
 * off and undefined. What virtops does that the floor does not (git, the launcher processes,
 * image store lookups, the ISO and emptyDisk, state records, cleanup) is the gap; the stages
 * printed from up's log say where it goes.
 *
 * A third side, the Node floor, splits the creation gap: N parallel minimal Node processes
 * (bench/node-floor-launcher.mjs: Node, the libvirt binding, a connection, define and start of
 * the same XML). What it costs over the floor is what any design with one Node process per VM
 * linking libvirt pays; what virtops costs over it is virtops' own per-VM work.
 *
 * CPU: each creation phase also records the machine's busy CPU time (/proc/stat) and, from
 * /proc/<pid>/stat (own + reaped children), how much of it went to QEMU, libvirt's daemons,
 * `up`, the launchers (with their helpers) and the bench's own children (git, virsh, the Node
 * floor's processes). QEMU's share depends on how long the phase lasts (the guests boot
 * meanwhile), so the sides are compared on the CPU outside QEMU: what creating a VM costs.
 *
 * Goal: creation ≤ 1.5x the floor, removal ≤ 1.5x the ACPI floor.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { testGuestVm, bareVm, gitFixture } from '../test/integration/standalone/fixture.js';
import { cleanupStateDir, listVms, makeStateDir, startUp, waitFor } from '../test/integration/standalone/harness.js';
import { pushTestGuestImages, startRegistry } from '../test/helpers/registry.js';
import { emitJson, eventMs, JSON_FLAG, say } from './report.js';
import { floorDomains, guestReady, nodeFloorStart, rawFloorStart, removeFloorDomains, serialLog, virsh } from './raw-floor.js';
import { cpuTimes, machineCpuS, processes } from './proc.js';

const { values } = parseArgs({ options: { vms: { type: 'string', default: '20' }, rounds: { type: 'string', default: '3' }, concurrency: { type: 'string' }, 'poll-ms': { type: 'string', default: '250' }, ...JSON_FLAG } });
const N = Number(values.vms);
const ROUNDS = Number(values.rounds);
const POLL_MS = Number(values['poll-ms']);
if (!(N >= 1) || !(ROUNDS >= 1) || !(POLL_MS >= 1)) throw new Error('--vms, --rounds and --poll-ms must be positive integers');

const names = Array.from({ length: N }, (_, i) => `floor-vm-${i}`);
const domainOf = (name: string) => `default_${name}`;
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

type CpuKind = 'qemu' | 'libvirt' | 'up' | 'launchers' | 'launcherHelpers' | 'benchChildren';
interface CpuSample { machineS: number; byPid: Map<number, { kind: CpuKind; s: number }> }
/** CPU seconds of one creation phase: the machine's, what of it each kind of process used, and the machine's outside QEMU. */
type CpuUse = Record<CpuKind | 'machine' | 'outsideQemu', number>;

async function cpuSample(upPid: number | undefined, stateDir: string): Promise<CpuSample> {
  const byPid = new Map<number, { kind: CpuKind; s: number }>();
  const machineS = await machineCpuS();
  for (const [pid, cmd] of await processes()) {
    const kind: CpuKind | undefined = pid === process.pid ? 'benchChildren'
      : pid === upPid ? 'up'
        : cmd.includes('qemu-system') ? 'qemu'
          : /(^|\/)(libvirtd|virtlogd|virtqemud)( |$)/.test(cmd) ? 'libvirt'
            : cmd.includes('launcher') && cmd.includes(stateDir) ? 'launchers' : undefined;
    if (!kind) continue;
    const t = await cpuTimes(pid);
    if (kind === 'launchers') {
      // The helpers a launcher ran and reaped (qemu-img, the ISO writer, tar) apart from its own CPU.
      byPid.set(pid, { kind, s: t.own });
      byPid.set(-pid, { kind: 'launcherHelpers', s: t.children });
    } else {
      byPid.set(pid, { kind, s: kind === 'benchChildren' ? t.children : t.own + t.children });
    }
  }
  return { machineS, byPid };
}

/** What changed between two samples; a process born in between counts from zero. */
function cpuUse(before: CpuSample, after: CpuSample): CpuUse {
  const use: CpuUse = { machine: after.machineS - before.machineS, outsideQemu: 0, qemu: 0, libvirt: 0, up: 0, launchers: 0, launcherHelpers: 0, benchChildren: 0 };
  for (const [pid, { kind, s }] of after.byPid) use[kind] += s - (before.byPid.get(pid)?.s ?? 0);
  use.outsideQemu = use.machine - use.qemu;
  return use;
}

/** Domain names of qemu:///system now (running or not). */
async function domains(): Promise<Set<string>> {
  return new Set((await virsh('list', '--all', '--name')).stdout.split('\n').map((s) => s.trim()).filter(Boolean));
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const git = await gitFixture();
  const stateDir = await makeStateDir();
  const work = await mkdtemp(join(tmpdir(), 'vo-bench-floor-'));
  const placeholder = bareVm('floor-placeholder', { runStrategy: 'Halted' });
  let up: Awaited<ReturnType<typeof startUp>> | undefined;
  const figures = { virtopsCreateMs: [] as number[], virtopsRemoveMs: [] as number[], floorCreateMs: [] as number[], floorRemoveMs: [] as number[], nodeFloorCreateMs: [] as number[], sourceMs: [] as number[], virtopsSeenMs: [] as number[], virtopsFromCommitMs: [] as number[] };
  const cpu = { virtopsCreate: [] as CpuUse[], floorCreate: [] as CpuUse[], nodeFloorCreate: [] as CpuUse[] };
  let floorXml: string[] = [];
  try {
    const image = (await pushTestGuestImages(registry)).kernelBootImage;
    const vms = names.map((name) => testGuestVm({ image, name }));
    await git.commitVms([placeholder], 'placeholder');
    // --concurrency: up's VMs reconciled in parallel (its default, 16, unless given).
    up = await startUp(['--repo', git.bare, '--emulation', 'tcg', '--interval', '1m', '--no-freshness-check', '--insecure-registry', registry.host, ...(values.concurrency ? ['--concurrency', values.concurrency] : [])], stateDir);
    const server = up.server;
    await waitFor('placeholder applied', async () => (await listVms(server)).vms.some((v) => v.name === placeholder.metadata.name), 60_000);

    for (let r = 0; r < ROUNDS; r++) {
      // virtops: push N, all Running.
      const cpu0 = await cpuSample(up.proc.pid, stateDir);
      // Timed from `git push`, as the floor is timed from its prepared XMLs: writing dist/ and
      // `git commit` are the user's, before the push (recorded apart, from the commit).
      const committedAt = Date.now();
      let pushedAt = committedAt;
      await git.commitVms([placeholder, ...vms], `add ${N} guests #${r}`, () => (pushedAt = Date.now()));
      const running = await waitFor(`${N} Running`, async () => {
        const mine = (await listVms(server)).vms.filter((v) => names.includes(v.name) && v.status?.printableStatus === 'Running');
        return mine.length === N && mine;
      }, 600_000, POLL_MS);
      figures.virtopsSeenMs.push(Date.now() - pushedAt);
      const lastRunning = Math.max(...running.map((v) => {
        const at = eventMs(v, 'StatusChanged', /→ Running$/);
        if (at === undefined) throw new Error(`${v.name}: Running but no "→ Running" event; events: ${JSON.stringify(v.events)}`);
        return at;
      }));
      figures.virtopsCreateMs.push(lastRunning - pushedAt);
      figures.virtopsFromCommitMs.push(lastRunning - committedAt);
      cpu.virtopsCreate.push(cpuUse(cpu0, await cpuSample(up.proc.pid, stateDir)));
      const applied = up.logText().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { time: number; msg: string })
        .find((l) => l.time >= pushedAt && l.msg.startsWith('applying revision'));
      if (applied) figures.sourceMs.push(applied.time - pushedAt);
      if (r === 0) floorXml = await floorDomains(stateDir, work, names.map(domainOf));
      // Both sides remove booted guests: an ACPI press before acpid runs is lost.
      await Promise.all(names.map(async (n) => guestReady((await virsh('dumpxml', domainOf(n))).stdout, n)));

      // virtops: remove all N, every domain gone.
      let t1 = performance.now();
      await git.commitVms([placeholder], `remove ${N} guests #${r}`, () => (t1 = performance.now()));
      await waitFor('all pruned', async () => {
        const left = await domains();
        return names.every((n) => !left.has(domainOf(n))) && (await listVms(server)).vms.every((v) => !names.includes(v.name));
      }, 600_000, 50);
      figures.virtopsRemoveMs.push(performance.now() - t1);

      // Floor: N parallel define && start of the same domains.
      // A floor domain's serial log is the same file every round and QEMU appends to it: without
      // this, round 2 found round 1's READY marker at once and pressed ACPI while the guest was
      // still booting (the 90–120 s floor removals of earlier runs). Not timed.
      await Promise.all(floorXml.map(async (file, i) => rm(serialLog(await readFile(file, 'utf8'), `floor_${i}`), { force: true })));
      const cpu2 = await cpuSample(up.proc.pid, stateDir);
      figures.floorCreateMs.push(Math.max(...await rawFloorStart(floorXml)));
      cpu.floorCreate.push(cpuUse(cpu2, await cpuSample(up.proc.pid, stateDir)));
      await Promise.all(floorXml.map(async (file, i) => guestReady(await readFile(file, 'utf8'), `floor_${i}`)));

      // Floor: N parallel ACPI shutdowns until all are off, then undefine.
      const t3 = performance.now();
      await Promise.all(floorXml.map(async (_, i) => {
        // Pressed again every 5 s until off: under load a guest can miss one press (seen with
        // 20 guests), and virtops' own stop retries too.
        let pressedAt = 0;
        await waitFor(`floor_${i} off`, async () => {
          if (/shut off/.test((await virsh('domstate', `floor_${i}`)).stdout)) return true;
          if (Date.now() - pressedAt > 5000) {
            pressedAt = Date.now();
            await virsh('shutdown', `floor_${i}`);
          }
          return false;
        }, 120_000, 50);
        await virsh('undefine', `floor_${i}`);
      }));
      figures.floorRemoveMs.push(performance.now() - t3);

      // Node floor: N parallel minimal Node processes define && start the same domains. Their
      // removal is not measured: destroyed and undefined once all have started.
      await Promise.all(floorXml.map(async (file, i) => rm(serialLog(await readFile(file, 'utf8'), `floor_${i}`), { force: true })));
      const cpu4 = await cpuSample(up.proc.pid, stateDir);
      figures.nodeFloorCreateMs.push(Math.max(...await nodeFloorStart(floorXml)));
      cpu.nodeFloorCreate.push(cpuUse(cpu4, await cpuSample(up.proc.pid, stateDir)));
      await removeFloorDomains(floorXml.length);
      say(`round ${r + 1}/${ROUNDS}: virtops create ${seconds(figures.virtopsCreateMs.at(-1)!)}, remove ${seconds(figures.virtopsRemoveMs.at(-1)!)}; floor create ${seconds(figures.floorCreateMs.at(-1)!)}, remove ${seconds(figures.floorRemoveMs.at(-1)!)}; Node floor create ${seconds(figures.nodeFloorCreateMs.at(-1)!)}`);
    }
  } finally {
    await up?.stop().catch(() => undefined);
    const left = await domains();
    for (const d of [...left].filter((d) => d.startsWith('floor_') || names.some((n) => d === domainOf(n)))) {
      await virsh('destroy', d);
      await virsh('undefine', d);
    }
    await cleanupStateDir(stateDir);
    await rm(work, { recursive: true, force: true });
    await git.cleanup();
    await registry.stop();
  }

  const create = p50(figures.virtopsCreateMs) / p50(figures.floorCreateMs);
  const remove = p50(figures.virtopsRemoveMs) / p50(figures.floorRemoveMs);
  const nodeFloor = p50(figures.nodeFloorCreateMs) / p50(figures.floorCreateMs);
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  say(`\n${N} test guests (TCG), p50 of ${ROUNDS} alternating rounds; load average ${load}`);
  say(`  create: virtops (git push → all Running) ${seconds(p50(figures.virtopsCreateMs))}; floor (parallel define && start) ${seconds(p50(figures.floorCreateMs))}; ratio ${create.toFixed(2)}x (goal ≤ 1.5x: ${create <= 1.5 ? 'met' : 'MISSED'})`);
  say(`    (the bench saw all ${N} Running in up's API after ${seconds(p50(figures.virtopsSeenMs))}, asking every ${POLL_MS} ms; from before \`git commit\`: ${seconds(p50(figures.virtopsFromCommitMs))})`);
  say(`    of which push → revision applied (git, fetch, validation): ${seconds(p50(figures.sourceMs))}`);
  say(`    Node floor (parallel minimal Node processes: binding, connection, define, start) ${seconds(p50(figures.nodeFloorCreateMs))}, ${nodeFloor.toFixed(2)}x the floor: of virtops' gap, ${seconds(p50(figures.nodeFloorCreateMs) - p50(figures.floorCreateMs))} is one Node process per VM, ${seconds(p50(figures.virtopsCreateMs) - p50(figures.nodeFloorCreateMs))} virtops' own work`);
  say(`  remove: virtops (git push → all domains gone) ${seconds(p50(figures.virtopsRemoveMs))}; floor (parallel ACPI shutdown, undefine) ${seconds(p50(figures.floorRemoveMs))}; ratio ${remove.toFixed(2)}x (goal ≤ 1.5x: ${remove <= 1.5 ? 'met' : 'MISSED'})`);
  // One whole round per side (the one with the median CPU outside QEMU), so its parts add up.
  const cpuP50 = (uses: CpuUse[]): CpuUse => {
    const median = [...uses].sort((a, b) => a.outsideQemu - b.outsideQemu)[Math.floor((uses.length - 1) / 2)]!;
    return Object.fromEntries(Object.entries(median).map(([k, v]) => [k, Math.round(v * 100) / 100])) as CpuUse;
  };
  const cpuLine = (u: CpuUse): string => `${u.outsideQemu.toFixed(2)} s outside QEMU (libvirt ${u.libvirt.toFixed(2)}, up ${u.up.toFixed(2)}, launchers ${u.launchers.toFixed(2)} + their helpers ${u.launcherHelpers.toFixed(2)}, bench's children ${u.benchChildren.toFixed(2)}, other ${(u.outsideQemu - u.libvirt - u.up - u.launchers - u.launcherHelpers - u.benchChildren).toFixed(2)}); QEMU ${u.qemu.toFixed(2)} s`;
  const cpuP = { virtopsCreate: cpuP50(cpu.virtopsCreate), floorCreate: cpuP50(cpu.floorCreate), nodeFloorCreate: cpuP50(cpu.nodeFloorCreate) };
  say(`  CPU of creation (machine, the round with the median CPU outside QEMU): virtops ${cpuLine(cpuP.virtopsCreate)}`);
  say(`    floor ${cpuLine(cpuP.floorCreate)}`);
  say(`    Node floor ${cpuLine(cpuP.nodeFloorCreate)}`);
  say(`    outside QEMU per VM: virtops ${(cpuP.virtopsCreate.outsideQemu / N * 1000).toFixed(0)} ms, Node floor ${(cpuP.nodeFloorCreate.outsideQemu / N * 1000).toFixed(0)} ms, floor ${(cpuP.floorCreate.outsideQemu / N * 1000).toFixed(0)} ms`);
  emitJson('floor', {
    vms: N, rounds: ROUNDS, upConcurrency: Number(values.concurrency ?? 16), pollMs: POLL_MS,
    createP50Ms: { virtops: p50(figures.virtopsCreateMs), virtopsSeen: p50(figures.virtopsSeenMs), virtopsFromCommit: p50(figures.virtopsFromCommitMs), floor: p50(figures.floorCreateMs), ratio: create, pushToAppliedP50Ms: p50(figures.sourceMs), nodeFloor: p50(figures.nodeFloorCreateMs), nodeFloorRatio: nodeFloor },
    removeP50Ms: { virtops: p50(figures.virtopsRemoveMs), floor: p50(figures.floorRemoveMs), ratio: remove },
    createCpuP50S: cpuP,
    samplesMs: figures,
    cpuSamplesS: cpu,
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:floor: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
