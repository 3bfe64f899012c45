/**
 * The VM controller (virt-controller's role): VirtualMachine → VirtualMachineInstance →
 * launcher Pod, and the VM's status. Informers on VMs, VMIs and launcher Pods feed a
 * rate-limited work queue keyed by `namespace/name`; `reconcile(key)` re-reads the world
 * from the caches, asks reconciler/core what to do (`decideVmActions`), does it, and writes
 * the status `computeVmStatus` returns, only when it differs from what the VM shows.
 *
 * Level-triggered: events only decide when a VM is looked at; a periodic resync looks at
 * all of them. Creates are idempotent by name (see instances.ts), so a stale cache or a
 * controller killed between two writes never yields a duplicate VMI or Pod.
 */
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../../api/kubevirt.js';
import { LABEL_CREATED_BY, LABEL_VM_NAME, renderLauncherPod } from '../../synth/launcher-pod.js';
import type { PodManifest } from '../../synth/pod-types.js';
import {
  type Action,
  type BackoffPolicy,
  type BackoffState,
  DEFAULT_BACKOFF_POLICY,
  type ObservedInstance,
  canonicalJson,
  computeVmStatus,
  decideVmActions,
  reconcileBackoff,
} from '../core/index.js';
import type { Informer } from './informer.js';
import {
  VMI_FINALIZER,
  asKubeObject,
  instantiateLauncherPod,
  isControlledBy,
  observeInstance,
  splitKey,
  statusMergePatch,
  statusWrite,
  vmKeyOf,
  vmiForVm,
  withoutNulls,
} from './instances.js';
import { errorMessage, type KubeClient } from './kube.js';
import { RateLimitedQueue, type ReconcileResult } from '../queue.js';

export const CONTROLLER_COMPONENT = 'virtops-controller';

export interface VmControllerOptions {
  log: Logger;
  /** Periodic full pass. Default 5 min. */
  resyncMs?: number;
  /** How long a transient status (Starting, Stopping) waits before it is written. Default 1 s. */
  statusCoalesceMs?: number;
  concurrency?: number;
  backoffPolicy?: BackoffPolicy;
  now?: () => number;
}

export class VmController {
  readonly vms: Informer<KubernetesObject>;
  readonly vmis: Informer<KubernetesObject>;
  readonly pods: Informer<V1Pod>;
  readonly queue: RateLimitedQueue;
  private readonly podsByVmi = new Map<string, V1Pod>();
  private templates = new Map<string, PodManifest>();
  private revision: string | undefined;
  private readonly backoff = new Map<string, BackoffState>();
  private readonly failures = new Map<string, { reason: string; message: string }>();
  private readonly lastWritten = new Map<string, VirtualMachineStatus>();
  private readonly pendingSince = new Map<string, number>();
  private readonly created = new Map<string, VirtualMachineInstance>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly policy: BackoffPolicy;
  /** Reconciles run (for tests and benchmarks). */
  reconciles = 0;

  constructor(private readonly client: KubeClient, private readonly opts: VmControllerOptions) {
    this.now = opts.now ?? Date.now;
    this.policy = opts.backoffPolicy ?? DEFAULT_BACKOFF_POLICY;
    const log = opts.log;
    this.queue = new RateLimitedQueue((k) => this.reconcile(k), {
      concurrency: opts.concurrency ?? 8,
      onError: (key, err, retryInMs) => log.error({ vm: key, err: errorMessage(err), retryInMs }, 'reconcile failed; retrying with backoff'),
    });
    const enqueueVm = (_t: string, o: KubernetesObject) => this.queue.add(vmKeyOf(o));
    this.vms = client.informer({ path: '/apis/kubevirt.io/v1/virtualmachines', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine' }, enqueueVm, log);
    this.vmis = client.informer({ path: '/apis/kubevirt.io/v1/virtualmachineinstances', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance' }, enqueueVm, log);
    this.pods = client.informer<V1Pod>(
      { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', labelSelector: 'kubevirt.io=virt-launcher' },
      (type, pod) => {
        const uid = pod.metadata?.labels?.[LABEL_CREATED_BY];
        if (uid) {
          if (type === 'delete') {
            if (this.podsByVmi.get(uid)?.metadata?.uid === pod.metadata?.uid) this.podsByVmi.delete(uid);
          } else this.podsByVmi.set(uid, pod);
        }
        const vm = pod.metadata?.labels?.[LABEL_VM_NAME];
        if (vm) this.queue.add(`${pod.metadata?.namespace ?? 'default'}/${vm}`);
      },
      log,
    );
  }

  /** The launcher Pod templates of the applied revision, by VM key. */
  setTemplates(revision: string, templates: Map<string, PodManifest>): void {
    this.revision = revision;
    this.templates = templates;
  }

  /**
   * Starts the informers and the resync timer. Does not wait for the kubevirt.io informers
   * (their CRDs may not be installed yet: a refused first revision); they retry until they
   * can list, and every VM they list is queued.
   */
  async start(): Promise<void> {
    void this.vms.start();
    void this.vmis.start();
    await this.pods.start();
    if (this.stopped) return;
    const every = this.opts.resyncMs ?? 300_000;
    this.resyncTimer = setInterval(() => this.resync(), every);
    this.resyncTimer.unref();
  }

  resync(): void {
    for (const vm of this.vms.list()) this.queue.add(vmKeyOf(vm));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    await Promise.all([this.vms.stop(), this.vmis.stop(), this.pods.stop()]);
    await this.queue.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  listVms(): VirtualMachine[] {
    return this.vms.list() as unknown as VirtualMachine[];
  }

  getVm(key: string): VirtualMachine | undefined {
    const { namespace, name } = splitKey(key);
    return this.vms.get(name, namespace) as unknown as VirtualMachine | undefined;
  }

  // ---- one VM -----------------------------------------------------------------------------

  async reconcile(key: string): Promise<ReconcileResult> {
    if (this.stopped) return {};
    this.reconciles++;
    const { namespace, name } = splitKey(key);
    const vm = this.vms.get(name, namespace) as unknown as VirtualMachine | undefined;
    if (!vm) {
      // Its VMI and Pod go with it: the garbage collector follows the ownerReferences.
      this.forget(key);
      return {};
    }
    let vmi = this.currentVmi(key, vm);
    if (vmi && !isControlledBy(vmi, vm.metadata.uid)) {
      // A VMI of an earlier VM of the same name (the GC is removing it), or someone else's.
      this.failures.set(key, { reason: 'VMIOwnedByOther', message: `VirtualMachineInstance ${key} exists and is not controlled by this VM (uid ${vm.metadata.uid}); waiting for it to go away` });
      await this.writeStatus(key, vm, undefined);
      return { requeueAfterMs: 2000 };
    }
    let pod = vmi?.metadata.uid ? this.podsByVmi.get(vmi.metadata.uid) : undefined;
    let requeue: number | undefined;

    if (vmi?.metadata.deletionTimestamp) {
      await this.finalizeUnscheduled(vmi, pod);
    } else if (vmi && !isFinalVmi(vmi) && !pod) {
      pod = await this.ensurePod(key, vm, vmi);
    }

    const now = this.now();
    let observed = observeInstance(vmi, pod, now);
    const state = reconcileBackoff(this.backoff.get(key), observed, now, this.policy);
    this.backoff.set(key, state);
    const actions = decideVmActions(vm, observed, { now, backoff: state }, this.policy);
    for (const a of actions) {
      const r = await this.carryOut(key, vm, vmi, a);
      if (r.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, r.requeueAfterMs);
      if (r.vmi !== undefined) {
        vmi = r.vmi ?? undefined;
        pod = r.pod;
        observed = observeInstance(vmi, pod, this.now());
      }
      if (r.stop) break;
    }
    const later = await this.writeStatus(key, vm, observed);
    if (later !== undefined) requeue = Math.min(requeue ?? Infinity, later);
    return requeue !== undefined ? { requeueAfterMs: requeue } : {};
  }

  /** The VMI from the cache, or the one this controller just created if the cache lags. */
  private currentVmi(key: string, vm: VirtualMachine): VirtualMachineInstance | undefined {
    const { namespace, name } = splitKey(key);
    const cached = this.vmis.get(name, namespace) as unknown as VirtualMachineInstance | undefined;
    const mine = this.created.get(key);
    if (cached) {
      if (mine && cached.metadata.uid === mine.metadata.uid) this.created.delete(key);
      return cached;
    }
    if (mine && isControlledBy(mine, vm.metadata.uid)) return mine;
    return undefined;
  }

  private forget(key: string): void {
    this.backoff.delete(key);
    this.failures.delete(key);
    this.lastWritten.delete(key);
    this.pendingSince.delete(key);
    this.created.delete(key);
  }

  private async carryOut(
    key: string,
    vm: VirtualMachine,
    vmi: VirtualMachineInstance | undefined,
    a: Action,
  ): Promise<{ requeueAfterMs?: number; vmi?: VirtualMachineInstance | null; pod?: V1Pod; stop?: boolean }> {
    const { log } = this.opts;
    switch (a.type) {
      case 'none':
        if (a.error) this.failures.set(key, { reason: 'InvalidSpec', message: a.error });
        return {};
      case 'wait-backoff':
        return { requeueAfterMs: Math.max(100, a.until - this.now() + 50) };
      case 'sync-instance':
        // Pause/unpause come from imperative overrides, which cluster mode does not take
        // (git is the only input here); nothing to do.
        return {};
      case 'delete-instance': {
        if (!vmi || vmi.metadata.uid !== a.uid) return {};
        if (vmi.metadata.deletionTimestamp) return {};
        log.info({ vm: key, uid: a.uid, reason: a.reason }, 'deleting VMI');
        await this.client.delete(asKubeObject(vmi), { preconditionUid: a.uid, propagationPolicy: 'Background' });
        this.created.delete(key);
        await this.event(vm, 'Normal', 'SuccessfulDelete', `Stopped the virtual machine by deleting the virtual machine instance ${a.uid}: ${a.reason}`);
        // The VMI stays (terminating) until its node agent has stopped the guest.
        return { vmi: { ...vmi, metadata: { ...vmi.metadata, deletionTimestamp: new Date(this.now()).toISOString() } }, ...(vmi.metadata.uid ? { pod: this.podsByVmi.get(vmi.metadata.uid) } : {}), stop: true };
      }
      case 'create-instance': {
        if (vmi) {
          // The previous incarnation is still being removed; the name frees up when it is gone.
          return { requeueAfterMs: 1000, stop: true };
        }
        const desired = vmiForVm(vm);
        let created = (await this.client.create(asKubeObject(desired))) as unknown as VirtualMachineInstance | undefined;
        if (!created) {
          // AlreadyExists: a VMI this controller created before a restart, not yet in the cache.
          created = (await this.client.read<KubernetesObject>({ apiVersion: desired.apiVersion, kind: desired.kind, metadata: { name: desired.metadata.name ?? '', namespace: desired.metadata.namespace ?? 'default' } })) as unknown as VirtualMachineInstance | undefined;
          if (!created) return { requeueAfterMs: 500, stop: true };
          if (!isControlledBy(created, vm.metadata.uid)) return { requeueAfterMs: 2000, stop: true };
        } else {
          log.info({ vm: key, uid: created.metadata.uid, reason: a.reason }, 'created VMI');
          await this.event(vm, 'Normal', 'SuccessfulCreate', `Started the virtual machine by creating the new virtual machine instance ${created.metadata.uid}: ${a.reason}`);
        }
        this.created.set(key, created);
        const pod = await this.ensurePod(key, vm, created);
        return { vmi: created, ...(pod ? { pod } : {}) };
      }
    }
  }

  /** Creates the launcher Pod of a live VMI from the revision's template (idempotent by name). */
  private async ensurePod(key: string, vm: VirtualMachine, vmi: VirtualMachineInstance): Promise<V1Pod | undefined> {
    let template = this.templates.get(key);
    if (!template) {
      // A VM that is not (or not yet) in an applied revision, e.g. created with kubectl:
      // render its launcher Pod with this controller's own synth code.
      template = renderLauncherPod(vm);
      this.opts.log.info({ vm: key }, 'no launcher Pod template in the applied revision for this VM; rendering one');
    }
    const pod = instantiateLauncherPod(template, vmi, this.templates.has(key) ? this.revision : undefined);
    let created = (await this.client.create(asKubeObject(pod))) as V1Pod | undefined;
    if (!created) {
      created = await this.client.read<V1Pod>(asKubeObject(pod) as V1Pod & { apiVersion: string; kind: string; metadata: { name: string } });
    } else {
      this.opts.log.info({ vm: key, pod: pod.metadata.name, vmi: vmi.metadata.uid }, 'created launcher Pod');
    }
    // The informer may already hold a newer copy (the scheduler's PodScheduled condition can
    // arrive over the watch before this create returns): never replace it with an older one.
    if (created && vmi.metadata.uid && !this.podsByVmi.has(vmi.metadata.uid)) this.podsByVmi.set(vmi.metadata.uid, created);
    this.failures.delete(key);
    return created;
  }

  /**
   * A terminating VMI whose Pod never reached a node has no node agent to finalise it:
   * remove its Pod and the finalizer here. Scheduled ones are the node agent's (it stops
   * the guest first, with the grace period).
   */
  private async finalizeUnscheduled(vmi: VirtualMachineInstance, pod: V1Pod | undefined): Promise<void> {
    if (pod?.spec?.nodeName) return;
    if (!(vmi.metadata.finalizers ?? []).includes(VMI_FINALIZER)) return;
    if (pod?.metadata?.uid && !pod.metadata.deletionTimestamp) {
      await this.client.delete(asKubeObject({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata }), { gracePeriodSeconds: 0, preconditionUid: pod.metadata.uid });
    }
    await removeFinalizer(this.client, vmi);
  }

  /** Computes the status and writes it if it changed; returns a delay if a write was deferred. */
  private async writeStatus(key: string, vm: VirtualMachine, observed: ObservedInstance | undefined): Promise<number | undefined> {
    const now = this.now();
    const current = vm.status;
    const last = this.lastWritten.get(key);
    if (last && current && canonicalJson(withoutNulls(last)) === canonicalJson(withoutNulls(current))) this.lastWritten.delete(key);
    const base = this.lastWritten.get(key) ?? current;
    const failure = this.failures.get(key);
    const backoff = this.backoff.get(key);
    const status = computeVmStatus(vm, observed, {
      now,
      ...(backoff ? { backoff } : {}),
      ...(base ? { previous: base } : {}),
      ...(failure ? { failure } : {}),
      backoffPolicy: this.policy,
    });
    const pendingSince = this.pendingSince.get(key);
    const d = statusWrite(base, status, { coalesceMs: this.opts.statusCoalesceMs ?? 1000, now, ...(pendingSince !== undefined ? { pendingSinceMs: pendingSince } : {}) });
    if (d.write === 'no') {
      this.pendingSince.delete(key);
      return undefined;
    }
    if (d.write === 'later') {
      if (pendingSince === undefined) this.pendingSince.set(key, now);
      return d.afterMs;
    }
    this.pendingSince.delete(key);
    await this.client.patchCustomStatus('virtualmachines', vm.metadata.namespace ?? 'default', vm.metadata.name ?? '', statusMergePatch(withoutNulls(base ?? {}), withoutNulls(status)));
    this.lastWritten.set(key, withoutNulls(status));
    if (base?.printableStatus !== status.printableStatus) {
      this.opts.log.info({ vm: key, from: base?.printableStatus ?? null, to: status.printableStatus }, `${key} ${status.printableStatus}`);
      if (status.printableStatus === 'ErrorUnschedulable') {
        await this.event(vm, 'Warning', 'ErrorUnschedulable', observed?.message ?? 'the launcher Pod cannot be scheduled');
      } else if (status.printableStatus === 'CrashLoopBackOff') {
        await this.event(vm, 'Warning', 'CrashLoopBackOff', `the VM keeps failing; next start after ${status.startFailure?.retryAfterTimestamp ?? 'a backoff'}`);
      }
    }
    return undefined;
  }

  private async event(vm: VirtualMachine, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.client.event(asKubeObject(vm), type, reason, message, CONTROLLER_COMPONENT).catch((err: unknown) => {
      this.opts.log.warn({ vm: vmKeyOf(vm), reason, err: errorMessage(err) }, 'recording an event failed');
    });
  }
}

export function isFinalVmi(vmi: VirtualMachineInstance): boolean {
  return vmi.status?.phase === 'Succeeded' || vmi.status?.phase === 'Failed';
}

/** Removes the cleanup finalizer, guarded by resourceVersion (a conflict is retried by the caller's queue). */
export async function removeFinalizer(client: KubeClient, vmi: VirtualMachineInstance): Promise<void> {
  const finalizers = (vmi.metadata.finalizers ?? []).filter((f) => f !== VMI_FINALIZER);
  await client.mergePatch(asKubeObject(vmi), { metadata: { finalizers, ...(vmi.metadata.resourceVersion ? { resourceVersion: vmi.metadata.resourceVersion } : {}) } }).catch((err: unknown) => {
    if ((err as { code?: number }).code === 404) return;
    throw err;
  });
}
