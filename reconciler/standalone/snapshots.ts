/**
 * `virtops up`'s snapshots and restores of VMs' persistent disks (claims, hostDisks), from
 * `snapshot.kubevirt.io/v1beta1` manifests in git and from the API (`virtops snapshot ...`).
 * One operation at a time, outside the reconcile loop, each under its deadline.
 *
 *   <state-dir>/snapshots/<ns>/<name>/snapshot.json   the snapshot (spec, status, volumes, the VM)
 *   <state-dir>/snapshots/<ns>/<name>/<volume>.img    the copy of each disk (raw)
 *   <state-dir>/restores/<ns>_<name>.json             each restore and its status
 *
 * A snapshot of a running VM is online (libvirt backup job; the guest's filesystems frozen
 * through its agent when one answers), of a stopped one a file copy. A failed snapshot
 * leaves the VM running and its disks untouched (they are only read), and keeps no copy.
 * A restore needs its target stopped, as KubeVirt does: it waits for that (WaitGracePeriod,
 * 5 min; WaitEventually), stops it (StopTarget: a `stop` override, which holds until
 * `virtops start` or a commit changing the VM) or fails (FailImmediate). While a restore
 * runs, its target VM is not started. Nothing is deleted unless asked: a git snapshot's copy
 * goes when its manifest leaves git (deletionPolicy Delete, the default; Retain keeps it),
 * an API snapshot's with `virtops snapshot delete`.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { VirtualMachine } from '../../api/kubevirt.js';
import {
  type RestoreStatus,
  type SnapshotProgress,
  type SnapshotStatus,
  type VirtualMachineRestore,
  type VirtualMachineSnapshot,
  SNAPSHOT_API_VERSION,
  parseDuration,
  planRestore,
  newVmRestoreNote,
  restoreStatus,
  snapshotStatus,
} from '../../api/snapshot.js';
import { RESTORE_WAIT_MS, discardCopies, restoreCopies, runningTargetDecision, takeSnapshotCopies, type TakenVolume } from '../snapshot-copy.js';

/** What the worker needs to know of a VM now. */
export interface VmState {
  vm: VirtualMachine;
  /** Its instance: the libvirt domain and whether it runs (Running or Paused). */
  instance?: { domain: string; uid: string; running: boolean };
}

export interface SnapshotWorkerOptions {
  stateDir: string;
  pvcDir: string;
  libvirtUri: string;
  log: Logger;
  /** The VM in the applied revision (undefined: not in git). */
  vmState: (namespace: string, name: string) => VmState | undefined;
  /** StopTarget: ask for the VM to stop (an override). */
  stopVm: (namespace: string, name: string) => Promise<void>;
  onChange?: () => void;
  now?: () => number;
}

type Origin = 'git' | 'api' | 'retained';

interface SnapshotRecord {
  metadata: { name: string; namespace: string; uid: string; creationTimestamp: string };
  spec: VirtualMachineSnapshot['spec'];
  origin: Origin;
  progress: SnapshotProgress;
  volumes: TakenVolume[];
  /** The VM as it was (for a restore into a VM not in git). */
  vm?: VirtualMachine;
}

interface RestoreRecord {
  metadata: { name: string; namespace: string; uid: string; creationTimestamp: string };
  spec: VirtualMachineRestore['spec'];
  origin: 'git' | 'api';
  state: 'InProgress' | 'Waiting' | 'Succeeded' | 'Failed';
  message?: string;
  since: number;
  /** When the wait for the target to stop began. */
  waitingSince?: number;
  restores?: RestoreStatus['restores'];
  restoredAt?: number;
}

export { RESTORE_WAIT_MS };
/** KubeVirt's default failureDeadline. */
export const DEFAULT_SNAPSHOT_DEADLINE_MS = 5 * 60_000;

export class SnapshotWorker {
  private readonly snapshots = new Map<string, SnapshotRecord>();
  private readonly restores = new Map<string, RestoreRecord>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly now: () => number;

  constructor(private readonly opts: SnapshotWorkerOptions) {
    this.now = opts.now ?? Date.now;
  }

  private snapDir(ns: string, name: string): string {
    return join(this.opts.stateDir, 'snapshots', ns, name);
  }

  private get restoreDir(): string {
    return join(this.opts.stateDir, 'restores');
  }

  async start(): Promise<void> {
    const root = join(this.opts.stateDir, 'snapshots');
    await mkdir(root, { recursive: true, mode: 0o750 });
    await mkdir(this.restoreDir, { recursive: true, mode: 0o750 });
    for (const ns of await readdir(root)) {
      for (const name of await readdir(join(root, ns)).catch(() => [] as string[])) {
        const rec = await readFile(join(root, ns, name, 'snapshot.json'), 'utf8').then((t) => JSON.parse(t) as SnapshotRecord, () => undefined);
        if (!rec) continue;
        // Cut short by a stop or crash of up: a copy without its end is no snapshot.
        if (rec.progress.phase === 'InProgress') this.fail(rec, 'virtops up stopped while the snapshot was being taken; take it again');
        this.snapshots.set(`${ns}/${name}`, rec);
      }
    }
    for (const f of await readdir(this.restoreDir)) {
      if (!f.endsWith('.json')) continue;
      const rec = await readFile(join(this.restoreDir, f), 'utf8').then((t) => JSON.parse(t) as RestoreRecord, () => undefined);
      if (rec) this.restores.set(`${rec.metadata.namespace}/${rec.metadata.name}`, rec);
    }
    for (const r of this.restores.values()) if (r.state === 'InProgress' || r.state === 'Waiting') this.enqueue(() => this.runRestore(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.chain.catch(() => undefined);
  }

  /** The applied revision's snapshots and restores: new ones run, those that left git are handled per deletionPolicy. */
  async update(manifests: readonly { apiVersion?: unknown; kind?: unknown; metadata?: unknown; spec?: unknown }[], opts: { prune?: boolean } = {}): Promise<void> {
    const inGit = new Set<string>();
    const restoresInGit = new Set<string>();
    for (const m of manifests) {
      if (m.apiVersion !== SNAPSHOT_API_VERSION) continue;
      const meta = (m.metadata ?? {}) as { name: string; namespace?: string };
      const ns = meta.namespace ?? 'default';
      const key = `${ns}/${meta.name}`;
      if (m.kind === 'VirtualMachineSnapshot') {
        inGit.add(key);
        const known = this.snapshots.get(key);
        if (known) {
          if (known.origin === 'retained') known.origin = 'git';
          continue;
        }
        await this.createSnapshot(ns, meta.name, (m.spec as VirtualMachineSnapshot['spec']), 'git');
      } else if (m.kind === 'VirtualMachineRestore') {
        restoresInGit.add(key);
        if (!this.restores.has(key)) await this.createRestore(ns, meta.name, m.spec as VirtualMachineRestore['spec'], 'git');
      }
    }
    // Only a revision says a manifest left git (none applied yet: a first start, applied.json rebuilt).
    if (opts.prune === false) return;
    for (const [key, rec] of this.snapshots) {
      if (rec.origin !== 'git' || inGit.has(key)) continue;
      if (rec.spec.deletionPolicy === 'Retain') {
        rec.origin = 'retained';
        await this.saveSnapshot(rec);
        this.opts.log.info({ snapshot: key }, 'snapshot left git: kept (deletionPolicy Retain); virtops snapshot delete removes it');
      } else {
        this.enqueue(() => this.removeSnapshot(key));
      }
    }
    for (const [key, rec] of this.restores) {
      if (rec.origin === 'git' && !restoresInGit.has(key) && rec.state !== 'InProgress') {
        this.restores.delete(key);
        await rm(this.restoreFile(rec.metadata.namespace, rec.metadata.name), { force: true });
      }
    }
  }

  /** `virtops snapshot create`: a snapshot of `vm` named `name`. */
  async createSnapshot(namespace: string, name: string, spec: VirtualMachineSnapshot['spec'], origin: Origin = 'api'): Promise<VirtualMachineSnapshot> {
    const key = `${namespace}/${name}`;
    if (this.snapshots.has(key)) throw new UserError(409, `VirtualMachineSnapshot ${key} exists; pick another name (or virtops snapshot delete ${name} first)`);
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) throw new UserError(400, `"${name}" is not a valid snapshot name: use lowercase letters, digits, - and .`);
    const now = this.now();
    const rec: SnapshotRecord = {
      metadata: { name, namespace, uid: randomUUID(), creationTimestamp: new Date(now).toISOString() },
      spec,
      origin,
      progress: { phase: 'InProgress', since: now },
      volumes: [],
    };
    this.snapshots.set(key, rec);
    await this.saveSnapshot(rec);
    this.enqueue(() => this.takeSnapshot(rec));
    return this.snapshotView(rec);
  }

  /** `virtops snapshot delete`: the snapshot and its copies. One still in git is refused. */
  async deleteSnapshot(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const rec = this.snapshots.get(key);
    if (!rec) throw new UserError(404, `VirtualMachineSnapshot ${key} not found; see virtops snapshot list`);
    if (rec.origin === 'git') throw new UserError(409, `VirtualMachineSnapshot ${key} is declared in git: remove its manifest from git to delete it`);
    if (rec.progress.phase === 'InProgress') throw new UserError(409, `VirtualMachineSnapshot ${key} is still being taken; delete it when it ends`);
    await this.removeSnapshot(key);
  }

  /** `virtops snapshot restore`. */
  async createRestore(namespace: string, name: string, spec: VirtualMachineRestore['spec'], origin: 'git' | 'api' = 'api'): Promise<VirtualMachineRestore> {
    const key = `${namespace}/${name}`;
    if (this.restores.has(key)) throw new UserError(409, `VirtualMachineRestore ${key} exists; pick another name`);
    if (!this.snapshots.has(`${namespace}/${spec.virtualMachineSnapshotName}`)) {
      if (origin === 'api') throw new UserError(404, `VirtualMachineSnapshot ${namespace}/${spec.virtualMachineSnapshotName} not found; see virtops snapshot list`);
    }
    const now = this.now();
    const rec: RestoreRecord = {
      metadata: { name, namespace, uid: randomUUID(), creationTimestamp: new Date(now).toISOString() },
      spec,
      origin,
      state: 'InProgress',
      since: now,
    };
    this.restores.set(key, rec);
    await this.saveRestore(rec);
    this.enqueue(() => this.runRestore(rec));
    return this.restoreView(rec);
  }

  listSnapshots(): VirtualMachineSnapshot[] {
    return [...this.snapshots.values()].sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp)).map((r) => this.snapshotView(r));
  }

  listRestores(): VirtualMachineRestore[] {
    return [...this.restores.values()].sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp)).map((r) => this.restoreView(r));
  }

  /** Why `ns/vm` may not start now: a restore into it is running. */
  gate(namespace: string, vmName: string): { reason: string; message: string } | undefined {
    for (const r of this.restores.values()) {
      if (r.metadata.namespace === namespace && r.spec.target.name === vmName && r.state === 'InProgress') {
        return { reason: 'Provisioning', message: `VirtualMachineRestore ${r.metadata.name} is restoring this VM's disks` };
      }
    }
    return undefined;
  }

  // ---- the work ---------------------------------------------------------------------------

  private enqueue(job: () => Promise<void>): void {
    this.chain = this.chain.then(job).catch((err: unknown) => this.opts.log.error({ err }, 'snapshot worker: unexpected failure'));
  }

  private async takeSnapshot(rec: SnapshotRecord): Promise<void> {
    const { namespace: ns, name } = rec.metadata;
    const key = `${ns}/${name}`;
    const dir = this.snapDir(ns, name);
    const deadline = parseDuration(rec.spec.failureDeadline ?? '') ?? DEFAULT_SNAPSHOT_DEADLINE_MS;
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(deadline)]);
    try {
      const state = this.opts.vmState(ns, rec.spec.source.name);
      if (!state) throw new Error(`VirtualMachine ${ns}/${rec.spec.source.name} is not in the applied revision; see virtops get vms`);
      const inst = state.instance;
      rec.volumes = await takeSnapshotCopies({
        namespace: ns, vm: state.vm, ...(inst ? { instance: inst } : {}), pvcDir: this.opts.pvcDir, libvirtUri: this.opts.libvirtUri,
        dir, uid: rec.metadata.uid, signal, now: this.now,
      }, rec.progress);
      rec.vm = structuredClone(state.vm);
      rec.progress.phase = 'Succeeded';
      rec.progress.since = this.now();
      this.opts.log.info({ snapshot: key, vm: rec.spec.source.name, online: rec.progress.online, guestAgent: rec.progress.guestAgent ?? false, volumes: rec.volumes.map((v) => v.name) }, 'snapshot taken');
    } catch (err) {
      const message = signal.aborted && !this.abort.signal.aborted ? `the snapshot did not finish within its failureDeadline (${Math.round(deadline / 1000)} s)` : (err as Error).message;
      this.fail(rec, message);
      // No half snapshot: the copies made so far go, the record (Failed, with why) stays.
      await discardCopies(dir);
      this.opts.log.warn({ snapshot: key, err: message }, 'snapshot failed; the VM and its disks are untouched');
    }
    await this.saveSnapshot(rec).catch((err: unknown) => this.opts.log.error({ err, snapshot: key }, 'recording the snapshot failed'));
    this.opts.onChange?.();
  }

  private fail(rec: SnapshotRecord, message: string): void {
    const now = this.now();
    rec.progress.phase = 'Failed';
    rec.progress.error = { message, at: now };
    rec.progress.since = now;
  }

  private async runRestore(rec: RestoreRecord): Promise<void> {
    if (this.stopped) return;
    const { namespace: ns, name } = rec.metadata;
    const key = `${ns}/${name}`;
    const finish = async (state: RestoreRecord['state'], message?: string): Promise<void> => {
      rec.state = state;
      if (message) rec.message = message;
      else delete rec.message;
      rec.since = this.now();
      await this.saveRestore(rec);
      this.opts.onChange?.();
    };
    try {
      const snap = this.snapshots.get(`${ns}/${rec.spec.virtualMachineSnapshotName}`);
      if (!snap) return await finish('Failed', `VirtualMachineSnapshot ${ns}/${rec.spec.virtualMachineSnapshotName} not found`);
      if (snap.progress.phase === 'InProgress') return this.later(rec, 'the snapshot is still being taken');
      if (snap.progress.phase !== 'Succeeded') return await finish('Failed', `VirtualMachineSnapshot ${snap.metadata.name} is not ready to use (${snap.progress.phase}: ${snap.progress.error?.message ?? ''})`);
      const target = this.opts.vmState(ns, rec.spec.target.name);
      if (target?.instance) {
        rec.waitingSince ??= this.now();
        const d = runningTargetDecision({
          policy: rec.spec.targetReadinessPolicy, target: rec.spec.target.name, waitingSince: rec.waitingSince, now: this.now(), waiting: rec.state === 'Waiting',
          stopHint: `stop it first (virtops stop ${rec.spec.target.name}) or restore with targetReadinessPolicy StopTarget (virtops snapshot restore --stop)`,
        });
        if (d.action === 'fail') return await finish('Failed', d.message);
        if (d.stop) await this.opts.stopVm(ns, rec.spec.target.name);
        if (rec.state !== 'Waiting') await finish('Waiting', d.message);
        return this.later(rec);
      }
      if (rec.state === 'Waiting') await finish('InProgress');
      const plan = planRestore(snap.volumes, target?.vm, { uid: rec.metadata.uid, ...(rec.spec.volumeRestoreOverrides ? { overrides: rec.spec.volumeRestoreOverrides } : {}) });
      if ('error' in plan) return await finish('Failed', plan.error);
      const copied = await restoreCopies({
        namespace: ns, snapshotDir: this.snapDir(ns, snap.metadata.name), snapshotUid: snap.metadata.uid, steps: plan.steps,
        targetExists: target !== undefined, restoreUid: rec.metadata.uid, pvcDir: this.opts.pvcDir, signal: this.abort.signal,
      });
      if ('error' in copied) return await finish('Failed', copied.error);
      const { restores } = copied;
      rec.restores = restores;
      rec.restoredAt = this.now();
      const note = target ? undefined : newVmRestoreNote(rec.spec.target.name, restores);
      await finish('Succeeded', note);
      this.opts.log.info({ restore: key, snapshot: snap.metadata.name, target: rec.spec.target.name, volumes: restores.map((r) => r.volumeName) }, 'restore done');
    } catch (err) {
      if (this.abort.signal.aborted) return;
      await finish('Failed', (err as Error).message);
      this.opts.log.warn({ restore: key, err: (err as Error).message }, 'restore failed');
    }
  }

  /** Looks at a waiting restore again in a second. */
  private later(rec: RestoreRecord, message?: string): void {
    if (message && rec.message !== message) rec.message = message;
    if (this.stopped) return;
    const t = setTimeout(() => this.enqueue(() => this.runRestore(rec)), 1000);
    t.unref();
  }

  private async removeSnapshot(key: string): Promise<void> {
    const rec = this.snapshots.get(key);
    if (!rec) return;
    this.snapshots.delete(key);
    await rm(this.snapDir(rec.metadata.namespace, rec.metadata.name), { recursive: true, force: true });
    this.opts.log.info({ snapshot: key }, 'snapshot deleted');
  }

  private restoreFile(ns: string, name: string): string {
    return join(this.restoreDir, `${ns}_${name}.json`);
  }

  private async saveSnapshot(rec: SnapshotRecord): Promise<void> {
    const dir = this.snapDir(rec.metadata.namespace, rec.metadata.name);
    if (!this.snapshots.has(`${rec.metadata.namespace}/${rec.metadata.name}`)) return;
    await mkdir(dir, { recursive: true, mode: 0o750 });
    await atomicWrite(join(dir, 'snapshot.json'), JSON.stringify(rec));
  }

  private async saveRestore(rec: RestoreRecord): Promise<void> {
    await atomicWrite(this.restoreFile(rec.metadata.namespace, rec.metadata.name), JSON.stringify(rec));
  }

  private snapshotView(rec: SnapshotRecord): VirtualMachineSnapshot {
    return {
      apiVersion: SNAPSHOT_API_VERSION,
      kind: 'VirtualMachineSnapshot',
      metadata: { ...rec.metadata, annotations: { 'virtops.io/origin': rec.origin } },
      spec: rec.spec,
      status: snapshotStatus(rec.progress) satisfies SnapshotStatus,
    };
  }

  private restoreView(rec: RestoreRecord): VirtualMachineRestore {
    return {
      apiVersion: SNAPSHOT_API_VERSION,
      kind: 'VirtualMachineRestore',
      metadata: { ...rec.metadata, annotations: { 'virtops.io/origin': rec.origin } },
      spec: rec.spec,
      status: restoreStatus({ state: rec.state, since: rec.since, ...(rec.message ? { message: rec.message } : {}), ...(rec.restores ? { restores: rec.restores } : {}), ...(rec.restoredAt !== undefined ? { restoredAt: rec.restoredAt } : {}) }),
    };
  }
}

/** A request the API answers with this status and message. */
export class UserError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'UserError';
  }
}

async function atomicWrite(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o640 });
  await rename(tmp, file);
}
