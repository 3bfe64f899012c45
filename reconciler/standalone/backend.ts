import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Resolve, expandVm, instancetypeVmiAnnotations, referencesInstancetype, resolverFor } from '../../api/expand.js';
import { vmiGraceSeconds } from '../../api/grace.js';
import { type AnyInstancetype, type AnyPreference, isInstancetypeObject } from '../../api/instancetype.js';
import { controllerRevision, revisionName, statusRef } from '../../api/instancetype-revision.js';
import { type InstancetypeStatusRef, type VirtualMachine, type VirtualMachineStatus, vmiFromVm } from '../../api/kubevirt.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { LABEL_VM_NAME } from '../../synth/launcher-pod.js';
import { serialSocketPath } from '../../launcher/convert/console.js';
import {
  type Action,
  type BackoffPolicy,
  DEFAULT_BACKOFF_POLICY,
  type ImperativeAction,
  type KubeObject,
  type ObjectKey,
  type ObservedInstance,
  type OverrideMap,
  type Revision,
  type RevisionPlan,
  applyRevisionToOverrides,
  awaitingVmi,
  decideVmActions,
  vmIntent,
  vmObjectKey,
  planRevision,
  reconcileBackoff,
  reconcileStateFromStatus,
  unsettledRecheckMs,
  UNSETTLED_RECHECK_MS,
} from '../core/index.js';
import { type InstanceHandler, LauncherError } from '../agent/agent.js';
import { RateLimitedQueue, type ReconcileResult } from '../queue.js';
import { type InstanceStore, type Progress, type VmKey, type VmReconcileDeps, ReconcileError, reconcileVm, vmKey } from '../vm/reconcile.js';
import type { ReconcilerMetrics } from './metrics.js';
import { type AppliedState, type StateStore, type VmRecord, pushEvent } from './state-store.js';

export { ReconcileError, vmKey, type VmKey };

export interface DomainLookup {
  exists(name: string): Promise<boolean>;
}

export interface BackendOptions {
  store: StateStore;
  agent: InstanceHandler;
  domains: DomainLookup;
  log: Logger;
  metrics: ReconcilerMetrics;
  /** Periodic full pass. */
  resyncMs: number;
  concurrency?: number;
  backoffPolicy?: BackoffPolicy;
  /** Follow each launcher's event stream to react to transitions at once (default true). */
  watchLaunchers?: boolean;
  /**
   * Why a VM may not start yet (its DataVolumes still importing, or failed): it then shows
   * that reason as printableStatus (Provisioning, DataVolumeError) instead of starting.
   */
  volumeGate?: (vm: VirtualMachine) => { reason: string; message: string } | undefined;
  /**
   * The git history between two revisions: which of `keys` commits after `base` and before
   * `sha` changed (GitSource.changedBetween). Without it only the net change clears overrides.
   */
  history?: (base: string, sha: string, keys: readonly ObjectKey[]) => Promise<readonly ObjectKey[]>;
  now?: () => number;
}

export interface VmView {
  namespace: string;
  name: string;
  firstSeen: string;
  revision?: string;
  status: VmRecord['status'];
  override?: VmRecord['override'];
  failure?: { reason: string; message: string };
  inGit: boolean;
  instance?: {
    uid: string;
    createdAt: string;
    pid?: number;
    domain: string;
    socket: string;
    console: string;
    serialLog: string;
    launcherLog: string;
    podDir: string;
  };
  events: VmRecord['events'];
}

export interface DiffEntry {
  vm: VmKey;
  change: 'create' | 'update' | 'unchanged' | 'prune';
  actions: Action[];
}

/** The VirtualMachines and their launcher Pods of a revision, by VM key. */
export function splitRevision(manifests: KubeObject[]): { vms: Map<VmKey, VirtualMachine>; pods: Map<VmKey, PodManifest> } {
  const vms = new Map<VmKey, VirtualMachine>();
  const pods = new Map<VmKey, PodManifest>();
  for (const m of manifests) {
    if (m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine') {
      vms.set(vmKey(m.metadata.namespace, m.metadata.name), m as unknown as VirtualMachine);
    } else if (m.apiVersion === 'v1' && m.kind === 'Pod') {
      const labels = (m.metadata['labels'] ?? {}) as Record<string, string>;
      const vmName = labels[LABEL_VM_NAME];
      if (vmName && labels['kubevirt.io'] === 'virt-launcher') pods.set(vmKey(m.metadata.namespace, vmName), m as unknown as PodManifest);
    }
  }
  return { vms, pods };
}

/**
 * A VM's instancetype/preference expansion against the applied revision (api/expand.ts): the
 * VM the reconcile works with, the objects it came from, or why it failed.
 */
interface Expansion {
  vm: VirtualMachine;
  instancetype?: AnyInstancetype;
  preference?: AnyPreference;
  error?: string;
}

/** The refs of the revisions an instance was started from (status.instancetypeRef/preferenceRef). */
interface StartedRefs {
  instancetypeRef?: InstancetypeStatusRef;
  preferenceRef?: InstancetypeStatusRef;
}

/** `<state-dir>/revisions/<ns>_<vm>/`: the copies of the instancetypes/preferences a VM's instances started from. */
export function revisionsDir(stateDir: string, namespace: string, name: string): string {
  return join(stateDir, 'revisions', `${namespace}_${name}`);
}

export class StandaloneBackend {
  private applied: AppliedState = { manifests: [], inventory: { entries: {} } };
  /** Finds the instancetypes and preferences of the applied revision. */
  private resolve: Resolve = resolverFor([]);
  private readonly expansions = new Map<VmKey, Expansion>();
  private readonly startedRefs = new Map<VmKey, StartedRefs>();
  private desiredVms = new Map<VmKey, VirtualMachine>();
  private desiredPods = new Map<VmKey, PodManifest>();
  private readonly records = new Map<VmKey, VmRecord>();
  /**
   * A digest of each VM's record as last written, to skip unchanged writes. A digest, not the
   * JSON itself: with 1,000 VMs the JSON copies (instance spec, 30 events) held several MiB.
   */
  private readonly saved = new Map<VmKey, string>();
  private readonly pushPending = new Map<VmKey, number>();
  private readonly watchers = new Map<VmKey, { uid: string; watch: { stop(): void } }>();
  /** VMs whose last observation was not settled (unsettledRecheckMs): their pass asks for another look soon. */
  private readonly unsettled = new Set<VmKey>();
  /**
   * Instances being stopped: a restart, `virtops stop`, a runStrategy change, or the VM left
   * git. A guest's graceful shutdown (up to its grace period, 30 s by default, all of it when
   * the guest ignores ACPI) holds no reconcile slot: with the stop inside the reconcile, 16
   * guests that ignored ACPI stalled every other VM for the grace period. Meanwhile the VM
   * shows its instance terminating, as a cluster VMI with a deletion timestamp does, and
   * nothing else happens to it; the stop's end records it and puts the VM back in the queue.
   */
  private readonly stops = new Map<VmKey, { uid: string; terminating: ObservedInstance | undefined }>();
  /**
   * A stop that failed (the instance still runs), with the instance's uid: the VM's next
   * delete or prune throws it, so that the failure shows and the queue backs off before the
   * stop is tried again.
   */
  private readonly stopErrors = new Map<VmKey, { uid: string; err: unknown }>();
  private readonly queue: RateLimitedQueue;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly policy: BackoffPolicy;
  private passes = 0;
  private stopping = false;

  constructor(private readonly opts: BackendOptions) {
    this.now = opts.now ?? Date.now;
    this.policy = opts.backoffPolicy ?? DEFAULT_BACKOFF_POLICY;
    this.queue = new RateLimitedQueue((k) => this.reconcileKey(k), {
      concurrency: opts.concurrency ?? 16,
      onError: (k, err, retryInMs) => opts.log.error({ vm: k, err: (err as Error).message, retryInMs }, 'reconcile failed; retrying with backoff'),
      onSlow: (k, ms) => opts.log.warn({ vm: k, runningSeconds: ms / 1000 }, 'reconcile still running; this VM is not looked at again until it ends'),
    });
  }

  /** Loads the state dir (last applied revision, inventory, instances) and starts the resync timer. */
  async start(): Promise<void> {
    const { store, log } = this.opts;
    await store.init();
    this.applied = await store.readApplied();
    this.resolve = resolverFor(this.applied.manifests);
    const split = splitRevision(this.applied.manifests);
    this.desiredVms = split.vms;
    this.desiredPods = split.pods;
    for (const r of await store.readVms()) {
      const key = vmKey(r.namespace, r.name);
      this.records.set(key, r);
      this.saved.set(key, recordDigest(r));
    }
    const now = this.now();
    for (const c of store.recovered) {
      log.warn({ file: c.file, movedTo: c.movedTo, why: c.why }, 'a corrupt state file was moved aside; rebuilding from what runs and from git');
      // applied.json: every VM hears of it; a VM's own file: that VM.
      for (const r of this.records.values()) {
        if (c.file.endsWith('applied.json') || c.file.endsWith(`/${r.namespace}_${r.name}.json`)) {
          pushEvent(r, { type: 'Warning', reason: 'StateRebuilt', message: `state file ${c.file} was corrupt (${c.why}); moved to ${c.movedTo}, rebuilt from what runs and from git` }, now);
        }
      }
    }
    const adopted = [...this.records.values()].filter((r) => r.instance).length;
    log.info({ stateDir: store.dir, revision: this.applied.sha ?? null, vms: this.records.size, instances: adopted }, adopted ? `adopting ${adopted} launcher(s) from the state dir` : 'state dir loaded');
    this.opts.metrics.setRevision(this.applied.sha);
    this.timer = setInterval(() => this.resync(), this.opts.resyncMs);
    this.timer.unref();
    if (this.applied.sha || this.records.size) this.resync();
  }

  /** Stops reconciling; launchers and their VMs keep running (the next start adopts them). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    for (const w of this.watchers.values()) w.watch.stop();
    this.watchers.clear();
    await this.queue.stop();
  }

  get appliedRevision(): AppliedState {
    return this.applied;
  }

  get passCount(): number {
    return this.passes;
  }

  /** Marks every VM (desired or recorded) for a pass. */
  resync(): void {
    if (this.stopping) return;
    this.passes++;
    for (const k of new Set([...this.desiredVms.keys(), ...this.records.keys()])) this.queue.add(k);
  }

  /** Resolves once no reconcile is queued or running, and no instance is still stopping. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** A new good revision from the source: plan it, clear overrides it touches, persist, reconcile. */
  async applyRevision(rev: Revision, seenAt = this.now()): Promise<RevisionPlan> {
    const { store, log, metrics } = this.opts;
    // Instancetypes and preferences are kept too: the VMs of this revision expand against them.
    // Services too: node-ports.ts exposes a NodePort Service's VM on the host.
    // DataVolumes and snapshots/restores too: their workers read them from here (datavolumes.ts, snapshots.ts).
    const kept = rev.manifests.filter((m) => (m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine') || (m.apiVersion === 'v1' && (m.kind === 'Pod' || m.kind === 'Service')) || isInstancetypeObject(m) || m.apiVersion === 'cdi.kubevirt.io/v1beta1' || m.apiVersion === 'snapshot.kubevirt.io/v1beta1'
      // VirtualMachinePools (their VMs were added by up, pools.ts): for their status, across restarts.
      || m.apiVersion === 'pool.kubevirt.io/v1beta1');
    const vmsOnly: Revision = { sha: rev.sha, manifests: kept.filter((m) => m.kind === 'VirtualMachine') };
    const plan = planRevision(this.applied.inventory, vmsOnly);
    const split = splitRevision(kept);

    // Overrides hold until a commit touches their VM, including commits never applied here.
    const cleared = this.overridesClearedBy(plan, await this.changedInBetween(rev.sha));
    const now = this.now();
    const touched = new Set<VmKey>();
    for (const key of cleared) {
      const r = this.records.get(key);
      if (r?.override) {
        touched.add(key);
        pushEvent(r, { type: 'Normal', reason: 'OverrideCleared', message: `commit ${rev.sha.slice(0, 12)} changed this VM: the ${r.override.action} override is cleared, git rules again` }, now);
        delete r.override;
      }
    }
    for (const obj of [...plan.create, ...plan.update]) {
      const key = vmKey(obj.metadata.namespace, obj.metadata.name);
      this.pushPending.set(key, seenAt);
      // A commit that changes the VM clears its last error; the next pass reports what still fails.
      const r = this.records.get(key);
      if (r?.status?.conditions?.some((c) => c.type === 'Failure')) {
        r.status.conditions = r.status.conditions.filter((c) => c.type !== 'Failure');
        touched.add(key);
      }
    }
    // Written before applied.json: once the new inventory is on disk, this commit no longer
    // counts as a change to these VMs, so a crash in between must not bring the override back.
    for (const key of touched) await this.save(key, this.records.get(key)!);

    // A good revision after a refused one supersedes the refusal.
    this.applied = { sha: rev.sha, appliedAt: now, seenAt, manifests: kept, inventory: plan.next };
    this.resolve = resolverFor(kept);
    this.desiredVms = split.vms;
    this.desiredPods = split.pods;
    await store.writeApplied(this.applied);
    metrics.setRevision(rev.sha);
    metrics.refused.set(0);
    log.info(
      { sha: rev.sha, create: plan.create.map(objKey), update: plan.update.map(objKey), prune: plan.prune, unchanged: plan.unchanged.length, overridesCleared: cleared.size },
      `applying revision ${rev.sha.slice(0, 12)}`,
    );
    this.resync();
    return plan;
  }

  /** The source refused a commit: keep running the applied revision, make the refusal visible. */
  async recordRefusal(sha: string, errors: string[]): Promise<void> {
    this.applied = { ...this.applied, refused: { sha, errors, at: this.now() } };
    await this.opts.store.writeApplied(this.applied);
    this.opts.metrics.refused.set(1);
    this.opts.log.warn({ sha, errors, running: this.applied.sha ?? null }, `commit ${sha.slice(0, 12)} refused; the applied revision keeps running`);
  }

  /** `virtops start|stop|restart|pause|unpause`: a recorded override, cleared by the next commit touching the VM. */
  async requestAction(namespace: string, name: string, action: ImperativeAction): Promise<VmView> {
    const key = vmKey(namespace, name);
    if (!this.desiredVms.has(key)) {
      throw new ReconcileError('NotFound', `VirtualMachine ${key} is not in the applied revision ${this.applied.sha?.slice(0, 12) ?? '(none)'}; see virtops get vms`);
    }
    const rec = this.recordFor(key, this.desiredVms.get(key)!);
    const now = this.now();
    const before = { override: rec.override, events: [...rec.events] };
    rec.override = { action, at: now, revision: this.applied.sha ?? '' };
    pushEvent(rec, { type: 'Normal', reason: 'Override', message: `${action} requested: it overrides git for this VM until a commit changes the VM` }, now);
    try {
      await this.save(key, rec);
    } catch (err) {
      // Not recorded, not done: the caller is told it failed, so nothing may act on it (a
      // full disk under the state dir once started a VM whose start request had failed).
      if (before.override) rec.override = before.override;
      else delete rec.override;
      rec.events = before.events;
      throw new Error(`${action} of ${key} was not recorded, so nothing changed: ${(err as Error).message} (fix: free space or permissions under the state dir, then retry)`);
    }
    this.opts.log.info({ vm: key, action }, `override: ${action}`);
    this.queue.add(key);
    return this.view(key, rec);
  }

  /** The applied revision's kept manifests (VMs, launcher Pods, instancetypes, Services). */
  appliedManifests(): readonly KubeObject[] {
    return this.applied.manifests;
  }

  list(): VmView[] {
    const keys = [...new Set([...this.desiredVms.keys(), ...this.records.keys()])].sort();
    return keys.map((k) => this.view(k, this.records.get(k) ?? blankRecord(k, this.now())));
  }

  get(namespace: string, name: string): VmView | undefined {
    const key = vmKey(namespace, name);
    if (!this.desiredVms.has(key) && !this.records.has(key)) return undefined;
    return this.view(key, this.records.get(key) ?? blankRecord(key, this.now()));
  }

  statusCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const k of this.desiredVms.keys()) {
      const s = this.records.get(k)?.status?.printableStatus ?? 'Unknown';
      counts[s] = (counts[s] ?? 0) + 1;
    }
    return counts;
  }

  /** What the next reconcile would do: revision changes not yet applied, then per-VM actions. */
  async diff(next?: Revision): Promise<{ applied?: string; next?: string; entries: DiffEntry[] }> {
    let vms = this.desiredVms;
    let resolve = this.resolve;
    const change = new Map<VmKey, DiffEntry['change']>();
    let clearedByNext = new Set<VmKey>();
    if (next && next.sha !== this.applied.sha) {
      const vmObjs = next.manifests.filter((m) => m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine');
      const plan = planRevision(this.applied.inventory, { sha: next.sha, manifests: vmObjs });
      clearedByNext = this.overridesClearedBy(plan);
      for (const o of plan.create) change.set(vmKey(o.metadata.namespace, o.metadata.name), 'create');
      for (const o of plan.update) change.set(vmKey(o.metadata.namespace, o.metadata.name), 'update');
      vms = splitRevision(next.manifests).vms;
      resolve = resolverFor(next.manifests);
    }
    const entries: DiffEntry[] = [];
    const now = this.now();
    for (const key of [...new Set([...vms.keys(), ...this.records.keys()])].sort()) {
      const gitVm = vms.get(key);
      const expanded = gitVm && referencesInstancetype(gitVm) ? expandVm(gitVm, resolve) : undefined;
      const vm = expanded && !('errors' in expanded) ? expanded.vm : gitVm;
      const rec = this.records.get(key);
      if (!vm) {
        if (rec) entries.push({ vm: key, change: 'prune', actions: rec.instance ? [{ type: 'delete-instance', uid: rec.instance.uid, gracePeriodSeconds: vmiGraceSeconds(rec.instance.spec), reason: 'VM left git: prune' }] : [] });
        continue;
      }
      const observed = rec ? await this.observe(key, rec, vm, false).catch(() => undefined) : undefined;
      const remembered = reconcileStateFromStatus(rec?.status);
      const backoff = reconcileBackoff(remembered.backoff, observed, now, this.policy);
      // The override as it will be once `next` is applied (a commit that changes the VM clears it).
      const override = rec?.override && !clearedByNext.has(key) ? rec.override : undefined;
      const actions = decideVmActions(vm, observed, { now, backoff, ...(override ? { override } : {}), ...(remembered.onceCompleted ? { onceCompleted: true } : {}) }, this.policy);
      entries.push({ vm: key, change: change.get(key) ?? 'unchanged', actions });
    }
    return { ...(this.applied.sha ? { applied: this.applied.sha } : {}), ...(next ? { next: next.sha } : {}), entries };
  }

  /** The VMs whose override a revision (planned over its VirtualMachines) clears: those it, or a commit before it, changes or removes. */
  private overridesClearedBy(plan: RevisionPlan, changedInBetween: readonly ObjectKey[] = []): Set<VmKey> {
    const overrides: OverrideMap = {};
    for (const r of this.records.values()) if (r.override) overrides[vmObjectKey(r.namespace, r.name)] = r.override;
    const { cleared } = applyRevisionToOverrides(overrides, plan, changedInBetween);
    return new Set(cleared.map((ok) => {
      const parts = ok.split('/');
      return vmKey(parts.at(-2), parts.at(-1));
    }));
  }

  /**
   * The overridden VMs that commits between the applied revision and `sha` changed. A history
   * that cannot be read (the cache lost the applied commit) leaves the net change to decide,
   * logged: an override that stays is visible (`virtops get`) and a commit clears it.
   */
  private async changedInBetween(sha: string): Promise<ObjectKey[]> {
    const base = this.applied.sha;
    const keys = [...this.records.values()].filter((r) => r.override).map((r) => vmObjectKey(r.namespace, r.name));
    if (!base || !this.opts.history || keys.length === 0) return [];
    try {
      return [...(await this.opts.history(base, sha, keys))];
    } catch (err) {
      this.opts.log.warn({ err, base, sha }, 'reading the commits between two revisions failed; overrides follow the net change only');
      return [];
    }
  }

  // ---- one VM: the shared reconcile over the local store --------------------------------

  private async reconcileKey(key: VmKey): Promise<ReconcileResult> {
    if (this.stopping) return {};
    const began = performance.now();
    const { metrics } = this.opts;
    let result = 'ok';
    try {
      // Its instance is being stopped (stopInBackground): nothing else happens to it until that
      // ends. Asked of the queue, which owns the background work, as the cluster agent does.
      if (this.queue.busy(key)) return {};
      const gitVm = this.desiredVms.get(key);
      const existing = this.records.get(key);
      if (!gitVm) {
        // Only git prunes: with no applied revision (a first start, or applied.json rebuilt
        // after corruption) nothing says a recorded VM left git, so its disks stay.
        if (existing && this.applied.sha) await this.prune(key, existing);
        return {};
      }
      const rec = this.recordFor(key, gitVm);
      // The VM with its instancetype and preference applied: what runs, and what the running
      // instance is compared with (an edited instancetype shows RestartRequired, applies at restart).
      const vm = this.expand(key, gitVm, rec);
      // A record rebuilt after corruption, or none at all (deleted by hand, lost with a disk):
      // a launcher may still run for this VM, and must be adopted, not started a second time.
      if (rec.rebuilt || !existing) await this.findInstance(key, rec, vm);
      rec.revision = this.applied.sha;
      const out = await reconcileVm(key, { vm, ...(rec.status ? { status: rec.status } : {}), ...(rec.override ? { override: rec.override } : {}) }, this.deps);
      if (reconcileStateFromStatus(rec.status).failure) result = 'error';
      await this.save(key, rec);
      this.watch(key, rec);
      // Its launcher's events will not say when an unsettled phase settles: look again soon.
      const recheck = this.unsettled.has(key) ? UNSETTLED_RECHECK_MS : undefined;
      return recheck !== undefined && !(out.requeueAfterMs !== undefined && out.requeueAfterMs <= recheck) ? { ...out, requeueAfterMs: recheck } : out;
    } catch (err) {
      result = 'error';
      throw err;
    } finally {
      metrics.reconciles.inc({ result });
      metrics.reconcileDuration.observe((performance.now() - began) / 1000);
    }
  }

  /** The VM's instance as a local record whose launcher runs on this host. */
  private readonly instances: InstanceStore = {
    observe: async (key, vm) => {
      const rec = this.records.get(key);
      const stopping = this.stops.get(key);
      if (stopping && rec?.instance?.uid === stopping.uid) return stopping.terminating;
      const observed = rec ? await this.observe(key, rec, vm, true) : undefined;
      return observed ?? this.waitingForVolumes(vm, rec);
    },
    create: async (key, vm, reason, progress) => {
      await this.createInstance(key, this.recordFor(key, vm), vm, reason, progress);
      return {};
    },
    delete: async (key, _vm, uid, grace, reason, progress) => {
      const rec = this.records.get(key);
      const inst = rec?.instance;
      if (!rec || !inst || inst.uid !== uid) return {};
      this.throwFailedStop(key, uid);
      this.opts.log.info({ vm: key, uid, grace, reason }, 'stopping instance');
      // Stopping while the guest gets its grace period (up to 30 s by default), as a terminating VMI shows in a cluster.
      const live = await this.observe(key, rec, _vm, false).catch(() => undefined);
      // Unobservable (its launcher not answering): still shown as terminating, not as gone.
      const terminating: ObservedInstance = live ? { ...live, terminating: true } : { uid, phase: 'Unknown', spec: inst.spec, createdAt: inst.createdAt, terminating: true };
      if (grace > 0) await progress(terminating);
      this.stopInBackground(key, rec, grace, terminating, reason);
      // The pass ends here: what follows (a restart's new instance) waits for the stop's end.
      return { halt: true };
    },
    setPaused: async (key, _vm, uid, paused, reason) => {
      const rec = this.records.get(key);
      if (!rec?.instance || rec.instance.uid !== uid) return {};
      await this.opts.agent.command(rec.instance, paused ? 'pause' : 'unpause');
      pushEvent(rec, { type: 'Normal', reason: paused ? 'Paused' : 'Unpaused', message: reason }, this.now());
      return {};
    },
  };

  private get deps(): VmReconcileDeps {
    return {
      instances: this.instances,
      status: {
        write: async (key, vm, previous, next) => {
          const rec = this.recordFor(key, vm);
          this.noteStatus(key, rec, previous, next);
          rec.status = this.withInstancetypeRefs(key, vm, rec, next);
          await this.save(key, rec);
          return {};
        },
      },
      events: {
        event: (key, _vm, type, reason, message) => {
          const rec = this.records.get(key);
          if (rec) pushEvent(rec, { type, reason, message }, this.now());
        },
      },
      log: this.opts.log,
      now: () => this.now(),
      backoffPolicy: this.policy,
      onAction: (type, result) => this.opts.metrics.actions.inc({ action: type, result }),
    };
  }

  /**
   * A VM that wants to run while its DataVolumes are not ready: a Pending stand-in instance
   * with the gate's reason, so the reconcile neither starts it nor backs off, and the status
   * shows Provisioning or DataVolumeError as KubeVirt does. Nothing is recorded for it.
   */
  private waitingForVolumes(vm: VirtualMachine, rec: VmRecord | undefined): ObservedInstance | undefined {
    const gate = this.opts.volumeGate?.(vm);
    if (!gate) return undefined;
    const now = this.now();
    const remembered = reconcileStateFromStatus(rec?.status);
    if (!vmIntent(vm, undefined, { now, ...(rec?.override ? { override: rec.override } : {}), ...(remembered.onceCompleted ? { onceCompleted: true } : {}) }).wantRunning) return undefined;
    return { uid: 'waiting-for-volumes', phase: 'Pending', reason: gate.reason, message: gate.message, spec: vm.spec.template.spec, createdAt: now };
  }

  /** `ns/claim` of each claim (persistentVolumeClaim, dataVolume, ephemeral) an instance on this host uses. */
  claimsInUse(): Set<string> {
    const out = new Set<string>();
    for (const r of this.records.values()) {
      for (const v of r.instance?.spec.volumes ?? []) {
        const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name ?? v.ephemeral?.persistentVolumeClaim?.claimName;
        if (claim) out.add(`${r.namespace}/${claim}`);
      }
    }
    return out;
  }

  private async createInstance(key: VmKey, rec: VmRecord, vm: VirtualMachine, reason: string, progress: Progress): Promise<void> {
    const { agent, log, domains } = this.opts;
    const pod = this.desiredPods.get(key);
    if (!pod) {
      throw new ReconcileError('NoLauncherPod', `dist/ has no launcher Pod for VirtualMachine ${key} (a Pod labelled ${LABEL_VM_NAME}=${vm.metadata.name}): re-run virtops synth and commit dist/`);
    }
    const ns = vm.metadata.namespace ?? 'default';
    const domainName = `${ns}_${vm.metadata.name}`;
    if (await domains.exists(domainName)) {
      throw new ReconcileError('DomainNameTaken', `a libvirt domain named ${domainName} exists that this host did not create; virtops leaves it alone: rename the VM or remove that domain`);
    }
    const expansion = this.expansions.get(key);
    if (expansion?.error) throw new ReconcileError('InstancetypeExpansionFailed', expansion.error);
    await this.recordRevisions(key, vm, expansion);
    const now = this.now();
    const vmi = vmiFromVm(vm, randomUUID());
    // As KubeVirt's VM controller: the VMI says which instancetype/preference sized it.
    Object.assign((vmi.metadata.annotations ??= {}), instancetypeVmiAnnotations(vm));
    const { spec, record } = agent.plan(vmi, pod, { podName: vm.metadata.name ?? '', now, ...(vm.metadata.generation !== undefined ? { vmGeneration: vm.metadata.generation } : {}) });
    // Recorded before the process exists, so a crash from here on finds it by uid.
    rec.instance = record;
    pushEvent(rec, { type: 'Normal', reason: 'Creating', message: `${reason}: starting launcher for instance ${record.uid}` }, now);
    await progress({ uid: record.uid, phase: 'Scheduling', reason: 'LauncherStarting', spec: record.spec, createdAt: record.createdAt });
    const sync = await agent.start(vmi, record, spec, {
      onSpawned: () => this.save(key, rec),
      // The slots bound how many launchers boot at once. One that answers is handed its VMI
      // (prepare, define, start) outside them, up to as many again (RateLimitedQueue.leaveSlot),
      // so the next VM's launcher boots meanwhile (BENCHMARKS.md, "a launcher's slot").
      onReady: () => Promise.resolve(void this.queue.leaveSlot(key)),
      onWaiting: (ms) => log.info({ vm: key, uid: record.uid, waitingSeconds: Math.round(ms / 1000) }, 'launcher still preparing the VMI (pulling images, building disks, starting QEMU)'),
    });
    for (const w of sync.warnings ?? []) pushEvent(rec, { type: 'Warning', reason: 'ConversionWarning', message: w }, this.now());
    pushEvent(rec, { type: 'Normal', reason: 'Started', message: `instance ${record.uid}: launcher pid ${record.pid}, domain ${sync.domain} ${sync.state}` }, this.now());
    log.info({ vm: key, uid: record.uid, pid: record.pid, domain: sync.domain, state: sync.state, ms: this.now() - now }, 'instance started');
  }

  /**
   * A VM whose record was rebuilt after corruption (or lost): its launcher, if one runs in the VM's pod
   * dir, is adopted under the uid on its command line (with the spec git has now; the one it
   * started with was in the lost record), so it is neither started twice nor refused as a
   * foreign domain.
   */
  private async findInstance(key: VmKey, rec: VmRecord, vm: VirtualMachine): Promise<void> {
    const { agent, log } = this.opts;
    const pod = this.desiredPods.get(key);
    const found = pod && !rec.instance ? await agent.findRunning?.(rec.namespace, rec.name) : undefined;
    if (pod && found) {
      const { record } = agent.plan(vmiFromVm(vm, found.uid), pod, { podName: vm.metadata.name ?? '', now: this.now(), ...(vm.metadata.generation !== undefined ? { vmGeneration: vm.metadata.generation } : {}) });
      record.pid = found.pid;
      rec.instance = record;
      pushEvent(rec, { type: 'Normal', reason: 'Adopted', message: `found instance ${found.uid} running (launcher pid ${found.pid}) and adopted it` }, this.now());
      log.info({ vm: key, uid: found.uid, pid: found.pid }, 'adopted a running launcher for a rebuilt VM record');
    }
    delete rec.rebuilt;
    await this.save(key, rec);
  }

  /**
   * Stops the VM's instance outside the reconcile slots (see `stops`). Its end drops the
   * instance from the record and saves it, or keeps the error for the next delete or prune
   * to throw; either way the VM is queued again.
   */
  private stopInBackground(key: VmKey, rec: VmRecord, grace: number, terminating: ObservedInstance | undefined, reason: string): void {
    const inst = rec.instance!;
    this.stops.set(key, { uid: inst.uid, terminating });
    this.queue.inBackground(key, () => this.opts.agent.stop(inst, grace).then(
      async () => {
        if (rec.instance !== inst) return;
        delete rec.instance;
        pushEvent(rec, { type: 'Normal', reason: 'Stopped', message: `instance ${inst.uid} stopped: ${reason}` }, this.now());
        // Saved at once: a restart of up before the next pass must not adopt a launcher that is gone.
        await this.save(key, rec);
      },
      (err: unknown) => void this.stopErrors.set(key, { uid: inst.uid, err }),
    ).catch((err: unknown) => this.opts.log.error({ vm: key, err: (err as Error).message }, 'recording a stopped instance failed')).finally(() => {
      this.stops.delete(key);
    }));
  }

  /** Throws the failure of this instance's last stop, once (a failure of an older instance is dropped). */
  private throwFailedStop(key: VmKey, uid: string): void {
    const failed = this.stopErrors.get(key);
    if (failed === undefined) return;
    this.stopErrors.delete(key);
    if (failed.uid === uid) throw failed.err;
  }

  private async prune(key: VmKey, rec: VmRecord): Promise<void> {
    const { agent, store, log } = this.opts;
    if (rec.instance) {
      const inst = rec.instance;
      this.throwFailedStop(key, inst.uid);
      log.info({ vm: key, uid: inst.uid }, 'VM left git: stopping its instance');
      // The VM's next reconcile, when the stop has ended, removes its files.
      this.stopInBackground(key, rec, vmiGraceSeconds(inst.spec), undefined, 'the VM left git');
      return;
    }
    await agent.removeVmFiles(rec.namespace, rec.name);
    await rm(revisionsDir(store.dir, rec.namespace, rec.name), { recursive: true, force: true });
    await store.removeVm(rec.namespace, rec.name);
    this.expansions.delete(key);
    this.startedRefs.delete(key);
    this.records.delete(key);
    this.saved.delete(key);
    this.pushPending.delete(key);
    this.unsettled.delete(key);
    this.watchers.get(key)?.watch.stop();
    this.watchers.delete(key);
    log.info({ vm: key }, 'pruned: instance, launcher, domain and VM files removed');
  }

  /**
   * What the instance looks like now (core's launcherPhase, as in a cluster). A launcher that
   * never received its VMI (the reconciler died between spawn and sync) gets it here, when
   * `adopt` is set.
   */
  private async observe(key: VmKey, rec: VmRecord, vm: VirtualMachine, adopt: boolean): Promise<ObservedInstance | undefined> {
    const inst = rec.instance;
    this.unsettled.delete(key);
    if (!inst) return undefined;
    const { agent } = this.opts;
    if (adopt && !inst.synced) {
      try {
        await agent.adopt(vmiFromVm(vm, inst.uid), inst);
      } catch (err) {
        throw new ReconcileError(err instanceof LauncherError ? err.reason : 'SyncFailed', (err as Error).message);
      }
    }
    const { observation, phase } = await agent.observePhase(inst, this.now());
    if (unsettledRecheckMs(phase) !== undefined) this.unsettled.add(key);
    else this.unsettled.delete(key);
    if (observation.reachable && !awaitingVmi(observation)) inst.synced = true;
    const now = this.now();
    if (phase.phase === 'Running' && inst.runningSince === undefined) inst.runningSince = now;
    if ((phase.phase === 'Succeeded' || phase.phase === 'Failed') && inst.finishedAt === undefined) inst.finishedAt = now;
    return {
      uid: inst.uid,
      ...phase,
      spec: inst.spec,
      ...(inst.vmGeneration !== undefined ? { vmGeneration: inst.vmGeneration } : {}),
      createdAt: inst.createdAt,
      ...(inst.runningSince !== undefined ? { runningSince: inst.runningSince } : {}),
      ...(inst.finishedAt !== undefined ? { finishedAt: inst.finishedAt } : {}),
    };
  }

  /** Single-host bookkeeping of a status change: the VM's event list and push → Running latency. */
  private noteStatus(key: VmKey, rec: VmRecord, previous: VirtualMachineStatus | undefined, status: VirtualMachineStatus): void {
    const now = this.now();
    const before = previous?.printableStatus;
    if (before !== status.printableStatus) {
      const warn = status.printableStatus === 'CrashLoopBackOff' || status.printableStatus === 'Unknown';
      pushEvent(rec, { type: warn ? 'Warning' : 'Normal', reason: 'StatusChanged', message: `${before ?? 'new'} → ${status.printableStatus}` }, now);
    }
    const restartRequired = status.conditions?.some((c) => c.type === 'RestartRequired' && c.status === 'True');
    if (restartRequired && !previous?.conditions?.some((c) => c.type === 'RestartRequired' && c.status === 'True')) {
      const changed = this.changedInstancetypes(key, rec);
      pushEvent(rec, {
        type: 'Normal',
        reason: 'RestartRequired',
        message: changed
          ? `git changed the VM's ${changed}; the running instance keeps the spec it started with until it restarts (virtops restart)`
          : 'git changed the VM template; the running instance keeps the old spec until it restarts (virtops restart)',
      }, now);
    }
    const pending = this.pushPending.get(key);
    if (pending !== undefined) {
      if (status.printableStatus === 'Running' && rec.instance && rec.instance.createdAt >= pending) {
        this.opts.metrics.pushToRunning.observe((now - pending) / 1000);
        this.pushPending.delete(key);
      } else if (restartRequired || status.printableStatus === 'Stopped') {
        this.pushPending.delete(key);
      }
    }
  }

  /** Follows the launcher's transitions so a destroyed or crashed domain is handled at once. */
  private watch(key: VmKey, rec: VmRecord): void {
    if (this.opts.watchLaunchers === false || this.stopping) return;
    const inst = rec.instance;
    const current = this.watchers.get(key);
    if (current && current.uid === inst?.uid) return;
    current?.watch.stop();
    this.watchers.delete(key);
    if (!inst || !inst.synced) return;
    const entry = { uid: inst.uid, watch: { stop: () => {} } };
    this.watchers.set(key, entry);
    entry.watch = this.opts.agent.watch(inst, (ended) => {
      if (this.watchers.get(key) !== entry) return;
      if (ended) this.watchers.delete(key);
      this.queue.add(key);
    });
  }

  // ---- instancetypes and preferences -------------------------------------------------------

  /**
   * The VM expanded against the applied revision's instancetypes and preferences. When that
   * fails, a Warning event says why (once per message): a VM without an instance is then
   * refused at start (condition Failure, reason InstancetypeExpansionFailed); a running one
   * keeps the spec it started with.
   */
  private expand(key: VmKey, vm: VirtualMachine, rec: VmRecord): VirtualMachine {
    if (!referencesInstancetype(vm)) {
      this.expansions.delete(key);
      return vm;
    }
    const r = expandVm(vm, this.resolve);
    if (!('errors' in r)) {
      this.expansions.set(key, { vm: r.vm, ...(r.instancetype ? { instancetype: r.instancetype } : {}), ...(r.preference ? { preference: r.preference } : {}) });
      return r.vm;
    }
    const error = `cannot expand the instancetype/preference of the applied revision ${this.applied.sha?.slice(0, 12) ?? '(none)'}: ${r.errors.map((e) => `${e.field}: ${e.message} (fix: ${e.fix})`).join('; ')}`;
    if (this.expansions.get(key)?.error !== error) {
      const running = rec.instance ? '; the running instance keeps the spec it started with' : '';
      pushEvent(rec, { type: 'Warning', reason: 'InstancetypeExpansionFailed', message: `${error}${running}` }, this.now());
      this.opts.log.warn({ vm: key, errors: r.errors }, 'instancetype/preference expansion failed');
    }
    this.expansions.set(key, { vm, error });
    // Running: compare it with itself, so nothing restarts it over this (the event says why).
    return rec.instance ? { ...vm, spec: { ...vm.spec, template: { ...vm.spec.template, spec: structuredClone(rec.instance.spec) } } } : vm;
  }

  /**
   * When an instance starts: a copy of each instancetype/preference it expands from, as the
   * ControllerRevision KubeVirt stores (state dir: revisions/<ns>_<vm>/<name>.json), and the
   * refs that status.instancetypeRef/preferenceRef show from now on.
   */
  private async recordRevisions(key: VmKey, vm: VirtualMachine, expansion: Expansion | undefined): Promise<void> {
    if (!expansion || (!expansion.instancetype && !expansion.preference)) {
      this.startedRefs.set(key, {});
      return;
    }
    const dir = revisionsDir(this.opts.store.dir, vm.metadata.namespace ?? 'default', vm.metadata.name ?? '');
    await mkdir(dir, { recursive: true });
    const refs: StartedRefs = {};
    for (const [field, obj] of [['instancetypeRef', expansion.instancetype], ['preferenceRef', expansion.preference]] as const) {
      if (!obj) continue;
      const rev = controllerRevision(vm, obj);
      const file = join(dir, `${rev.metadata.name}.json`);
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(rev, null, 1), { mode: 0o640 });
      await rename(tmp, file);
      refs[field] = statusRef(rev);
    }
    this.startedRefs.set(key, refs);
  }

  /** `next` with the instancetype/preference refs of the instance (kept across passes and restarts of up). */
  private withInstancetypeRefs(key: VmKey, vm: VirtualMachine, rec: VmRecord, next: VirtualMachineStatus): VirtualMachineStatus {
    if (!referencesInstancetype(vm)) return next;
    const refs = this.startedRefs.get(key) ?? { instancetypeRef: rec.status?.instancetypeRef, preferenceRef: rec.status?.preferenceRef };
    return {
      ...next,
      ...(refs.instancetypeRef ? { instancetypeRef: refs.instancetypeRef } : {}),
      ...(refs.preferenceRef ? { preferenceRef: refs.preferenceRef } : {}),
    };
  }

  /** `instancetype VirtualMachineInstancetype clarge (revision a → b)` when git's differs from the instance's. */
  private changedInstancetypes(key: VmKey, rec: VmRecord): string | undefined {
    const exp = this.expansions.get(key);
    if (!exp || exp.error) return undefined;
    const vmName = exp.vm.metadata.name ?? '';
    const parts: string[] = [];
    for (const [what, obj, ref] of [['instancetype', exp.instancetype, rec.status?.instancetypeRef], ['preference', exp.preference, rec.status?.preferenceRef]] as const) {
      if (!obj || !ref?.controllerRevisionRef?.name) continue;
      const now = revisionName(vmName, obj);
      if (now !== ref.controllerRevisionRef.name) parts.push(`${what} ${obj.kind} ${obj.metadata.name ?? ''} (revision ${ref.controllerRevisionRef.name} → ${now})`);
    }
    return parts.length ? parts.join(' and ') : undefined;
  }

  private recordFor(key: VmKey, vm: VirtualMachine): VmRecord {
    let rec = this.records.get(key);
    if (!rec) {
      rec = { namespace: vm.metadata.namespace ?? 'default', name: vm.metadata.name ?? '', firstSeen: this.now(), events: [] };
      this.records.set(key, rec);
    }
    return rec;
  }

  private async save(key: VmKey, rec: VmRecord): Promise<void> {
    const digest = recordDigest(rec);
    if (this.saved.get(key) === digest) return;
    await this.opts.store.writeVm(rec);
    this.saved.set(key, digest);
  }

  private view(key: VmKey, rec: VmRecord): VmView {
    const inst = rec.instance;
    const failure = reconcileStateFromStatus(rec.status).failure;
    return {
      namespace: rec.namespace,
      name: rec.name,
      firstSeen: new Date(rec.firstSeen).toISOString(),
      ...(rec.revision ? { revision: rec.revision } : {}),
      status: rec.status,
      ...(rec.override ? { override: rec.override } : {}),
      ...(failure ? { failure } : {}),
      inGit: this.desiredVms.has(key),
      ...(inst
        ? {
            instance: {
              uid: inst.uid,
              createdAt: new Date(inst.createdAt).toISOString(),
              ...(inst.pid !== undefined ? { pid: inst.pid } : {}),
              domain: inst.domainName,
              socket: inst.socketPath,
              console: serialSocketPath(inst.shareDir),
              serialLog: `${inst.shareDir}/logs/${inst.domainName}-serial0.log`,
              launcherLog: inst.logFile,
              podDir: inst.podDir,
            },
          }
        : {}),
      events: rec.events,
    };
  }
}

function objKey(o: KubeObject): string {
  return vmKey(o.metadata.namespace, o.metadata.name);
}

function recordDigest(rec: VmRecord): string {
  return createHash('sha1').update(JSON.stringify(rec)).digest('base64');
}

function blankRecord(key: VmKey, now: number): VmRecord {
  const [namespace = 'default', name = ''] = key.split('/');
  return { namespace, name, firstSeen: now, events: [] };
}
