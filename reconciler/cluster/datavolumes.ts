/**
 * DataVolumes (`cdi.kubevirt.io/v1beta1`) in cluster mode, without CDI: the "documented
 * equivalent" of a PVC filled by a populator Pod (see README.md, "DataVolumes"). Two halves:
 *
 * - **controller** (`DataVolumeGate`, in `virtops controller`): creates the DataVolumes of a VM's
 *   `dataVolumeTemplates` (owned by the VM, as KubeVirt does) and tells the VM controller
 *   whether a VM may start: api/datavolume.ts `volumeGate` over the DataVolumes' status on the
 *   API server (WaitingForVolumeBinding while no node took it, Provisioning while importing,
 *   DataVolumeError once it failed).
 * - **node agent** (`DataVolumeImporter`, in `virtops agent`): takes a DataVolume for its node
 *   (annotation `virtops.io/import-node`, written at the read resourceVersion so two agents
 *   never both take one), fills `<state-dir>/pvcs/<ns>/<name>/disk.img` once with
 *   launcher/volumes/import.ts (the one import: HTTP with checksum, registry, clone, blank) and
 *   writes CDI's status (phase, progress, restartCount, conditions: api/datavolume.ts
 *   `dataVolumeStatus`, the same rules `virtops up` shows) through the status subresource.
 *   A failed attempt is retried with `importBackoffMs` (CDI restarts its importer Pod so).
 *
 * The claim is a file on that node: the node that imported it is where the VM must run
 * (one node in the tests; see README.md for what several nodes would need). Beside a real
 * kubelet the claim's dir is the `local` PV's path, which the kubelet bind-mounts into the
 * launcher Pod; the agent gives it the launcher Pods' group (`claimGroup`).
 */
import { rm } from 'node:fs/promises';
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  CDI_API_VERSION, CHECKSUM_ANNOTATION, type DataVolume, type DataVolumeSpec, type DataVolumeStatus, type ImportPlan, type ImportRecord,
  dataVolumeStatus, planImport, recordAttemptFailed, recordAttemptStarted, recordAttemptSucceeded, volumeGate,
} from '../../api/datavolume.js';
import type { VirtualMachine } from '../../api/kubevirt.js';
import { claimDir, runImport } from '../../launcher/volumes/import.js';
import type { ImageStore } from '../../launcher/volumes/image-store.js';
import { canonicalJson } from '../core/index.js';
import { RateLimitedQueue, type ReconcileResult } from '../queue.js';
import type { Informer } from './informer.js';
import { errorMessage, isApiError, type KubeClient } from './kube.js';

export const DATAVOLUME_PLURAL = 'datavolumes';
export const DATAVOLUME_CRD_NAME = 'datavolumes.cdi.kubevirt.io';
/** The node whose agent imports (and so holds) the DataVolume's claim. */
export const IMPORT_NODE_ANNOTATION = 'virtops.io/import-node';
const DV_PATH = `/apis/${CDI_API_VERSION}/${DATAVOLUME_PLURAL}`;

type DvObject = DataVolume & KubernetesObject & { metadata: DataVolume['metadata'] & { uid?: string; resourceVersion?: string; deletionTimestamp?: string } };

// The DataVolume CRD itself ships with virtops' others (synth/crds.ts DATAVOLUME_CRD, in
// dist/crds.k8s.yaml): the agent's importer waits until it is readable.

const nsOf = (o: { metadata?: { namespace?: string } }): string => o.metadata?.namespace ?? 'default';

/** Pure: the volumes of a VM that name claims (the ones a DataVolume may fill). */
export function claimVolumes(vm: VirtualMachine): { name: string; dataVolume?: { name: string }; persistentVolumeClaim?: { claimName: string } }[] {
  return (vm.spec?.template?.spec?.volumes ?? []).filter((v) => v.dataVolume || v.persistentVolumeClaim);
}

/** Pure: the DataVolume a VM's `dataVolumeTemplates[i]` makes (in the VM's namespace, controlled by the VM). */
export function dataVolumeFromTemplate(vm: VirtualMachine, template: { metadata?: DataVolume['metadata']; spec?: DataVolumeSpec }): DataVolume {
  const meta = template.metadata ?? { name: '' };
  return {
    apiVersion: CDI_API_VERSION,
    kind: 'DataVolume',
    metadata: {
      name: meta.name,
      namespace: nsOf(vm),
      ...(meta.labels ? { labels: meta.labels } : {}),
      ...(meta.annotations ? { annotations: meta.annotations } : {}),
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: vm.metadata.name ?? '', ...(vm.metadata.uid ? { uid: vm.metadata.uid } : {}), controller: true, blockOwnerDeletion: true } as never],
    },
    spec: template.spec ?? {},
  };
}

/** Pure: the status the gate reads for a DataVolume (none written yet: Pending, no node took it). */
export function observedStatus(dv: { metadata: { name: string }; status?: Partial<DataVolumeStatus> } | undefined): DataVolumeStatus | undefined {
  if (!dv) return undefined;
  const st = dv.status;
  if (!st?.phase) return { phase: 'Pending', progress: 'N/A', claimName: dv.metadata.name, conditions: [] };
  return { phase: st.phase, progress: st.progress ?? 'N/A', claimName: st.claimName ?? dv.metadata.name, conditions: st.conditions ?? [], ...(st.restartCount !== undefined ? { restartCount: st.restartCount } : {}) };
}

/**
 * Pure: a template's DataVolume differs from the one on the API server in what the import
 * reads (spec, checksum annotation), the VM controls it, and it has not succeeded (a
 * Succeeded DataVolume is never imported again, as on a single host).
 */
export function templateChanged(have: { metadata: DataVolume['metadata']; spec: DataVolumeSpec; status?: Partial<DataVolumeStatus> }, want: DataVolume, vmUid: string | undefined): boolean {
  if (have.status?.phase === 'Succeeded') return false;
  const owner = have.metadata.ownerReferences?.find((o) => o.controller);
  if (!owner || owner.kind !== 'VirtualMachine' || (vmUid && owner.uid !== vmUid)) return false;
  const read = (d: { metadata: DataVolume['metadata']; spec: DataVolumeSpec }) => canonicalJson({ spec: d.spec, checksum: d.metadata.annotations?.[CHECKSUM_ANNOTATION] ?? null });
  return read(have) !== read(want);
}

/** The PersistentVolume that makes a node's claim file visible to the scheduler (one per DataVolume). */
export function claimVolumeName(dvUid: string): string {
  return `virtops-dv-${dvUid}`;
}

/**
 * Pure: the PersistentVolumeClaim (named as the DataVolume, owned by it, as CDI's) and the
 * pre-bound `local` PersistentVolume on `node` (path: the claim's directory) that stand for a
 * claim file. The launcher Pod mounts the claim (synth renders a persistentVolumeClaim
 * volume), so the scheduler's volume binding puts it on the node holding the file: the PV's
 * node affinity is that pin.
 */
export function claimObjects(dv: { metadata: { name: string; namespace?: string; uid?: string } }, opts: { node: string; path: string; bytes?: bigint }): LocalClaimObjects {
  const ns = nsOf(dv);
  const uid = dv.metadata.uid ?? '';
  const labels = { 'app.kubernetes.io/managed-by': 'virtops', 'virtops.io/datavolume': dv.metadata.name };
  return localClaimObjects({
    namespace: ns, name: dv.metadata.name, pvName: claimVolumeName(uid), ...opts, labels, pvLabels: { ...labels, 'virtops.io/datavolume-namespace': ns },
    ownerReferences: [{ apiVersion: CDI_API_VERSION, kind: 'DataVolume', name: dv.metadata.name, uid, controller: true, blockOwnerDeletion: true }],
  });
}

export type LocalClaimObjects = { pv: KubernetesObject & Record<string, unknown>; pvc: KubernetesObject & Record<string, unknown> };

/**
 * Pure: the one shape of a node's claim file as the API shows it (the importer's DataVolume
 * claims, a restore's new claims): PVC `namespace/name` pre-bound to PV `pvName`, `local` at
 * `path` with node affinity to `node`, reclaim Retain (the agent holding the file removes both).
 */
export function localClaimObjects(c: {
  namespace: string; name: string; pvName: string; node: string; path: string; bytes?: bigint;
  labels: Record<string, string>; pvLabels: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: V1OwnerReference[];
}): LocalClaimObjects {
  // A size is required on both; CDI's storage API may leave it to the image: 1 Mi stands in (a local PV's capacity is only a label).
  const storage = String(c.bytes ?? 1024n * 1024n);
  return {
    pv: {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: c.pvName, labels: c.pvLabels, ...(c.annotations ? { annotations: c.annotations } : {}) },
      spec: {
        capacity: { storage },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        volumeMode: 'Filesystem',
        local: { path: c.path },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [c.node] }] }] } },
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: c.namespace, name: c.name },
      },
    },
    pvc: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: c.name, namespace: c.namespace, labels: c.labels, ...(c.annotations ? { annotations: c.annotations } : {}), ...(c.ownerReferences ? { ownerReferences: c.ownerReferences } : {}) },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } }, storageClassName: '', volumeMode: 'Filesystem', volumeName: c.pvName },
    },
  };
}

/**
 * Publishes a claim file (localClaimObjects): the PV, then the PVC. Idempotent: AlreadyExists
 * is fine. Returns whether the PVC was created now (false: one of that name existed).
 */
export async function publishClaim(client: Pick<KubeClient, 'create'>, objs: LocalClaimObjects): Promise<boolean> {
  await client.create(objs.pv);
  return (await client.create(objs.pvc)) !== undefined;
}

// ---- controller side -------------------------------------------------------------------------

export interface DataVolumeGateOptions {
  log: Logger;
  /** The VMs (the VM controller's cache): the ones using a DataVolume that changed are looked at again. */
  vms: () => readonly VirtualMachine[];
  enqueueVm: (key: string) => void;
}

export class DataVolumeGate {
  private readonly dvs: Informer<DvObject>;
  private started: Promise<void> | undefined;
  private synced = false;

  constructor(private readonly client: KubeClient, private readonly opts: DataVolumeGateOptions) {
    this.dvs = client.informer<DvObject>(
      { path: DV_PATH, apiVersion: CDI_API_VERSION, kind: 'DataVolume' },
      (_t, dv) => this.enqueueUsers(nsOf(dv), dv.metadata?.name ?? ''),
      opts.log,
    );
  }

  /** Starts the informer (idempotent); the controller calls it once git has a DataVolume or a VM using one. */
  start(): void {
    this.started ??= this.dvs.start().then(() => {
      this.synced = true;
      for (const vm of this.opts.vms()) if (claimVolumes(vm).length) this.opts.enqueueVm(`${nsOf(vm)}/${vm.metadata.name}`);
    });
    this.started.catch((err: unknown) => this.opts.log.error({ err: errorMessage(err) }, 'DataVolume informer failed to start'));
  }

  async stop(): Promise<void> {
    await this.dvs.stop();
  }

  private enqueueUsers(ns: string, claim: string): void {
    for (const vm of this.opts.vms()) {
      if (nsOf(vm) !== ns) continue;
      if (claimVolumes(vm).some((v) => (v.dataVolume?.name ?? v.persistentVolumeClaim?.claimName) === claim)) this.opts.enqueueVm(`${ns}/${vm.metadata.name}`);
    }
  }

  /**
   * Why `vm` may not start yet (undefined: it may). Creates the DataVolumes its
   * dataVolumeTemplates declare that do not exist yet.
   */
  async gate(vm: VirtualMachine): Promise<{ reason: string; message: string } | undefined> {
    const templates = (vm.spec?.dataVolumeTemplates ?? []) as { metadata?: DataVolume['metadata']; spec?: DataVolumeSpec }[];
    const volumes = claimVolumes(vm);
    if (!templates.length && !volumes.some((v) => v.dataVolume)) {
      // Only persistentVolumeClaim volumes: gated by a DataVolume of that name if the cache has one.
      if (!this.synced) return undefined;
      return volumeGate(volumes, (claim) => observedStatus(this.dvs.get(claim, nsOf(vm))), { pendingIsUnbound: true });
    }
    this.start();
    if (!this.synced) return { reason: 'WaitingForVolumeBinding', message: 'waiting for the DataVolume cache to sync' };
    const ns = nsOf(vm);
    for (const t of templates) {
      const name = t.metadata?.name;
      if (!name) continue;
      const want = dataVolumeFromTemplate(vm, t);
      const have = this.dvs.get(name, ns);
      if (!have) {
        const created = await this.client.create(want as unknown as KubernetesObject);
        if (created) this.opts.log.info({ vm: `${ns}/${vm.metadata.name}`, dv: name }, 'created DataVolume from dataVolumeTemplates');
      } else if (templateChanged(have, want, vm.metadata.uid)) {
        // Edited in git before it succeeded (e.g. the checksum fixed): the import starts over.
        await this.client.apply(want as unknown as KubernetesObject);
        this.opts.log.info({ vm: `${ns}/${vm.metadata.name}`, dv: name }, 'updated DataVolume from dataVolumeTemplates');
      }
    }
    // A dataVolume volume whose DataVolume does not exist (yet): unbound, as KubeVirt shows it.
    const missing: DataVolumeStatus = { phase: 'Pending', progress: 'N/A', claimName: '', conditions: [] };
    return volumeGate(volumes, (claim) => {
      const dv = this.dvs.get(claim, ns);
      if (dv) return observedStatus(dv);
      return volumes.some((v) => v.dataVolume?.name === claim) || templates.some((t) => t.metadata?.name === claim) ? { ...missing, claimName: claim } : undefined;
    }, { pendingIsUnbound: true });
  }
}

// ---- node agent side ---------------------------------------------------------------------------

export interface DataVolumeImporterOptions {
  nodeName: string;
  /** `<state-dir>/pvcs`: where this node's claims are (the launchers' --pvc-dir). */
  pvcDir: string;
  imageStore?: ImageStore;
  log: Logger;
  /** How often to look for the DataVolume CRD until it is installed. @default 10 s */
  probeMs?: number;
  /** One attempt's deadline. @default 1 h */
  deadlineMs?: number;
  /** Fewest ms between two progress writes. @default 2 s */
  progressEveryMs?: number;
  /** `ns/claim` of the claims a launcher on this node uses (their claim is never removed). */
  claimsInUse?: () => Set<string>;
  /**
   * Beside a real kubelet: the group of the launcher Pods' user (synth's LAUNCHER_USER), given
   * the claim's dir and file so QEMU in the Pod can use the mounted claim. Unset (process
   * runtime): root's files, which libvirt's qemu:///system hands to QEMU itself.
   */
  claimGroup?: number;
  now?: () => number;
}

interface Attempt {
  uid: string;
  plan: ImportPlan;
  rec: ImportRecord;
  abort?: AbortController;
  done?: Promise<void>;
}

export class DataVolumeImporter {
  private readonly dvs: Informer<DvObject>;
  private readonly queue: RateLimitedQueue;
  private readonly attempts = new Map<string, Attempt>();
  /** Claims of DataVolumes deleted while a launcher here still used them. */
  private readonly pendingDelete = new Map<string, { ns: string; name: string }>();
  private probeTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly client: KubeClient, private readonly opts: DataVolumeImporterOptions) {
    this.now = opts.now ?? Date.now;
    this.queue = new RateLimitedQueue((k) => this.sync(k), {
      concurrency: 2,
      onError: (k, err, retryInMs) => opts.log.warn({ dv: k, err: errorMessage(err), retryInMs }, 'DataVolume sync failed; retrying with backoff'),
    });
    this.dvs = client.informer<DvObject>(
      { path: DV_PATH, apiVersion: CDI_API_VERSION, kind: 'DataVolume' },
      (type, dv) => {
        const key = `${nsOf(dv)}/${dv.metadata?.name ?? ''}`;
        if (type === 'delete') void this.forget(key, dv);
        else this.queue.add(key);
      },
      opts.log,
    );
  }

  /**
   * Starts once the DataVolume CRD exists (probed quietly until then: a cluster without
   * DataVolumes costs one GET per probe, no failing watch).
   */
  start(): void {
    const probe = async (): Promise<void> => {
      if (this.stopped || this.started) return;
      const crd = await this.client.read({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: DATAVOLUME_CRD_NAME } }).catch((err: unknown) => {
        this.opts.log.debug({ err: errorMessage(err) }, 'DataVolume CRD not readable; importer idle');
        return undefined;
      });
      if (crd && !this.stopped) {
        this.started = true;
        this.opts.log.info({ node: this.opts.nodeName }, 'DataVolume importer starting');
        await this.dvs.start();
        for (const dv of this.dvs.list()) this.queue.add(`${nsOf(dv)}/${dv.metadata.name}`);
        return;
      }
      this.probeTimer = setTimeout(() => void probe(), this.opts.probeMs ?? 10_000);
      this.probeTimer.unref();
    };
    void probe().catch((err: unknown) => this.opts.log.error({ err: errorMessage(err) }, 'DataVolume importer failed to start'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.probeTimer);
    clearTimeout(this.sweepTimer);
    for (const a of this.attempts.values()) a.abort?.abort(new Error('the agent is stopping'));
    await Promise.allSettled([...this.attempts.values()].map((a) => a.done));
    await this.queue.stop();
    await this.dvs.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private async sync(key: string): Promise<ReconcileResult> {
    if (this.stopped) return {};
    await this.sweep();
    const [ns, name] = key.split('/') as [string, string];
    const dv = this.dvs.get(name, ns);
    if (!dv || dv.metadata.deletionTimestamp) return {};
    const node = dv.metadata.annotations?.[IMPORT_NODE_ANNOTATION];
    if (node && node !== this.opts.nodeName) return {};
    const current = this.attempts.get(key);
    if (dv.status?.phase === 'Succeeded' && !current) return {};
    const ownerVm = dv.metadata.ownerReferences?.find((o) => o.kind === 'VirtualMachine' && o.controller)?.name;
    const plan = planImport(dv, ns, '/spec', ownerVm ? `${ns}/${ownerVm}` : undefined);
    if ('issues' in plan) {
      // Not importable as written (e.g. a sourceRef): Failed naming the field, so its VM shows DataVolumeError.
      const lastError = plan.issues.map((i) => `${i.path}: ${i.message}${i.fix ? ` (fix: ${i.fix})` : ''}`).join('; ');
      const t = this.now();
      await this.writeStatus(dv, dataVolumeStatus({ namespace: ns, name, specHash: '', source: 'blank', phase: 'Failed', attempts: 0, lastError, since: { Bound: t, Ready: t, Running: t } }));
      return {};
    }
    if (!node) {
      // Take it for this node at the resourceVersion read: another agent's write makes this a 409.
      try {
        await this.client.mergePatch(dv, { metadata: { resourceVersion: dv.metadata.resourceVersion, annotations: { [IMPORT_NODE_ANNOTATION]: this.opts.nodeName } } });
        this.opts.log.info({ dv: key }, 'DataVolume taken for this node');
      } catch (err) {
        if (!isApiError(err, 409) && (err as { code?: number }).code !== 409) throw err;
      }
      return {}; // the informer's update brings it back
    }
    if (current && (current.uid !== dv.metadata.uid || current.plan.specHash !== plan.specHash)) {
      // Changed (or re-created) before it succeeded: start over with the new spec.
      current.abort?.abort(new Error('the DataVolume changed'));
      await current.done?.catch(() => undefined);
      this.attempts.delete(key);
    } else if (current) {
      if (current.abort) return {}; // running
      if (current.rec.phase === 'Succeeded') return {};
      const wait = (current.rec.retryAt ?? 0) - this.now();
      if (wait > 0) return { requeueAfterMs: wait };
      this.begin(key, dv, current);
      return {};
    }
    const t = this.now();
    const scheduled = plan.source.kind === 'clone' ? 'CloneScheduled' : 'ImportScheduled';
    const rec: ImportRecord = {
      namespace: ns, name, specHash: plan.specHash, source: plan.source.kind, ...(plan.owner ? { owner: plan.owner } : {}),
      phase: scheduled, attempts: dv.status?.restartCount ?? 0, since: { Bound: t, Ready: t, Running: t },
    };
    const attempt: Attempt = { uid: dv.metadata.uid ?? '', plan, rec };
    this.attempts.set(key, attempt);
    // The claim as the scheduler sees it (idempotent: AlreadyExists is fine).
    const objs = claimObjects(dv, { node: this.opts.nodeName, path: claimDir(this.opts.pvcDir, ns, name), ...(plan.bytes !== undefined ? { bytes: plan.bytes } : {}) });
    await publishClaim(this.client, objs);
    this.begin(key, dv, attempt);
    return {};
  }

  private begin(key: string, dv: DvObject, a: Attempt): void {
    const { rec, plan } = a;
    const abort = new AbortController();
    const deadline = this.opts.deadlineMs ?? 60 * 60_000;
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(deadline)]);
    const began = this.now();
    recordAttemptStarted(rec, plan, began);
    a.abort = abort;
    let lastWrite = 0;
    let writing: Promise<void> = Promise.resolve();
    const write = (): Promise<void> => (writing = writing.then(() => this.writeStatus(dv, dataVolumeStatus(rec)).catch((err: unknown) => {
      this.opts.log.warn({ dv: key, err: errorMessage(err) }, 'writing DataVolume status failed');
    })));
    this.opts.log.info({ dv: key, attempt: rec.attempts + 1, source: plan.source.kind }, 'DataVolume import started');
    a.done = (async () => {
      await write();
      try {
        const res = await runImport(plan, {
          pvcDir: this.opts.pvcDir,
          ...(this.opts.imageStore ? { imageStore: this.opts.imageStore } : {}),
          ...(this.opts.claimGroup !== undefined ? { group: this.opts.claimGroup } : {}),
          signal,
          onProgress: (f) => {
            rec.fraction = f;
            if (this.now() - lastWrite >= (this.opts.progressEveryMs ?? 2000)) {
              lastWrite = this.now();
              void write();
            }
          },
        });
        const t = this.now();
        recordAttemptSucceeded(rec, t);
        this.opts.log.info({ dv: key, bytes: String(res.bytes), seconds: (t - began) / 1000 }, 'DataVolume import succeeded');
      } catch (err) {
        if (abort.signal.aborted) return;
        const t = this.now();
        recordAttemptFailed(rec, signal.aborted ? { deadlineMs: deadline } : (err as Error), t);
        this.opts.log.warn({ dv: key, attempt: rec.attempts, err: rec.lastError, retryInMs: rec.retryAt! - t }, 'DataVolume import failed; retrying with backoff');
        this.queue.addAfter(key, rec.retryAt! - t);
      } finally {
        delete a.abort;
      }
      await write();
    })();
  }

  private async writeStatus(dv: DvObject, status: DataVolumeStatus): Promise<void> {
    if (this.stopped) return;
    await this.client.patchCustomStatus(DATAVOLUME_PLURAL, nsOf(dv), dv.metadata.name, status);
  }

  /** A deleted DataVolume: its import stops, its claim goes once no launcher here uses it. */
  private async forget(key: string, dv: DvObject): Promise<void> {
    const a = this.attempts.get(key);
    a?.abort?.abort(new Error('the DataVolume was deleted'));
    await a?.done?.catch(() => undefined);
    this.attempts.delete(key);
    if (dv.metadata.annotations?.[IMPORT_NODE_ANNOTATION] !== this.opts.nodeName) return;
    // The claim goes with its DataVolume (the PVC by owner reference; the PV, Retain, here).
    if (dv.metadata.uid) await this.client.delete({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: claimVolumeName(dv.metadata.uid) } }).catch((err: unknown) => this.opts.log.warn({ dv: key, err: errorMessage(err) }, 'deleting the claim\'s PersistentVolume failed'));
    this.pendingDelete.set(key, { ns: nsOf(dv), name: dv.metadata.name });
    await this.sweep();
    this.scheduleSweep();
  }

  /** While a deleted DataVolume's claim is still used here, look again every 2 s. */
  private scheduleSweep(): void {
    if (!this.pendingDelete.size || this.sweepTimer || this.stopped) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      void this.sweep().catch((err: unknown) => this.opts.log.warn({ err: errorMessage(err) }, 'removing a deleted DataVolume\'s claim failed')).finally(() => this.scheduleSweep());
    }, 2000);
    this.sweepTimer.unref();
  }

  private async sweep(): Promise<void> {
    if (!this.pendingDelete.size) return;
    const inUse = this.opts.claimsInUse?.() ?? new Set<string>();
    for (const [key, c] of [...this.pendingDelete]) {
      if (inUse.has(key)) continue;
      // Re-created under the same name meanwhile: the claim is the new DataVolume's.
      if (this.dvs.get(c.name, c.ns)) {
        this.pendingDelete.delete(key);
        continue;
      }
      await rm(claimDir(this.opts.pvcDir, c.ns, c.name), { recursive: true, force: true });
      this.pendingDelete.delete(key);
      this.opts.log.info({ dv: key }, 'DataVolume deleted: its claim is removed');
    }
  }
}
