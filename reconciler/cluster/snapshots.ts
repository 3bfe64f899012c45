/**
 * VirtualMachineSnapshots and VirtualMachineRestores (`snapshot.kubevirt.io/v1beta1`) in
 * cluster mode, with the rules `virtops up` runs (api/snapshot.ts for what is copied and the
 * status, reconciler/snapshot-copy.ts for the copies). Two halves:
 *
 * - **node agent** (`SnapshotAgent`, every agent: a VM's claims are files in its node's state
 *   dir, which beside a kubelet the kubelet bind-mounts into the launcher Pod): takes a snapshot for its node by writing `virtops.io/snapshot-node` at
 *   the read resourceVersion (two agents never both take one) when the VM's VMI runs there, or,
 *   for a stopped VM, when every disk of it is on this node. Copies them into
 *   `<state-dir>/snapshots/<ns>/<name>/<volume>.img` (online through a libvirt backup job, the
 *   guest's filesystems frozen when its agent answers: the node's libvirt, or beside a kubelet
 *   the launcher Pod's own daemon, `launcherPodDaemon`; offline a file copy) and writes
 *   KubeVirt's status (phase, readyToUse, indications, Progressing/Ready) through the status
 *   subresource. A failed snapshot keeps no copy and leaves the VM running, its disks only read.
 *   A restore is run by the agent that holds its snapshot: it waits for the target VM to stop
 *   as its targetReadinessPolicy says (StopTarget: a `stop` override on the VM), then copies
 *   the snapshot back over the target's claims. Into a VM that does not exist it makes new
 *   claims on its node (as `up`), published as PVCs bound to local PVs (datavolumes.ts
 *   `publishClaim`) labelled `virtops.io/restore-node`; once such a PVC is deleted and no VMI
 *   here uses it, this agent removes its file and PV. Nothing else is deleted unless asked: a
 *   deleted snapshot's copies go with it (deletionPolicy Delete, the default) or stay (Retain).
 * - **controller** (`RestoreGate`): a VM with an unfinished restore into it is not started.
 */
import { chmod, chown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubernetesObject, V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualMachine, VirtualMachineInstance } from '../../api/kubevirt.js';
import {
  SNAPSHOT_API_VERSION, type RestoreStatus, type SnapshotProgress, type VirtualMachineRestore, type VirtualMachineSnapshot,
  checkSnapshotRules, newVmRestoreNote, parseDuration, planRestore, restoreStatus, snapshotStatus, snapshotVolumes,
} from '../../api/snapshot.js';
import { claimDir, findClaimFile } from '../../launcher/volumes/import.js';
import { OVERRIDE_ANNOTATION, serializeOverride } from '../core/overrides.js';
import { RateLimitedQueue, type ReconcileResult } from '../queue.js';
import { discardCopies, restoreCopies, runningTargetDecision, takeSnapshotCopies, type TakenVolume } from '../snapshot-copy.js';
import { localClaimObjects, publishClaim, type LocalClaimObjects } from './datavolumes.js';
import type { Informer } from './informer.js';
import { errorMessage, isApiError, type KubeClient } from './kube.js';

/** The node whose agent took (and holds the copies of) a snapshot. */
export const SNAPSHOT_NODE_ANNOTATION = 'virtops.io/snapshot-node';
export const SNAPSHOT_PLURAL = 'virtualmachinesnapshots';
export const RESTORE_PLURAL = 'virtualmachinerestores';
export const SNAPSHOT_CRD_NAME = `${SNAPSHOT_PLURAL}.snapshot.kubevirt.io`;
export const RESTORE_CRD_NAME = `${RESTORE_PLURAL}.snapshot.kubevirt.io`;
/** On a restore's new claim (PVC and PV): the node holding its file, whose agent removes it. */
export const RESTORE_NODE_LABEL = 'virtops.io/restore-node';
/** On a restore's new claim (an annotation: names may be longer than a label value): the restore that made it. */
export const RESTORE_ANNOTATION = 'virtops.io/restore';
/** KubeVirt's default failureDeadline. */
export const DEFAULT_SNAPSHOT_DEADLINE_MS = 5 * 60_000;

type Meta = { name: string; namespace?: string; uid?: string; resourceVersion?: string; deletionTimestamp?: string; creationTimestamp?: string; annotations?: Record<string, string> };
export type SnapshotObject = Omit<VirtualMachineSnapshot, 'metadata'> & KubernetesObject & { metadata: Meta };
export type RestoreObject = Omit<VirtualMachineRestore, 'metadata'> & KubernetesObject & { metadata: Meta };

const nsOf = (o: { metadata?: { namespace?: string } }): string => o.metadata?.namespace ?? 'default';

// ---- pure ---------------------------------------------------------------------------------

/**
 * Whether the agent on `me` takes a snapshot: the VM's VMI runs there (its domain is there),
 * or it has no VMI and every disk of it is on this node.
 */
export function takesSnapshot(p: { me: string; vmiNode: string | undefined; hasVmi: boolean; disksHere: boolean }): boolean {
  if (p.hasVmi) return p.vmiNode === p.me;
  return p.disksHere;
}

/** A restore that ended (complete, or failed): nothing more happens to it. */
export function restoreFinished(status: Partial<RestoreStatus> | undefined): boolean {
  if (!status) return false;
  if (status.complete) return true;
  return (status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'False' && c.reason === 'Operation failed');
}

/** Why `ns/vm` may not start: an unfinished restore into it (the controller's gate). */
export function restoreGate(restores: readonly { metadata?: { name?: string; namespace?: string }; spec?: { target?: { name?: string } }; status?: Partial<RestoreStatus> }[], ns: string, vm: string): { reason: string; message: string } | undefined {
  const r = restores.find((x) => nsOf(x) === ns && x.spec?.target?.name === vm && !restoreFinished(x.status));
  return r ? { reason: 'Provisioning', message: `VirtualMachineRestore ${r.metadata?.name ?? ''} is restoring this VM's disks` } : undefined;
}

/** Pure: the status error of a snapshot of running `ns/vm` whose domain the agent cannot reach (`why`). */
export function onlineRefusal(ns: string, vm: string, why: string): string {
  return `VirtualMachine ${ns}/${vm} is running but no online copy can be taken: ${why}; stop it (virtops stop ${vm} -n ${ns} --kubeconfig F, or runStrategy Halted in git), then create the snapshot again (an offline copy); its disks are untouched`;
}

/** Pure: the PV of a restore's new claim (one per restore and volume, a DNS subdomain). */
export function restoredVolumeName(restoreUid: string, volume: string): string {
  return `virtops-restore-${restoreUid}-${volume.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 253).replace(/-+$/, '');
}

/** Pure: a restore's new claim `ns/claim` on `node` as the API shows it (the importer's shape, labelled as the restore's). */
export function restoredClaimObjects(r: { namespace: string; restore: string; restoreUid: string; volume: string; claim: string; node: string; path: string; bytes: bigint }): LocalClaimObjects {
  const labels = { 'app.kubernetes.io/managed-by': 'virtops', [RESTORE_NODE_LABEL]: r.node };
  return localClaimObjects({
    namespace: r.namespace, name: r.claim, pvName: restoredVolumeName(r.restoreUid, r.volume), node: r.node, path: r.path, bytes: r.bytes,
    labels, pvLabels: labels, annotations: { [RESTORE_ANNOTATION]: `${r.namespace}/${r.restore}` },
  });
}

/**
 * Pure: what happens to a restored claim's file and PV (labelled for this node): kept while
 * its PVC exists (the PV's bound claim uid, if the PV was bound, is that PVC's); once the PVC
 * is gone, removed when no VMI here uses the claim, else looked at again.
 */
export function restoredClaimFate(p: { pvcGone: boolean; inUse: boolean }): 'keep' | 'wait' | 'remove' {
  if (!p.pvcGone) return 'keep';
  return p.inUse ? 'wait' : 'remove';
}

/** The libvirt domain of a VMI (launcher/convert/identity.ts). */
export function domainOf(vmi: VirtualMachineInstance): string {
  return `${nsOf(vmi)}_${vmi.metadata.name ?? ''}`;
}

// ---- node agent ---------------------------------------------------------------------------

export interface SnapshotAgentOptions {
  nodeName: string;
  /** `<state-dir>`: copies go to `<state-dir>/snapshots`. */
  stateDir: string;
  /** `<state-dir>/pvcs`: this node's claims. */
  pvcDir: string;
  libvirtUri: string;
  log: Logger;
  /** The VMIs the agent's informer holds (every namespace). */
  vmis: () => readonly VirtualMachineInstance[];
  /** How often to look for the snapshot CRDs until they are installed. @default 10 s */
  probeMs?: number;
  /**
   * Beside a real kubelet: a running VM's domain is under its launcher Pod's own libvirt
   * daemon, not `libvirtUri`. This says how to reach it (kubelet-launchers.ts podDaemon), or
   * why it cannot be reached (the snapshot then fails with that and the fix: stop the VM and
   * take it offline). Unset: online copies through `libvirtUri` (process runtime).
   */
  launcherPodDaemon?: (vmi: VirtualMachineInstance) => Promise<{ libvirtUri: string; vmiDisksDir: string } | { unreachable: string }>;
  /** `ns/claim` of the claims a VMI on this node uses (a restored claim in use is not removed). */
  claimsInUse?: () => Set<string>;
  /**
   * Beside a real kubelet: the launcher Pods' group (synth's LAUNCHER_USER); a restore's new
   * claim gets it as the importer's do (dir root:group 0770, disk.img 0660).
   */
  claimGroup?: number;
  now?: () => number;
}

/** What the node keeps beside a snapshot's copies: `snapshot.json`. */
interface NodeRecord {
  uid: string;
  namespace: string;
  name: string;
  deletionPolicy?: 'Delete' | 'Retain';
  volumes: TakenVolume[];
  vm: VirtualMachine;
}

export class SnapshotAgent {
  private readonly snaps: Informer<SnapshotObject>;
  private readonly restores: Informer<RestoreObject>;
  /** Restores' new claims on this node: their PVCs and PVs. */
  private readonly restoredPvcs: Informer<V1PersistentVolumeClaim & KubernetesObject>;
  private readonly restoredPvs: Informer<V1PersistentVolume & KubernetesObject>;
  /** Restored claims whose PVC went, to remove once unused: `ns/claim` → PV name. */
  private readonly orphans = new Map<string, string>();
  private orphanTimer: NodeJS.Timeout | undefined;
  private readonly queue: RateLimitedQueue;
  /** Snapshots being taken here, by uid. */
  private readonly jobs = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /**
   * Snapshots and restores this agent ran to their end, by uid: the informer's cache lags
   * behind our own status writes, so an older event must not start them again.
   */
  private readonly ended = new Set<string>();
  /** Restores waiting for their target to stop, by uid. */
  private readonly waits = new Map<string, { since: number; asked: boolean; written?: string }>();
  private probeTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly client: KubeClient, private readonly opts: SnapshotAgentOptions) {
    this.now = opts.now ?? Date.now;
    this.queue = new RateLimitedQueue((k) => this.sync(k), {
      concurrency: 2,
      onError: (k, err, retryInMs) => opts.log.warn({ key: k, err: errorMessage(err), retryInMs }, 'snapshot sync failed; retrying with backoff'),
    });
    this.snaps = client.informer<SnapshotObject>(
      { path: `/apis/${SNAPSHOT_API_VERSION}/${SNAPSHOT_PLURAL}`, apiVersion: SNAPSHOT_API_VERSION, kind: 'VirtualMachineSnapshot' },
      (type, s) => {
        if (type === 'delete') void this.forget(s).catch((err: unknown) => opts.log.warn({ snapshot: `${nsOf(s)}/${s.metadata.name}`, err: errorMessage(err) }, 'removing a deleted snapshot\'s copies failed'));
        else this.queue.add(`s/${nsOf(s)}/${s.metadata.name}`);
        // Restores of it may go on now.
        for (const r of this.restores.list()) if (nsOf(r) === nsOf(s) && r.spec.virtualMachineSnapshotName === s.metadata.name) this.queue.add(`r/${nsOf(r)}/${r.metadata.name}`);
      },
      opts.log,
    );
    this.restores = client.informer<RestoreObject>(
      { path: `/apis/${SNAPSHOT_API_VERSION}/${RESTORE_PLURAL}`, apiVersion: SNAPSHOT_API_VERSION, kind: 'VirtualMachineRestore' },
      (type, r) => {
        if (type === 'delete') {
          this.waits.delete(r.metadata.uid ?? '');
          this.ended.delete(r.metadata.uid ?? '');
        }
        else this.queue.add(`r/${nsOf(r)}/${r.metadata.name}`);
      },
      opts.log,
    );
    const selector = `${RESTORE_NODE_LABEL}=${opts.nodeName}`;
    this.restoredPvcs = client.informer<V1PersistentVolumeClaim & KubernetesObject>(
      { path: '/api/v1/persistentvolumeclaims', apiVersion: 'v1', kind: 'PersistentVolumeClaim', labelSelector: selector },
      (type, pvc) => {
        if (type !== 'delete' || !pvc.metadata?.name || !pvc.spec?.volumeName) return;
        this.orphans.set(`${nsOf(pvc)}/${pvc.metadata.name}`, pvc.spec.volumeName);
        void this.reapOrphans();
      },
      opts.log,
    );
    this.restoredPvs = client.informer<V1PersistentVolume & KubernetesObject>(
      { path: '/api/v1/persistentvolumes', apiVersion: 'v1', kind: 'PersistentVolume', labelSelector: selector },
      () => undefined,
      opts.log,
    );
  }

  private get root(): string {
    return join(this.opts.stateDir, 'snapshots');
  }

  private dir(ns: string, name: string): string {
    return join(this.root, ns, name);
  }

  /** Starts once both CRDs exist (probed quietly until then, as the DataVolume importer). */
  start(): void {
    const probe = async (): Promise<void> => {
      if (this.stopped || this.started) return;
      const have = await Promise.all([SNAPSHOT_CRD_NAME, RESTORE_CRD_NAME].map((name) => this.client.read({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } }).catch((err: unknown) => {
        this.opts.log.debug({ err: errorMessage(err) }, 'snapshot CRDs not readable; snapshot agent idle');
        return undefined;
      })));
      if (have.every(Boolean) && !this.stopped) {
        this.started = true;
        this.opts.log.info({ node: this.opts.nodeName }, 'snapshot agent starting');
        await Promise.all([this.snaps.start(), this.restores.start(), this.restoredPvcs.start(), this.restoredPvs.start()]);
        await this.sweep();
        await this.findOrphans();
        for (const s of this.snaps.list()) this.queue.add(`s/${nsOf(s)}/${s.metadata.name}`);
        for (const r of this.restores.list()) this.queue.add(`r/${nsOf(r)}/${r.metadata.name}`);
        return;
      }
      this.probeTimer = setTimeout(() => void probe(), this.opts.probeMs ?? 10_000);
      this.probeTimer.unref();
    };
    void probe().catch((err: unknown) => this.opts.log.error({ err: errorMessage(err) }, 'snapshot agent failed to start'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.probeTimer);
    clearTimeout(this.orphanTimer);
    for (const j of this.jobs.values()) j.abort.abort(new Error('the agent is stopping'));
    await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
    await this.queue.stop();
    await Promise.all([this.snaps.stop(), this.restores.stop(), this.restoredPvcs.stop(), this.restoredPvs.stop()]);
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private async sync(key: string): Promise<ReconcileResult> {
    if (this.stopped) return {};
    const [kind, ns, name] = key.split('/') as ['s' | 'r', string, string];
    return kind === 's' ? this.syncSnapshot(ns, name) : this.syncRestore(ns, name);
  }

  // ---- snapshots ------------------------------------------------------------------------------

  private async syncSnapshot(ns: string, name: string): Promise<ReconcileResult> {
    const snap = this.snaps.get(name, ns);
    if (!snap || snap.metadata.deletionTimestamp || !snap.metadata.uid) return {};
    const phase = snap.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return {};
    const node = snap.metadata.annotations?.[SNAPSHOT_NODE_ANNOTATION];
    if (node && node !== this.opts.nodeName) return {};
    if (this.jobs.has(snap.metadata.uid) || this.ended.has(snap.metadata.uid)) return {};
    if (node) {
      // Ours, InProgress, and no job here: this agent stopped while taking it.
      if (phase === 'InProgress') await this.writeSnapshotStatus(snap, { phase: 'Failed', since: this.now(), error: { message: 'the node agent stopped while the snapshot was being taken; take it again', at: this.now() } });
      else this.begin(snap);
      return {};
    }
    const issues = checkSnapshotRules(snap as unknown as Record<string, unknown>);
    if (issues.length) {
      const message = issues.map((i) => `${i.path}: ${i.message}${i.fix ? ` (fix: ${i.fix})` : ''}`).join('; ');
      await this.writeSnapshotStatus(snap, { phase: 'Failed', since: this.now(), error: { message, at: this.now() } });
      return {};
    }
    const vm = await this.readVm(ns, snap.spec.source.name);
    if (!vm) {
      await this.writeSnapshotStatus(snap, { phase: 'Failed', since: this.now(), error: { message: `VirtualMachine ${ns}/${snap.spec.source.name} not found; see virtops get vms`, at: this.now() } });
      return {};
    }
    const vmi = this.vmiOf(ns, snap.spec.source.name);
    if (!takesSnapshot({ me: this.opts.nodeName, vmiNode: vmi?.status?.nodeName, hasVmi: vmi !== undefined, disksHere: await this.disksHere(ns, vm) })) {
      // A VMI not placed yet: look again soon; else another node's agent takes it.
      return vmi && !vmi.status?.nodeName ? { requeueAfterMs: 2000 } : {};
    }
    try {
      await this.client.mergePatch(snap, { metadata: { resourceVersion: snap.metadata.resourceVersion, annotations: { [SNAPSHOT_NODE_ANNOTATION]: this.opts.nodeName } } });
      this.opts.log.info({ snapshot: `${ns}/${name}` }, 'snapshot taken for this node');
    } catch (err) {
      if (!isApiError(err, 409) && (err as { code?: number }).code !== 409) throw err;
    }
    return {}; // the informer's update brings it back
  }

  /** Every claim and hostDisk of `vm` is on this node. */
  private async disksHere(ns: string, vm: VirtualMachine): Promise<boolean> {
    const { included } = snapshotVolumes(vm.spec.template.spec.volumes);
    if (!included.length) return false;
    for (const v of included) {
      const ok = v.kind === 'claim' ? await findClaimFile(this.opts.pvcDir, ns, v.claim).then(() => true, () => false) : await stat(v.path).then(() => true, () => false);
      if (!ok) return false;
    }
    return true;
  }

  private begin(snap: SnapshotObject): void {
    const ns = nsOf(snap);
    const { name } = snap.metadata;
    const uid = snap.metadata.uid!;
    const key = `${ns}/${name}`;
    const abort = new AbortController();
    const deadline = parseDuration(snap.spec.failureDeadline ?? '') ?? DEFAULT_SNAPSHOT_DEADLINE_MS;
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(deadline)]);
    const progress: SnapshotProgress = { phase: 'InProgress', since: this.now() };
    const dir = this.dir(ns, name);
    const done = (async () => {
      let mine = false;
      try {
        await this.writeSnapshotStatus(snap, progress);
        const other = await this.readRecord(ns, name);
        if (other && other.uid !== uid) throw new Error(`copies of an earlier snapshot named ${name} (uid ${other.uid}, kept by deletionPolicy Retain) are in ${dir} on node ${this.opts.nodeName}: remove that dir, or pick another name`);
        mine = true;
        const vm = await this.readVm(ns, snap.spec.source.name);
        if (!vm) throw new Error(`VirtualMachine ${ns}/${snap.spec.source.name} not found; see virtops get vms`);
        const vmi = this.vmiOf(ns, snap.spec.source.name);
        if (vmi && vmi.status?.nodeName !== this.opts.nodeName) throw new Error(`VirtualMachine ${ns}/${snap.spec.source.name} runs on node ${vmi.status?.nodeName ?? '(none yet)'}, not on ${this.opts.nodeName} where this snapshot was taken; take it again`);
        let libvirtUri = this.opts.libvirtUri;
        let pod: { vmiDisksDir: string } | undefined;
        if (vmi && this.opts.launcherPodDaemon) {
          const d = await this.opts.launcherPodDaemon(vmi);
          if ('unreachable' in d) throw new Error(onlineRefusal(ns, snap.spec.source.name, d.unreachable));
          libvirtUri = d.libvirtUri;
          pod = { vmiDisksDir: d.vmiDisksDir };
        }
        const instance = vmi ? { domain: domainOf(vmi), running: vmi.status?.phase === 'Running' } : undefined;
        const volumes = await takeSnapshotCopies({
          namespace: ns, vm, ...(instance ? { instance } : {}), pvcDir: this.opts.pvcDir, libvirtUri, ...(pod ? { pod } : {}), dir, uid, signal, now: this.now,
        }, progress);
        await this.writeRecord({ uid, namespace: ns, name, ...(snap.spec.deletionPolicy ? { deletionPolicy: snap.spec.deletionPolicy } : {}), volumes, vm });
        progress.phase = 'Succeeded';
        progress.since = this.now();
        this.opts.log.info({ snapshot: key, vm: snap.spec.source.name, online: progress.online, guestAgent: progress.guestAgent ?? false, volumes: volumes.map((v) => v.name) }, 'snapshot taken');
      } catch (err) {
        const message = signal.aborted && !abort.signal.aborted ? `the snapshot did not finish within its failureDeadline (${Math.round(deadline / 1000)} s)` : (err as Error).message;
        progress.phase = 'Failed';
        progress.error = { message, at: this.now() };
        progress.since = this.now();
        // No half snapshot: nothing of it stays on the node (the status says why).
        if (mine) {
          await discardCopies(dir);
          await rm(dir, { recursive: true, force: true });
        }
        this.opts.log.warn({ snapshot: key, err: message }, 'snapshot failed; the VM and its disks are untouched');
      }
      if (abort.signal.aborted && this.stopped) return; // the next agent says it failed
      this.ended.add(uid);
      this.jobs.delete(uid);
      await this.writeSnapshotStatus(snap, progress).catch((err: unknown) => this.opts.log.warn({ snapshot: key, err: errorMessage(err) }, 'writing the snapshot status failed'));
    })();
    this.jobs.set(uid, { abort, done });
  }

  /** A deleted snapshot: its copies go (deletionPolicy Delete, the default) or stay (Retain). */
  private async forget(snap: SnapshotObject): Promise<void> {
    this.ended.delete(snap.metadata.uid ?? '');
    if (snap.metadata.annotations?.[SNAPSHOT_NODE_ANNOTATION] !== this.opts.nodeName) return;
    const ns = nsOf(snap);
    const job = this.jobs.get(snap.metadata.uid ?? '');
    job?.abort.abort(new Error('the snapshot was deleted'));
    await job?.done.catch(() => undefined);
    const rec = await this.readRecord(ns, snap.metadata.name);
    if (!rec || rec.uid !== snap.metadata.uid) return;
    if (snap.spec.deletionPolicy === 'Retain') {
      this.opts.log.info({ snapshot: `${ns}/${snap.metadata.name}`, dir: this.dir(ns, snap.metadata.name) }, 'snapshot deleted: its copies are kept (deletionPolicy Retain)');
      return;
    }
    await rm(this.dir(ns, snap.metadata.name), { recursive: true, force: true });
    this.opts.log.info({ snapshot: `${ns}/${snap.metadata.name}` }, 'snapshot deleted: its copies are removed');
  }

  /** Copies of snapshots deleted while this agent was down (deletionPolicy Delete) go. */
  private async sweep(): Promise<void> {
    const uids = new Set(this.snaps.list().map((s) => s.metadata.uid));
    for (const ns of await readdir(this.root).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.root, ns)).catch(() => [] as string[])) {
        const rec = await this.readRecord(ns, name);
        if (!rec || uids.has(rec.uid) || rec.deletionPolicy === 'Retain') continue;
        await rm(this.dir(ns, name), { recursive: true, force: true });
        this.opts.log.info({ snapshot: `${ns}/${name}` }, 'snapshot deleted while the agent was down: its copies are removed');
      }
    }
  }

  private async writeSnapshotStatus(snap: SnapshotObject, progress: SnapshotProgress): Promise<void> {
    if (this.stopped) return;
    if (progress.phase !== 'InProgress') this.ended.add(snap.metadata.uid ?? '');
    await this.client.patchCustomStatus(SNAPSHOT_PLURAL, nsOf(snap), snap.metadata.name, snapshotStatus(progress));
  }

  // ---- restores -------------------------------------------------------------------------------

  private async syncRestore(ns: string, name: string): Promise<ReconcileResult> {
    const r = this.restores.get(name, ns);
    if (!r || r.metadata.deletionTimestamp || !r.metadata.uid || restoreFinished(r.status) || this.ended.has(r.metadata.uid)) return {};
    const snap = this.snaps.get(r.spec.virtualMachineSnapshotName, ns);
    const node = snap?.metadata.annotations?.[SNAPSHOT_NODE_ANNOTATION];
    if (node !== undefined && node !== this.opts.nodeName) return {};
    if (!snap) {
      // Every agent may say so; they all say the same.
      const issues = checkSnapshotRules(r as unknown as Record<string, unknown>);
      const message = issues.length ? issues.map((i) => `${i.path}: ${i.message}${i.fix ? ` (fix: ${i.fix})` : ''}`).join('; ') : `VirtualMachineSnapshot ${ns}/${r.spec.virtualMachineSnapshotName} not found; see kubectl get vmsnapshots -n ${ns}`;
      await this.writeRestoreStatus(r, { state: 'Failed', message, since: this.now() });
      return {};
    }
    if (snap.status?.phase === 'Failed') {
      // (A snapshot no node took fails on every agent alike, so each may say so.)
      await this.writeRestoreStatus(r, { state: 'Failed', message: `VirtualMachineSnapshot ${snap.metadata.name} is not ready to use (Failed: ${snap.status.error?.message ?? ''})`, since: this.now() });
      return {};
    }
    if (!node) return { requeueAfterMs: 1000 }; // no node took the snapshot yet
    if (snap.status?.phase !== 'Succeeded') return { requeueAfterMs: 1000 }; // still being taken
    const rec = await this.readRecord(ns, snap.metadata.name);
    if (!rec || rec.uid !== snap.metadata.uid) {
      await this.writeRestoreStatus(r, { state: 'Failed', message: `the copies of VirtualMachineSnapshot ${snap.metadata.name} are not in ${this.dir(ns, snap.metadata.name)} on node ${this.opts.nodeName}`, since: this.now() });
      return {};
    }
    const targetName = r.spec.target.name;
    const target = await this.readVm(ns, targetName);
    if (!target) return this.restoreIntoNewVm(r, snap, rec);
    const uid = r.metadata.uid;
    const vmi = this.vmiOf(ns, targetName);
    if (vmi) {
      const w = this.waits.get(uid) ?? { since: this.now(), asked: false };
      this.waits.set(uid, w);
      const d = runningTargetDecision({
        policy: r.spec.targetReadinessPolicy, target: targetName, waitingSince: w.since, now: this.now(), waiting: w.asked,
        stopHint: `stop it first (virtops stop ${targetName} --kubeconfig F, or runStrategy Halted in git) or restore with targetReadinessPolicy StopTarget`,
      });
      if (d.action === 'fail') {
        this.waits.delete(uid);
        await this.writeRestoreStatus(r, { state: 'Failed', message: d.message, since: this.now() });
        return {};
      }
      if (d.stop) {
        // The VM's `stop` override (as `virtops stop`), guarded by its uid; it holds until `virtops start` or a commit changing the VM.
        await this.client.mergePatch({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: targetName, namespace: ns } }, { metadata: { uid: target.metadata.uid, annotations: { [OVERRIDE_ANNOTATION]: serializeOverride({ action: 'stop', at: this.now(), revision: 'unknown' }) } } });
        this.opts.log.info({ restore: `${ns}/${name}`, vm: targetName }, 'restore: asked the target VM to stop (StopTarget)');
      }
      w.asked = true;
      if (w.written !== d.message) {
        await this.writeRestoreStatus(r, { state: 'Waiting', message: d.message, since: this.now() });
        w.written = d.message;
      }
      return { requeueAfterMs: 1000 };
    }
    this.waits.delete(uid);
    await this.writeRestoreStatus(r, { state: 'InProgress', since: this.now() });
    const plan = planRestore(rec.volumes, target, { uid, ...(r.spec.volumeRestoreOverrides ? { overrides: r.spec.volumeRestoreOverrides } : {}) });
    if ('error' in plan) {
      await this.writeRestoreStatus(r, { state: 'Failed', message: plan.error, since: this.now() });
      return {};
    }
    // Another VM's claims must be on this node too (the snapshot's copies are here).
    for (const s of plan.steps) {
      if (s.kind === 'claim' && !(await findClaimFile(this.opts.pvcDir, ns, s.claim).then(() => true, () => false))) {
        await this.writeRestoreStatus(r, { state: 'Failed', message: `claim ${ns}/${s.claim} (volume ${s.volume} of ${targetName}) is not on node ${this.opts.nodeName}, where the snapshot's copies are`, since: this.now() });
        return {};
      }
    }
    try {
      const copied = await restoreCopies({ namespace: ns, snapshotDir: this.dir(ns, snap.metadata.name), snapshotUid: snap.metadata.uid!, steps: plan.steps, targetExists: true, restoreUid: uid, pvcDir: this.opts.pvcDir, signal: AbortSignal.timeout(60 * 60_000) });
      if ('error' in copied) {
        await this.writeRestoreStatus(r, { state: 'Failed', message: copied.error, since: this.now() });
        return {};
      }
      const t = this.now();
      await this.writeRestoreStatus(r, { state: 'Succeeded', since: t, restores: copied.restores, restoredAt: t });
      this.opts.log.info({ restore: `${ns}/${name}`, snapshot: snap.metadata.name, target: targetName, volumes: copied.restores.map((x) => x.volumeName) }, 'restore done');
    } catch (err) {
      await this.writeRestoreStatus(r, { state: 'Failed', message: (err as Error).message, since: this.now() });
      this.opts.log.warn({ restore: `${ns}/${name}`, err: (err as Error).message }, 'restore failed');
    }
    return {};
  }

  /**
   * Into a VM that does not exist (as `up`): each snapshot volume into a new claim on this node,
   * published as a PVC bound to a local PV here; the user adds the VM to git with them.
   */
  private async restoreIntoNewVm(r: RestoreObject, snap: SnapshotObject, rec: NodeRecord): Promise<ReconcileResult> {
    const ns = nsOf(r);
    const targetName = r.spec.target.name;
    const uid = r.metadata.uid!;
    await this.writeRestoreStatus(r, { state: 'InProgress', since: this.now() });
    const plan = planRestore(rec.volumes, undefined, { uid, ...(r.spec.volumeRestoreOverrides ? { overrides: r.spec.volumeRestoreOverrides } : {}) });
    if ('error' in plan) {
      await this.writeRestoreStatus(r, { state: 'Failed', message: plan.error, since: this.now() });
      return {};
    }
    const claims = plan.steps.flatMap((s) => (s.kind === 'claim' ? [{ volume: s.volume, claim: s.claim }] : []));
    // A PVC of that name anywhere (another node's claim) is never shadowed; one bound to this
    // restore's own PV is from an earlier run of it cut short (an agent restart), taken over.
    const ownPvc = async (c: { volume: string; claim: string }): Promise<boolean | undefined> => {
      const pvc = await this.client.read<V1PersistentVolumeClaim & KubernetesObject>({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: c.claim, namespace: ns } });
      return pvc ? pvc.spec?.volumeName === restoredVolumeName(uid, c.volume) : undefined;
    };
    for (const c of claims) {
      if ((await ownPvc(c)) === false) {
        await this.writeRestoreStatus(r, { state: 'Failed', message: `PersistentVolumeClaim ${ns}/${c.claim} exists already: name another with volumeRestoreOverrides restoreName (virtops snapshot restore --target NEW)`, since: this.now() });
        return {};
      }
    }
    try {
      const copied = await restoreCopies({ namespace: ns, snapshotDir: this.dir(ns, snap.metadata.name), snapshotUid: snap.metadata.uid!, steps: plan.steps, targetExists: false, restoreUid: uid, pvcDir: this.opts.pvcDir, signal: AbortSignal.timeout(60 * 60_000) });
      if ('error' in copied) {
        await this.writeRestoreStatus(r, { state: 'Failed', message: copied.error, since: this.now() });
        return {};
      }
      for (const c of claims) {
        const dir = claimDir(this.opts.pvcDir, ns, c.claim);
        const file = await findClaimFile(this.opts.pvcDir, ns, c.claim);
        if (this.opts.claimGroup !== undefined) {
          // As the importer leaves a claim: kubelet-run launcher Pods (group 107) open it.
          await chown(dir, -1, this.opts.claimGroup);
          await chmod(dir, 0o770);
          await chown(file, -1, this.opts.claimGroup);
          await chmod(file, 0o660);
        }
        const objs = restoredClaimObjects({ namespace: ns, restore: r.metadata.name, restoreUid: uid, volume: c.volume, claim: c.claim, node: this.opts.nodeName, path: dir, bytes: BigInt((await stat(file)).size) });
        if (!(await publishClaim(this.client, objs)) && !(await ownPvc(c))) throw new Error(`PersistentVolumeClaim ${ns}/${c.claim} was created by someone else meanwhile: name another with volumeRestoreOverrides restoreName`);
      }
      const t = this.now();
      await this.writeRestoreStatus(r, { state: 'Succeeded', message: newVmRestoreNote(targetName, copied.restores), since: t, restores: copied.restores, restoredAt: t });
      this.opts.log.info({ restore: `${ns}/${r.metadata.name}`, snapshot: snap.metadata.name, target: targetName, claims: claims.map((c) => c.claim) }, 'restore into a new VM done: its claims are published');
    } catch (err) {
      // Nothing half: the new claims' files and PVs go (a PVC made already is reaped once
      // deleted). They are this restore's: restoreCopies refused before copying if one existed.
      for (const c of claims) {
        await this.client.delete({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: restoredVolumeName(uid, c.volume) } }).catch(() => undefined);
        await rm(claimDir(this.opts.pvcDir, ns, c.claim), { recursive: true, force: true });
      }
      await this.writeRestoreStatus(r, { state: 'Failed', message: (err as Error).message, since: this.now() });
      this.opts.log.warn({ restore: `${ns}/${r.metadata.name}`, err: (err as Error).message }, 'restore into a new VM failed');
    }
    return {};
  }

  // ---- restored claims ------------------------------------------------------------------------

  /** At start: restored PVs here whose bound PVC went while the agent was down. */
  private async findOrphans(): Promise<void> {
    for (const pv of this.restoredPvs.list()) {
      const ref = pv.spec?.claimRef;
      if (!ref?.name || !ref.uid || !pv.metadata?.name) continue; // never bound: its PVC's delete event (or the user) decides
      const pvc = this.restoredPvcs.get(ref.name, ref.namespace ?? 'default');
      if (pvc?.metadata?.uid === ref.uid) continue;
      this.orphans.set(`${ref.namespace ?? 'default'}/${ref.name}`, pv.metadata.name);
    }
    await this.reapOrphans();
  }

  /** Restored claims whose PVC went: file and PV removed once no VMI here uses them. */
  private async reapOrphans(): Promise<void> {
    if (this.stopped || !this.orphans.size) return;
    const inUse = this.opts.claimsInUse?.() ?? new Set<string>();
    for (const [key, pvName] of [...this.orphans]) {
      const [ns, claim] = key.split('/') as [string, string];
      // The authoritative read: a PVC of that name again (re-created) keeps the claim.
      const pvc = await this.client.read({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claim, namespace: ns } }).then((x) => (x ? 'there' : 'gone'), () => 'unknown');
      if (pvc === 'unknown') continue; // looked at again in 2 s
      const fate = restoredClaimFate({ pvcGone: pvc === 'gone', inUse: inUse.has(key) });
      if (fate === 'wait') continue;
      this.orphans.delete(key);
      if (fate === 'keep') continue;
      try {
        await rm(claimDir(this.opts.pvcDir, ns, claim), { recursive: true, force: true });
        await this.client.delete({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: pvName } });
        this.opts.log.info({ claim: key, pv: pvName }, 'restored claim\'s PVC deleted: its file and PV are removed');
      } catch (err) {
        this.orphans.set(key, pvName);
        this.opts.log.warn({ claim: key, err: errorMessage(err) }, 'removing a restored claim failed; retrying');
      }
    }
    if (this.orphans.size && !this.orphanTimer && !this.stopped) {
      this.orphanTimer = setTimeout(() => {
        this.orphanTimer = undefined;
        void this.reapOrphans();
      }, 2000);
      this.orphanTimer.unref();
    }
  }

  private async writeRestoreStatus(r: RestoreObject, p: Parameters<typeof restoreStatus>[0]): Promise<void> {
    if (this.stopped) return;
    if (p.state === 'Succeeded' || p.state === 'Failed') this.ended.add(r.metadata.uid ?? '');
    await this.client.patchCustomStatus(RESTORE_PLURAL, nsOf(r), r.metadata.name, restoreStatus(p));
  }

  // ---- helpers --------------------------------------------------------------------------------

  private async readVm(ns: string, name: string): Promise<VirtualMachine | undefined> {
    return this.client.read<VirtualMachine & KubernetesObject>({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace: ns } });
  }

  private vmiOf(ns: string, name: string): VirtualMachineInstance | undefined {
    return this.opts.vmis().find((v) => nsOf(v) === ns && v.metadata.name === name);
  }

  private async readRecord(ns: string, name: string): Promise<NodeRecord | undefined> {
    return readFile(join(this.dir(ns, name), 'snapshot.json'), 'utf8').then((t) => JSON.parse(t) as NodeRecord, () => undefined);
  }

  private async writeRecord(rec: NodeRecord): Promise<void> {
    const dir = this.dir(rec.namespace, rec.name);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const tmp = join(dir, `snapshot.json.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o640 });
    await rename(tmp, join(dir, 'snapshot.json'));
  }
}

// ---- controller ---------------------------------------------------------------------------

export interface RestoreGateOptions {
  log: Logger;
  /** A restore into this VM changed: look at the VM again. */
  enqueueVm: (key: string) => void;
}

/** The controller's half: a VM with an unfinished restore into it is not started. */
export class RestoreGate {
  private readonly restores: Informer<RestoreObject>;
  private started: Promise<void> | undefined;

  constructor(client: KubeClient, opts: RestoreGateOptions) {
    this.restores = client.informer<RestoreObject>(
      { path: `/apis/${SNAPSHOT_API_VERSION}/${RESTORE_PLURAL}`, apiVersion: SNAPSHOT_API_VERSION, kind: 'VirtualMachineRestore' },
      (_t, r) => {
        if (r.spec?.target?.name) opts.enqueueVm(`${nsOf(r)}/${r.spec.target.name}`);
      },
      opts.log,
    );
    this.log = opts.log;
  }

  private readonly log: Logger;

  /** Starts the informer (idempotent): once git ships the restore CRD or has a restore. */
  start(): void {
    this.started ??= this.restores.start();
    this.started.catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'VirtualMachineRestore informer failed to start'));
  }

  async stop(): Promise<void> {
    await this.restores.stop();
  }

  gate(vm: VirtualMachine): { reason: string; message: string } | undefined {
    if (!this.started) return undefined;
    return restoreGate(this.restores.list(), nsOf(vm), vm.metadata.name ?? '');
  }
}
