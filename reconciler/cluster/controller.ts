/**
 * The cluster's VM controller (virt-controller's role): the wiring of the one VM reconcile
 * (reconciler/vm/reconcile.ts) to the API server. Informers on VMs, VMIs and launcher Pods
 * feed the work queue keyed by `namespace/name`; the instance store here turns "create an
 * instance" into a VMI plus the launcher Pod instantiated from the revision's template, and
 * the status sink writes the VM status only when it differs from what the VM shows.
 *
 * Level-triggered: events only decide when a VM is looked at; a periodic resync looks at
 * all of them. Creates are idempotent by name (see instances.ts), so a stale cache or a
 * controller killed between two writes never yields a duplicate VMI or Pod.
 */
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../../api/kubevirt.js';
import { type Resolve, expandVm, findReferenced, formatExpansionErrors, referencesInstancetype } from '../../api/expand.js';
import {
  INSTANCETYPE_API_VERSION, INSTANCETYPE_KINDS, isClusterScopedKind,
  type AnyInstancetype, type AnyPreference, type InstancetypeObject, type InstancetypeObjectKind,
} from '../../api/instancetype.js';
import { revisionName } from '../../api/instancetype-revision.js';
import { LABEL_CREATED_BY, LABEL_VM_NAME, renderLauncherPod, withLibvirtDaemon } from '../../synth/launcher-pod.js';
import type { LibvirtDaemon } from '../../launcher/flags.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { type BackoffPolicy, DEFAULT_BACKOFF_POLICY, OVERRIDE_ANNOTATION, canonicalJson, parseOverride, reconcileStateFromStatus, vmIntent, type ObservedInstance, type Override } from '../core/index.js';
import { PAUSED_ANNOTATION } from './requests.js';
import { stripForCache, type Informer } from './informer.js';
import {
  VMI_FINALIZER,
  asKubeObject,
  instancetypeStatusRefs,
  instantiateLauncherPod,
  isControlledBy,
  observeInstance,
  vmiPullConditions,
  splitKey,
  startRevisions,
  statusMergePatch,
  statusWrite,
  vmKeyOf,
  vmiForVm,
  withoutNulls,
} from './instances.js';
import { errorMessage, type KubeClient } from './kube.js';
import { RateLimitedQueue, type ReconcileResult } from '../queue.js';
import { type InstanceStore, type VmReconcileDeps, ReconcileError, reconcileVm } from '../vm/reconcile.js';

export const CONTROLLER_COMPONENT = 'virtops-controller';

/** The plural resource of each instancetype.kubevirt.io kind (its informer's path). */
const INSTANCETYPE_PLURALS: Record<InstancetypeObjectKind, string> = {
  VirtualMachineInstancetype: 'virtualmachineinstancetypes',
  VirtualMachineClusterInstancetype: 'virtualmachineclusterinstancetypes',
  VirtualMachinePreference: 'virtualmachinepreferences',
  VirtualMachineClusterPreference: 'virtualmachineclusterpreferences',
};

/** A VM's expansion against the instancetypes/preferences on the API server, or why it failed. */
type Expansion = { instancetype?: AnyInstancetype; preference?: AnyPreference; error?: undefined } | { error: string };

export interface VmControllerOptions {
  log: Logger;
  /** Periodic full pass. Default 5 min. */
  resyncMs?: number;
  /** How long a transient status (Starting, Stopping) waits before it is written. Default 1 s. */
  statusCoalesceMs?: number;
  concurrency?: number;
  backoffPolicy?: BackoffPolicy;
  now?: () => number;
  /** Launcher Pods run their libvirt daemon so, whatever the template says (run.ts ControllerConfig). */
  launcherLibvirtDaemon?: LibvirtDaemon;
  launcherSocketDir?: string;
  /**
   * Why a VM may not start yet because of its volumes (DataVolumes: datavolumes.ts
   * `DataVolumeGate`); undefined: it may.
   */
  volumeGate?: (vm: VirtualMachine) => Promise<{ reason: string; message: string } | undefined>;
}

export class VmController {
  readonly vms: Informer<KubernetesObject>;
  readonly vmis: Informer<KubernetesObject>;
  readonly pods: Informer<V1Pod>;
  /** Instancetypes and preferences (namespaced and cluster), by kind: what VMs expand against. */
  readonly instancetypes: Map<InstancetypeObjectKind, Informer<KubernetesObject>>;
  readonly queue: RateLimitedQueue;
  /** The last expansion of each VM with matchers (what `create` stores revisions of). */
  private readonly expansions = new Map<string, Expansion>();
  private instancetypeInformersStarted = false;
  private readonly podsByVmi = new Map<string, V1Pod>();
  private templates = new Map<string, PodManifest>();
  private revision: string | undefined;
  private readonly lastWritten = new Map<string, VirtualMachineStatus>();
  private readonly pendingSince = new Map<string, number>();
  private readonly created = new Map<string, VirtualMachineInstance>();
  /** The last invalid override annotation warned about, per VM (warned once per value). */
  private readonly badOverrides = new Map<string, string>();
  /** The volume gate of each VM as its current reconcile saw it (read by `observe`). */
  private readonly volumeGates = new Map<string, { reason: string; message: string; override?: Override; status?: VirtualMachineStatus }>();
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
      onSlow: (key, ms) => log.warn({ vm: key, runningSeconds: ms / 1000 }, 'reconcile still running; this VM is not looked at again until it ends'),
    });
    const enqueueVm = (_t: string, o: KubernetesObject) => this.queue.add(vmKeyOf(o));
    this.vms = client.informer({ path: '/apis/kubevirt.io/v1/virtualmachines', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine' }, enqueueVm, log);
    this.vmis = client.informer({ path: '/apis/kubevirt.io/v1/virtualmachineinstances', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', transform: vmiForCache }, enqueueVm, log);
    this.pods = client.informer<V1Pod>(
      { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', labelSelector: 'kubevirt.io=virt-launcher', transform: launcherPodForCache },
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
    // An instancetype or preference changed: the VMs that refer to it look again (RestartRequired).
    const enqueueReferrers = (_t: string, o: KubernetesObject) => this.enqueueReferrers(o);
    this.instancetypes = new Map(INSTANCETYPE_KINDS.map((kind) => [kind, client.informer(
      { path: `/apis/${INSTANCETYPE_API_VERSION}/${INSTANCETYPE_PLURALS[kind]}`, apiVersion: INSTANCETYPE_API_VERSION, kind },
      enqueueReferrers,
      log,
    )]));
  }

  private enqueueReferrers(obj: KubernetesObject): void {
    const name = obj.metadata?.name;
    const cluster = isClusterScopedKind(obj.kind ?? '');
    for (const vm of this.listVms()) {
      if (!cluster && (vm.metadata.namespace ?? 'default') !== (obj.metadata?.namespace ?? 'default')) continue;
      if (vm.spec?.instancetype?.name === name || vm.spec?.preference?.name === name) this.queue.add(vmKeyOf(vm));
    }
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
    // Launcher Pods first: a VM is looked at only once the Pods are known, so a Pod missing
    // from the cache really is missing (a VMI that ran and lost its Pod is failed).
    await this.pods.start();
    if (this.stopped) return;
    void this.vms.start();
    void this.vmis.start();
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
    await Promise.all([this.vms.stop(), this.vmis.stop(), this.pods.stop(), ...[...this.instancetypes.values()].map((i) => i.stop())]);
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

  // ---- one VM: the shared reconcile over the API server ---------------------------------

  async reconcile(key: string): Promise<ReconcileResult> {
    if (this.stopped) return {};
    this.reconciles++;
    const { namespace, name } = splitKey(key);
    await this.removeOrphanedPods(key);
    const vm = this.vms.get(name, namespace) as unknown as VirtualMachine | undefined;
    if (!vm) {
      // Its VMI and Pod go with it (removeOrphanedVmi; the garbage collector would too). A
      // terminating VMI whose Pod never reached a node has no agent to finalise it: do it here.
      await this.removeOrphanedVmi(key, undefined);
      const vmi = this.vmis.get(name, namespace) as unknown as VirtualMachineInstance | undefined;
      if (vmi?.metadata.deletionTimestamp) await this.finalizeUnscheduled(vmi, vmi.metadata.uid ? this.podsByVmi.get(vmi.metadata.uid) : undefined);
      this.forget(key);
      return {};
    }
    // The informer may not have caught up with our own last write yet.
    const last = this.lastWritten.get(key);
    if (last && vm.status && canonicalJson(withoutNulls(last)) === canonicalJson(withoutNulls(vm.status))) this.lastWritten.delete(key);
    const status = this.lastWritten.get(key) ?? vm.status;
    const override = await this.overrideOf(key, vm);
    // The VM with its instancetype and preference applied: what a new VMI gets, and what the
    // running one is compared with (an edited instancetype shows RestartRequired until a restart).
    const desired = await this.expand(key, vm);
    const gate = this.opts.volumeGate ? await this.opts.volumeGate(desired) : undefined;
    if (gate) this.volumeGates.set(key, { ...gate, ...(override ? { override } : {}), ...(status ? { status } : {}) });
    else this.volumeGates.delete(key);
    return reconcileVm(key, { vm: desired, ...(status ? { status } : {}), ...(override ? { override } : {}) }, this.deps);
  }

  // ---- instancetypes and preferences -------------------------------------------------------

  /**
   * `vm` expanded against the instancetypes and preferences on the API server (informer
   * caches; a cache miss is read live, as the object may have been applied a moment ago).
   * When that fails, a Warning event says why (once per message); a VM without a VMI is then
   * refused at start (create throws), a running one is compared with its own VMI's spec so
   * nothing restarts it over this.
   */
  private async expand(key: string, vm: VirtualMachine): Promise<VirtualMachine> {
    if (!referencesInstancetype(vm)) {
      this.expansions.delete(key);
      return vm;
    }
    this.startInstancetypeInformers();
    const r = expandVm(vm, await this.resolverFor(vm));
    if (!('errors' in r)) {
      this.expansions.set(key, { ...(r.instancetype ? { instancetype: r.instancetype } : {}), ...(r.preference ? { preference: r.preference } : {}) });
      return r.vm;
    }
    const vmi = this.currentVmi(key, vm);
    const running = vmi && isControlledBy(vmi, vm.metadata.uid) && !vmi.metadata.deletionTimestamp && !isFinalVmi(vmi) ? vmi : undefined;
    const error = `cannot expand the VM's instancetype/preference: ${formatExpansionErrors(r.errors).split('\n').join('; ')}`;
    if (this.expansions.get(key)?.error !== error) {
      this.opts.log.warn({ vm: key, errors: r.errors }, 'instancetype/preference expansion failed');
      await this.event(vm, 'Warning', 'InstancetypeExpansionFailed', `${error}${running ? '; the running VMI keeps the spec it started with' : ''}`);
    }
    this.expansions.set(key, { error });
    return running ? { ...vm, spec: { ...vm.spec, template: { ...vm.spec.template, spec: structuredClone(running.spec) } } } : vm;
  }

  /**
   * Started with the first VM that has matchers, so a cluster without instancetypes (and
   * perhaps without their CRDs) is not listed and watched for them. Until they have listed,
   * `resolverFor` reads live; like the VM informers they retry until they can list.
   */
  private startInstancetypeInformers(): void {
    if (this.instancetypeInformersStarted || this.stopped) return;
    this.instancetypeInformersStarted = true;
    for (const inf of this.instancetypes.values()) void inf.start();
  }

  /**
   * When RestartRequired comes up because git changed an instancetype/preference (not the
   * VM), a Normal event names the object and both revisions, so `describe` says why.
   */
  private async noteInstancetypeChange(key: string, vm: VirtualMachine, base: VirtualMachineStatus | undefined, next: VirtualMachineStatus): Promise<void> {
    const required = (s: VirtualMachineStatus | undefined) => s?.conditions?.some((c) => c.type === 'RestartRequired' && c.status === 'True') === true;
    const expansion = this.expansions.get(key);
    if (!required(next) || required(base) || !expansion || expansion.error !== undefined) return;
    const parts: string[] = [];
    for (const [what, obj, ref] of [['instancetype', expansion.instancetype, next.instancetypeRef], ['preference', expansion.preference, next.preferenceRef]] as const) {
      const running = ref?.controllerRevisionRef?.name;
      if (!obj || !running) continue;
      const now = revisionName(vm.metadata.name ?? '', obj);
      if (now !== running) parts.push(`${what} ${obj.kind} ${obj.metadata.name ?? ''} (revision ${running} → ${now})`);
    }
    if (parts.length) await this.event(vm, 'Normal', 'RestartRequired', `git changed the VM's ${parts.join(' and ')}; the running VMI keeps the spec it started with until it restarts (virtops restart)`);
  }

  /** A resolver over the objects `vm` refers to: from the informers, else read live. */
  private async resolverFor(vm: VirtualMachine): Promise<Resolve> {
    const scopeOf = (kind: InstancetypeObjectKind, namespace: string) => (isClusterScopedKind(kind) ? undefined : namespace);
    const cached: Resolve = (kind, name, namespace) => this.instancetypes.get(kind)?.get(name, scopeOf(kind, namespace)) as InstancetypeObject | undefined;
    const misses: [InstancetypeObjectKind, string, string][] = [];
    findReferenced(vm, (kind, name, namespace) => {
      const o = cached(kind, name, namespace);
      if (!o) misses.push([kind, name, namespace]);
      return o;
    });
    const live = new Map<string, InstancetypeObject>();
    for (const [kind, name, namespace] of misses) {
      const ns = scopeOf(kind, namespace);
      const o = await this.client.read<KubernetesObject>({ apiVersion: INSTANCETYPE_API_VERSION, kind, metadata: { name, ...(ns ? { namespace: ns } : {}) } });
      if (o) live.set(`${kind}/${namespace}/${name}`, o as unknown as InstancetypeObject);
    }
    return (kind, name, namespace) => cached(kind, name, namespace) ?? live.get(`${kind}/${namespace}/${name}`);
  }

  /**
   * Stores the ControllerRevisions of what a VM is about to start from (owned by the VM;
   * idempotent: the name is a content hash), as KubeVirt does at first start.
   */
  private async storeRevisions(key: string, vm: VirtualMachine): Promise<ReturnType<typeof startRevisions>> {
    if (!referencesInstancetype(vm)) return {};
    const expansion = this.expansions.get(key);
    if (!expansion || expansion.error !== undefined) {
      throw new ReconcileError('InstancetypeExpansionFailed', expansion?.error ?? `the instancetype/preference of VirtualMachine ${key} is not expanded yet`);
    }
    const revisions = startRevisions(vm, expansion);
    for (const rev of [revisions.instancetype, revisions.preference]) {
      if (!rev) continue;
      const created = await this.client.create(asKubeObject(rev));
      if (created) this.opts.log.info({ vm: key, revision: rev.metadata.name }, 'stored instancetype/preference revision');
    }
    // The revisions the previous VMI started from are no longer what anything runs (the
    // previous VMI is gone before a new one is created): remove them, as KubeVirt does.
    const previous = this.lastWritten.get(key) ?? vm.status;
    const keep = new Set([revisions.instancetype?.metadata.name, revisions.preference?.metadata.name]);
    for (const ref of [previous?.instancetypeRef, previous?.preferenceRef]) {
      const name = ref?.controllerRevisionRef?.name;
      if (!name || keep.has(name)) continue;
      await this.client.delete({ apiVersion: 'apps/v1', kind: 'ControllerRevision', metadata: { name, namespace: vm.metadata.namespace ?? 'default' } });
      this.opts.log.info({ vm: key, revision: name }, 'removed the revision the previous VMI started from');
    }
    return revisions;
  }

  /**
   * The imperative override on the VM (`virtops start|stop|...`: annotation
   * virtops.io/override). One that does not parse is ignored, with a Warning event saying why.
   */
  private async overrideOf(key: string, vm: VirtualMachine): Promise<Override | undefined> {
    const raw = vm.metadata.annotations?.[OVERRIDE_ANNOTATION];
    if (raw === undefined) return undefined;
    const p = parseOverride(raw);
    if (p.ok) return p.override;
    if (this.badOverrides.get(key) !== raw) {
      this.badOverrides.set(key, raw);
      this.opts.log.warn({ vm: key, err: p.error }, 'ignoring an invalid override');
      await this.event(vm, 'Warning', 'InvalidOverride', `ignored: ${p.error}`);
    }
    return undefined;
  }

  /**
   * Git wins again: removes the override of each VM a new revision changes (called by the
   * applier before it records the revision in its inventory, so a failure here is retried
   * with the whole apply).
   */
  async clearOverrides(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const vm = this.getVm(key);
      const raw = vm?.metadata.annotations?.[OVERRIDE_ANNOTATION];
      if (!vm || raw === undefined) continue;
      await this.client.mergePatch(asKubeObject(vm), { metadata: { annotations: { [OVERRIDE_ANNOTATION]: null } } }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 404) throw err;
      });
      this.opts.log.info({ vm: key, override: raw }, 'override cleared: a new revision changes this VM');
      await this.event(vm, 'Normal', 'OverrideCleared', `the override ${raw} was cleared: a new revision changes this VM, git decides again`);
    }
  }

  /**
   * A VM that wants to run while its DataVolumes are not ready: a Pending stand-in instance
   * with the gate's reason (as `virtops up`'s backend does), so the reconcile neither starts
   * it nor backs off, and the status shows WaitingForVolumeBinding/Provisioning/DataVolumeError.
   */
  private waitingForVolumes(key: string, vm: VirtualMachine): ObservedInstance | undefined {
    const gate = this.volumeGates.get(key);
    if (!gate) return undefined;
    const now = this.now();
    const remembered = reconcileStateFromStatus(gate.status);
    if (!vmIntent(vm, undefined, { now, ...(gate.override ? { override: gate.override } : {}), ...(remembered.onceCompleted ? { onceCompleted: true } : {}) }).wantRunning) return undefined;
    return { uid: 'waiting-for-volumes', phase: 'Pending', reason: gate.reason, message: gate.message, spec: vm.spec.template.spec, createdAt: now };
  }

  private readonly instances: InstanceStore = {
    observe: async (key, vm) => {
      const vmi = this.currentVmi(key, vm);
      if (vmi && !isControlledBy(vmi, vm.metadata.uid)) {
        // A VMI of an earlier VM of the same name (removed now), or someone else's (left alone).
        await this.removeOrphanedVmi(key, vm);
        throw new ReconcileError('VMIOwnedByOther', `VirtualMachineInstance ${key} exists and is not controlled by this VM (uid ${vm.metadata.uid}); waiting for it to go away`, 2000);
      }
      let pod = vmi?.metadata.uid ? this.podsByVmi.get(vmi.metadata.uid) : undefined;
      if (vmi?.metadata.deletionTimestamp) await this.finalizeUnscheduled(vmi, pod);
      // A VMI whose Pod was never created (a crash between the two creates) gets it now; one
      // that ran on a node and lost its Pod is failed instead (observeInstance).
      else if (vmi && !isFinalVmi(vmi) && !pod && !vmi.status?.nodeName) pod = await this.ensurePod(key, vm, vmi);
      const observed = observeInstance(vmi, pod, this.now());
      if (vmi && pod) await this.writePullCondition(key, vmi, pod);
      if (observed && vmi && !pod && vmi.status?.nodeName && !isFinalVmi(vmi) && !observed.terminating) {
        // It ran on a node and its launcher Pod is gone (deleted, evicted): the guest went with it.
        return { ...observed, phase: 'Failed', reason: 'LauncherPodGone', message: `the launcher Pod of this VMI on node ${vmi.status.nodeName} is gone`, ready: false, finishedAt: observed.finishedAt ?? this.now() };
      }
      return observed ?? this.waitingForVolumes(key, vm);
    },
    create: async (key, vm, reason) => {
      if (this.currentVmi(key, vm)) {
        // The previous incarnation is still being removed; the name frees up when it is gone.
        return { requeueAfterMs: 1000, halt: true };
      }
      const desired = vmiForVm(vm, await this.storeRevisions(key, vm));
      let created = (await this.client.create(asKubeObject(desired))) as unknown as VirtualMachineInstance | undefined;
      if (!created) {
        // AlreadyExists: a VMI this controller created before a restart, not yet in the cache.
        created = (await this.client.read<KubernetesObject>({ apiVersion: desired.apiVersion, kind: desired.kind, metadata: { name: desired.metadata.name ?? '', namespace: desired.metadata.namespace ?? 'default' } })) as unknown as VirtualMachineInstance | undefined;
        if (!created) return { requeueAfterMs: 500, halt: true };
        if (!isControlledBy(created, vm.metadata.uid)) return { requeueAfterMs: 2000, halt: true };
      } else {
        this.opts.log.info({ vm: key, uid: created.metadata.uid, reason }, 'created VMI');
        await this.event(vm, 'Normal', 'SuccessfulCreate', `Started the virtual machine by creating the new virtual machine instance ${created.metadata.uid}: ${reason}`);
      }
      this.created.set(key, created);
      await this.ensurePod(key, vm, created);
      return {};
    },
    delete: async (key, vm, uid, grace, reason) => {
      const vmi = this.currentVmi(key, vm);
      if (!vmi || vmi.metadata.uid !== uid || vmi.metadata.deletionTimestamp) return { halt: true };
      this.opts.log.info({ vm: key, uid, grace, reason }, 'deleting VMI');
      await this.client.delete(asKubeObject(vmi), { preconditionUid: uid, propagationPolicy: 'Background' });
      // Until the informer shows it, remember it as terminating (not gone).
      this.created.set(key, { ...vmi, metadata: { ...vmi.metadata, deletionTimestamp: new Date(this.now()).toISOString() } });
      await this.event(vm, 'Normal', 'SuccessfulDelete', `Stopped the virtual machine by deleting the virtual machine instance ${uid}: ${reason}`);
      // The VMI stays (terminating) until its node agent has stopped the guest with its grace period.
      return { halt: true };
    },
    setPaused: async (key, vm, uid, paused, reason) => {
      // The node agent pauses or resumes the guest when the VMI asks for it (annotation);
      // the VMI's Paused condition, written by the agent, tells the next pass it happened.
      const vmi = this.currentVmi(key, vm);
      if (!vmi || vmi.metadata.uid !== uid) return { halt: true };
      if (vmi.metadata.annotations?.[PAUSED_ANNOTATION] === String(paused)) return { requeueAfterMs: 1000 };
      await this.client.mergePatch(asKubeObject(vmi), { metadata: { uid, annotations: { [PAUSED_ANNOTATION]: paused ? 'true' : 'false' } } });
      this.opts.log.info({ vm: key, uid, paused, reason }, paused ? 'asked the node agent to pause the VMI' : 'asked the node agent to unpause the VMI');
      await this.event(vm, 'Normal', paused ? 'PauseRequested' : 'UnpauseRequested', `${reason}: ${paused ? 'pausing' : 'resuming'} VMI ${uid}`);
      return {};
    },
  };

  private get deps(): VmReconcileDeps {
    return {
      instances: this.instances,
      status: { write: (key, vm, previous, next) => this.writeStatus(key, vm, previous, next) },
      events: { event: (_key, vm, type, reason, message) => this.event(vm, type, reason, message) },
      log: this.opts.log,
      now: () => this.now(),
      backoffPolicy: this.policy,
    };
  }

  /** The VMI from the cache, or the one this controller just created (or deleted) if the cache lags. */
  private currentVmi(key: string, vm: VirtualMachine): VirtualMachineInstance | undefined {
    const { namespace, name } = splitKey(key);
    const cached = this.vmis.get(name, namespace) as unknown as VirtualMachineInstance | undefined;
    const mine = this.created.get(key);
    if (cached) {
      if (mine && cached.metadata.uid === mine.metadata.uid && (cached.metadata.deletionTimestamp || !mine.metadata.deletionTimestamp)) this.created.delete(key);
      return mine && mine.metadata.uid === cached.metadata.uid ? mine : cached;
    }
    if (mine && isControlledBy(mine, vm.metadata.uid) && !mine.metadata.deletionTimestamp) return mine;
    return undefined;
  }

  private forget(key: string): void {
    this.lastWritten.delete(key);
    this.pendingSince.delete(key);
    this.created.delete(key);
    this.badOverrides.delete(key);
    this.expansions.delete(key);
    this.volumeGates.delete(key);
  }

  /**
   * Launcher Pods of this VM whose VMI is gone. They are the VMI's dependents, so the garbage
   * collector removes them, but right after kube-apiserver restarts its graph can lag for
   * minutes (the cluster fault test saw a replaced VMI's Pod stay past 120 s). KubeVirt's
   * controller deletes such Pods itself; so does this one, once a read of the VMI (not the
   * cache) confirms that its owner is really gone. A terminating VMI still holds its Pod: the
   * node agent stops the guest first.
   */
  private async removeOrphanedPods(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const current = (this.vmis.get(name, namespace) as unknown as VirtualMachineInstance | undefined)?.metadata.uid ?? this.created.get(key)?.metadata.uid;
    for (const [vmiUid, pod] of [...this.podsByVmi]) {
      if (vmiUid === current || pod.metadata?.deletionTimestamp || !pod.metadata?.uid) continue;
      if ((pod.metadata.namespace ?? 'default') !== namespace || pod.metadata.labels?.[LABEL_VM_NAME] !== name) continue;
      const vmi = await this.client.read<KubernetesObject>({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace } });
      if (vmi?.metadata?.uid === vmiUid) continue;
      this.opts.log.info({ vm: key, pod: pod.metadata.name, vmi: vmiUid }, 'deleting a launcher Pod whose VMI is gone');
      await this.client.delete(asKubeObject({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata }), { preconditionUid: pod.metadata.uid, propagationPolicy: 'Background' });
    }
  }

  /**
   * Deletes the VMI named after `key` when the VM that controls it is gone: no VM of the
   * owner's name, or one with another uid (deleted and created again; names are unique and
   * uids never reused, so the owner cannot come back). KubeVirt's controller stops a deleted VM's VMI
   * itself; waiting for the garbage collector instead left a re-created VM Starting for good
   * once (the cluster fault test: a VM deleted and pushed again 2 s after an API server
   * restart, whose old VMI the collector's graph never caught up with). A live read of the VM
   * confirms the owner is gone; a VMI that no VirtualMachine controls is someone else's and is
   * left alone.
   */
  private async removeOrphanedVmi(key: string, vm: VirtualMachine | undefined): Promise<void> {
    const { namespace, name } = splitKey(key);
    const vmi = this.vmis.get(name, namespace) as unknown as VirtualMachineInstance | undefined;
    const owner = vmi?.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === 'VirtualMachine');
    if (!vmi?.metadata.uid || vmi.metadata.deletionTimestamp || !owner || owner.uid === vm?.metadata.uid) return;
    const live = await this.client.read<KubernetesObject>({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: owner.name, namespace } });
    if (live?.metadata?.uid === owner.uid) return;
    this.opts.log.info({ vm: key, vmi: vmi.metadata.uid, owner: owner.uid }, 'deleting a VMI whose VM is gone');
    await this.client.delete(asKubeObject(vmi), { preconditionUid: vmi.metadata.uid, propagationPolicy: 'Background' });
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
    const instance = instantiateLauncherPod(template, vmi, this.templates.has(key) ? this.revision : undefined);
    const daemon = this.opts.launcherLibvirtDaemon;
    const pod = daemon ? withLibvirtDaemon(instance, vmi.spec, daemon, this.opts.launcherSocketDir) : instance;
    let created = (await this.client.create(asKubeObject(pod))) as V1Pod | undefined;
    if (!created) {
      created = await this.client.read<V1Pod>(asKubeObject(pod) as V1Pod & { apiVersion: string; kind: string; metadata: { name: string } });
    } else {
      this.opts.log.info({ vm: key, pod: pod.metadata.name, vmi: vmi.metadata.uid }, 'created launcher Pod');
    }
    // The informer may already hold a newer copy (the scheduler's PodScheduled condition can
    // arrive over the watch before this create returns): never replace it with an older one.
    // Kept as the informer keeps Pods (launcherPodForCache), not whole.
    if (created) created = launcherPodForCache(created) as V1Pod;
    if (created && vmi.metadata.uid && !this.podsByVmi.has(vmi.metadata.uid)) this.podsByVmi.set(vmi.metadata.uid, created);
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

  /**
   * A launcher Pod whose image the kubelet cannot pull: the VMI says so in condition
   * Synchronized (reason ErrImagePull/ImagePullBackOff, the image named), as KubeVirt's
   * controller does, and the condition goes when the pull succeeds (vmiPullConditions).
   * Best effort: the VM's status carries the same reason either way.
   */
  private async writePullCondition(key: string, vmi: VirtualMachineInstance, pod: V1Pod): Promise<void> {
    const conditions = vmiPullConditions(vmi, pod, new Date(this.now()));
    if (!conditions) return;
    try {
      await this.client.patchCustomStatus('virtualmachineinstances', vmi.metadata.namespace ?? 'default', vmi.metadata.name ?? '', { conditions });
      // The cache's copy, so the same conditions are not written again before the watch catches up.
      vmi.status = { ...(vmi.status ?? {}), conditions };
    } catch (err) {
      this.opts.log.warn({ vm: key, err: errorMessage(err) }, "writing the VMI's image pull condition failed");
    }
  }

  /** Writes the status if it changed; a transient one (Starting) may wait a moment (statusWrite). */
  private async writeStatus(key: string, vm: VirtualMachine, base: VirtualMachineStatus | undefined, computed: VirtualMachineStatus): Promise<{ requeueAfterMs?: number }> {
    const now = this.now();
    // The revisions the current VMI started from (kept while stopped), as KubeVirt shows them.
    const status = { ...computed, ...instancetypeStatusRefs(vm, this.currentVmi(key, vm), base) };
    const pendingSince = this.pendingSince.get(key);
    const d = statusWrite(base, status, { coalesceMs: this.opts.statusCoalesceMs ?? 1000, now, ...(pendingSince !== undefined ? { pendingSinceMs: pendingSince } : {}) });
    if (d.write === 'no') {
      this.pendingSince.delete(key);
      return {};
    }
    if (d.write === 'later') {
      if (pendingSince === undefined) this.pendingSince.set(key, now);
      return { requeueAfterMs: d.afterMs };
    }
    this.pendingSince.delete(key);
    await this.noteInstancetypeChange(key, vm, base, status);
    await this.client.patchCustomStatus('virtualmachines', vm.metadata.namespace ?? 'default', vm.metadata.name ?? '', statusMergePatch(withoutNulls(base ?? {}), withoutNulls(status)));
    this.lastWritten.set(key, withoutNulls(status));
    return {};
  }

  private async event(vm: VirtualMachine, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.client.event(asKubeObject(vm), type, reason, message, CONTROLLER_COMPONENT).catch((err: unknown) => {
      this.opts.log.warn({ vm: vmKeyOf(vm), reason, err: errorMessage(err) }, 'recording an event failed');
    });
  }
}

/**
 * What the controller keeps of a launcher Pod (its informer's transform, and the Pods it
 * creates): the metadata (after stripForCache), and of spec and status only what it reads:
 * `spec.nodeName` and each container's and init container's name and image (podScheduling,
 * podImagePullError, finalizeUnscheduled); `status` phase, reason, message, conditions, and
 * each container status's name, image and state (observeInstance, vmiPullConditions). The
 * rest of a launcher Pod (env, args, volumes, resources, the service-account token volume and
 * tolerations the API server adds, IPs) is most of its size and nothing in the controller
 * reads it; the node agent, which runs the Pod, watches its own whole copy. A new, small
 * object replaces the listed or watched one. A watch bookmark (metadata only) passes as is.
 */
export function launcherPodForCache(obj: KubernetesObject): KubernetesObject {
  const pod = stripForCache(obj) as V1Pod;
  if (!pod?.metadata || (pod.spec === undefined && pod.status === undefined)) return pod;
  const { spec, status } = pod;
  const containers = (list: { name: string; image?: string }[] | undefined) => list?.map((c) => ({ name: c.name, ...(c.image !== undefined ? { image: c.image } : {}) }));
  const statuses = (list: NonNullable<V1Pod['status']>['containerStatuses']) => list?.map((s) => ({ name: s.name, image: s.image, ...(s.state ? { state: s.state } : {}) }));
  const keptSpec = spec && {
    ...(spec.nodeName !== undefined ? { nodeName: spec.nodeName } : {}),
    containers: containers(spec.containers) ?? [],
    ...(spec.initContainers ? { initContainers: containers(spec.initContainers) } : {}),
  };
  const keptStatus = status && {
    ...(status.phase !== undefined ? { phase: status.phase } : {}),
    ...(status.reason !== undefined ? { reason: status.reason } : {}),
    ...(status.message !== undefined ? { message: status.message } : {}),
    ...(status.conditions ? { conditions: status.conditions } : {}),
    ...(status.containerStatuses ? { containerStatuses: statuses(status.containerStatuses) } : {}),
    ...(status.initContainerStatuses ? { initContainerStatuses: statuses(status.initContainerStatuses) } : {}),
  };
  return { ...(pod.apiVersion ? { apiVersion: pod.apiVersion } : {}), ...(pod.kind ? { kind: pod.kind } : {}), metadata: pod.metadata, ...(keptSpec ? { spec: keptSpec } : {}), ...(keptStatus ? { status: keptStatus } : {}) } as KubernetesObject;
}

/**
 * What the controller keeps of a VMI (its informer's transform): metadata (after
 * stripForCache) and spec whole (the RestartRequired comparison and a failed expansion's
 * fallback read the spec), and of the status what observeInstance, vmiPullConditions and
 * isFinalVmi read: phase, reason, nodeName, conditions, phaseTransitionTimestamps. What the
 * node agent reports besides (interfaces, guestOSInfo, volume status, ...) is for readers of
 * the API (describe, the dashboard's own informers), not for the reconcile.
 */
export function vmiForCache(obj: KubernetesObject): KubernetesObject {
  const vmi = stripForCache(obj) as unknown as VirtualMachineInstance;
  const status = vmi?.status;
  if (!status) return vmi as unknown as KubernetesObject;
  vmi.status = {
    ...(status.phase !== undefined ? { phase: status.phase } : {}),
    ...(status.reason !== undefined ? { reason: status.reason } : {}),
    ...(status.nodeName !== undefined ? { nodeName: status.nodeName } : {}),
    ...(status.conditions ? { conditions: status.conditions } : {}),
    ...(status.phaseTransitionTimestamps ? { phaseTransitionTimestamps: status.phaseTransitionTimestamps } : {}),
  };
  return vmi as unknown as KubernetesObject;
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
