/**
 * The invariants a fault-injection run checks once the system has converged, as a pure
 * function of what the test expects (from the git it pushed and the overrides it made) and
 * what it observed on the host. Mode-agnostic: the single-host test observes the state dir,
 * /proc and libvirt; a cluster test can fill the same shape from its API server and nodes.
 */

export interface ExpectedVm {
  name: string;
  /** In the applied revision (git). */
  present: boolean;
  /** Git (plus the test's own start/stop overrides) says it runs. */
  shouldRun: boolean;
}

export interface ObservedVm {
  name: string;
  /** printableStatus the reconciler reports, if it lists the VM. */
  status?: string;
  /** Instance uid the reconciler reports (view). */
  instanceUid?: string;
  /** Instance uids in the durable records (state dir file, or VMI objects). */
  recordUids: string[];
  /** The VM has a durable record at all (vms/<ns>_<name>.json, or the VM object). */
  hasRecord: boolean;
}

export interface Observation {
  /** Applied revision (commit SHA) the reconciler reports. */
  revision?: string;
  vms: ObservedVm[];
  /** Domains with the test's prefix: VM name (not domain name) and libvirt state. */
  domains: { vm: string; state: string }[];
  /** Launcher processes: the VMI uid on their command line and which of the pair they are. */
  launchers: { uid: string; monitor: boolean; pid: number }[];
  /** QEMU processes by VM name. */
  qemus: { vm: string; pid: number }[];
  /** Per-VM directories on the node (VM name → instance uids that have ephemeral dirs; sockets present). */
  vmDirs: { vm: string | undefined; dir: string; ephemeralUids: string[]; sockets: string[] }[];
  /** Files or dirs in the state dir that belong to no VM and are not the reconciler's own. */
  strays: string[];
  /** Persistent disks: path → inode now (undefined: missing). */
  persistentDisks: Record<string, number | undefined>;
}

/** What must not change while a VM is in git: persistent disk path → inode first seen. */
export type DiskLedger = Record<string, { inode: number; vm: string; always?: boolean }>;

/** Every broken invariant as one line naming the VM and what is wrong; [] when all hold. */
export function checkInvariants(expected: readonly ExpectedVm[], obs: Observation, ctx: { revision?: string; disks?: DiskLedger } = {}): string[] {
  const problems: string[] = [];
  const byName = new Map(expected.map((e) => [e.name, e]));
  if (ctx.revision && obs.revision !== ctx.revision) problems.push(`applied revision is ${obs.revision?.slice(0, 12) ?? '(none)'}, git's is ${ctx.revision.slice(0, 12)}`);
  for (const e of expected) {
    const o = obs.vms.find((v) => v.name === e.name);
    const domains = obs.domains.filter((d) => d.vm === e.name);
    const qemus = obs.qemus.filter((q) => q.vm === e.name);
    if (!e.present) {
      if (o && (o.hasRecord || o.status !== undefined)) problems.push(`${e.name}: not in git but still has a record (status ${o.status ?? '-'})`);
      if (domains.length) problems.push(`${e.name}: not in git but has domain(s) ${domains.map((d) => d.state).join(', ')}`);
      if (qemus.length) problems.push(`${e.name}: not in git but QEMU runs (pid ${qemus.map((q) => q.pid).join(', ')})`);
      continue;
    }
    if (!o?.hasRecord) problems.push(`${e.name}: in git but has no record`);
    if (e.shouldRun) {
      if (o?.status !== 'Running') problems.push(`${e.name}: should run, status is ${o?.status ?? '(not listed)'}`);
      const uid = o?.instanceUid;
      if (!uid) problems.push(`${e.name}: should run, no instance`);
      if (o && o.recordUids.length !== 1) problems.push(`${e.name}: should run, ${o.recordUids.length} instance records (want 1)`);
      if (uid && o && o.recordUids[0] !== undefined && o.recordUids[0] !== uid) problems.push(`${e.name}: instance record ${o.recordUids[0]} differs from the reported instance ${uid}`);
      if (domains.length !== 1 || domains[0]!.state !== 'running') problems.push(`${e.name}: should run, domains: [${domains.map((d) => d.state).join(', ')}] (want one running)`);
      if (qemus.length !== 1) problems.push(`${e.name}: should run, ${qemus.length} QEMU processes (want 1)`);
      const mine = uid ? obs.launchers.filter((l) => l.uid === uid) : [];
      // One process per VM: `launcher-monitor` runs the launcher in-process; a separate
      // `launcher` process would be the old two-process layout.
      const monitors = mine.filter((l) => l.monitor).length;
      const launchers = mine.length - monitors;
      if (monitors !== 1 || launchers !== 0) problems.push(`${e.name}: should run, ${monitors} launcher-monitor process(es) and ${launchers} separate launcher(s) for instance ${uid ?? '-'} (want 1 and 0)`);
    } else {
      if (o?.status !== 'Stopped') problems.push(`${e.name}: should be stopped, status is ${o?.status ?? '(not listed)'}`);
      if (o?.recordUids.length) problems.push(`${e.name}: should be stopped, has instance record ${o.recordUids.join(', ')}`);
      if (domains.length) problems.push(`${e.name}: should be stopped, has domain(s) ${domains.map((d) => d.state).join(', ')}`);
      if (qemus.length) problems.push(`${e.name}: should be stopped, QEMU runs (pid ${qemus.map((q) => q.pid).join(', ')})`);
    }
  }
  // Nothing that belongs to no VM.
  const liveUids = new Set(expected.filter((e) => e.shouldRun).map((e) => obs.vms.find((v) => v.name === e.name)?.instanceUid).filter((u): u is string => !!u));
  for (const l of obs.launchers) if (!liveUids.has(l.uid)) problems.push(`orphan launcher${l.monitor ? ' monitor' : ''} pid ${l.pid} (instance ${l.uid} is no running VM's)`);
  for (const d of obs.domains) if (!byName.has(d.vm)) problems.push(`orphan domain of unknown VM ${d.vm} (${d.state})`);
  for (const q of obs.qemus) if (!byName.has(q.vm)) problems.push(`orphan QEMU pid ${q.pid} of unknown VM ${q.vm}`);
  for (const dir of obs.vmDirs) {
    const e = dir.vm ? byName.get(dir.vm) : undefined;
    if (!e?.present) {
      problems.push(`orphan VM dir ${dir.dir} (${dir.vm ?? 'no VM'} is not in git)`);
      continue;
    }
    const uid = obs.vms.find((v) => v.name === e.name)?.instanceUid;
    const stale = dir.ephemeralUids.filter((u) => !(e.shouldRun && u === uid));
    if (stale.length) problems.push(`${e.name}: orphan ephemeral dir(s) of instance(s) ${stale.join(', ')} in ${dir.dir}`);
    if (!e.shouldRun && dir.sockets.length) problems.push(`${e.name}: stopped but sockets remain: ${dir.sockets.join(', ')}`);
  }
  for (const s of obs.strays) problems.push(`orphan file ${s}`);
  // Persistent disks are never deleted or replaced unless git removed their VM.
  for (const [path, entry] of Object.entries(ctx.disks ?? {})) {
    const now = obs.persistentDisks[path];
    const vmPresent = byName.get(entry.vm)?.present ?? false;
    if (!entry.always && !vmPresent) continue;
    if (now === undefined) problems.push(`${entry.vm}: persistent disk ${path} was deleted`);
    else if (now !== entry.inode) problems.push(`${entry.vm}: persistent disk ${path} was replaced (inode ${entry.inode} → ${now})`);
  }
  return problems;
}

/** What a refused commit must leave alone: per VM, its instance uid, launcher pid and QEMU pid. */
export type RunningSnapshot = Record<string, { uid?: string; launcherPids: number[]; qemuPids: number[] }>;

export function runningSnapshot(obs: Observation): RunningSnapshot {
  const out: RunningSnapshot = {};
  for (const v of obs.vms) {
    out[v.name] = {
      ...(v.instanceUid ? { uid: v.instanceUid } : {}),
      launcherPids: obs.launchers.filter((l) => l.uid === v.instanceUid).map((l) => l.pid).sort((a, b) => a - b),
      qemuPids: obs.qemus.filter((q) => q.vm === v.name).map((q) => q.pid).sort((a, b) => a - b),
    };
  }
  return out;
}

/** Differences between two snapshots, one line per VM that changed. */
export function snapshotChanges(before: RunningSnapshot, after: RunningSnapshot): string[] {
  const out: string[] = [];
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = JSON.stringify(before[name] ?? null);
    const b = JSON.stringify(after[name] ?? null);
    if (a !== b) out.push(`${name}: ${a} → ${b}`);
  }
  return out;
}
