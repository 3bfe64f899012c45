/**
 * The single-host backend: desired state is the applied git revision, observed state comes
 * from the launchers (their sockets, their processes) and libvirt, decisions come from
 * reconciler/core. Level-triggered: every pass re-reads the world for each VM; source
 * events, launcher transitions and a periodic resync only decide *when* a VM is looked at.
 *
 * Persistence (see state-store.ts) happens before and after every step that creates
 * something, so `kill -9` at any point and a new `virtops up` converge without duplicates:
 * instance uids are minted and recorded before a launcher is spawned, the domain name is
 * `<namespace>_<name>` (libvirt keeps names unique), and a launcher is found again by its
 * recorded pid or by the uid on its command line.
 */
import { createHash, randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { VirtualMachine } from '../../api/kubevirt.js';
import { launcherEvents } from '../../launcher/server/client.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { LABEL_VM_NAME } from '../../synth/launcher-pod.js';
import {
  type Action,
  type BackoffPolicy,
  DEFAULT_BACKOFF_POLICY,
  type ImperativeAction,
  type KubeObject,
  type ObservedInstance,
  type OverrideMap,
  type Revision,
  type RevisionPlan,
  applyRevisionToOverrides,
  computeVmStatus,
  decideVmActions,
  effectiveRunStrategy,
  isFinal,
  objectKey,
  planRevision,
  reconcileBackoff,
} from '../core/index.js';
import { type InstanceRecord, type NodeAgent, LauncherError } from '../agent/agent.js';
import type { ReconcilerMetrics } from './metrics.js';
import { type AppliedState, type StateStore, type VmRecord, pushEvent } from './state-store.js';
import { WorkQueue } from './work-queue.js';

export interface DomainLookup {
  exists(name: string): Promise<boolean>;
}

export interface BackendOptions {
  store: StateStore;
  agent: NodeAgent;
  domains: DomainLookup;
  log: Logger;
  metrics: ReconcilerMetrics;
  /** Periodic full pass. */
  resyncMs: number;
  concurrency?: number;
  backoffPolicy?: BackoffPolicy;
  /** Follow each launcher's event stream to react to transitions at once (default true). */
  watchLaunchers?: boolean;
  now?: () => number;
}

/** `<namespace>/<name>` */
export type VmKey = string;

export interface VmView {
  namespace: string;
  name: string;
  firstSeen: string;
  revision?: string;
  status: VmRecord['status'];
  override?: VmRecord['override'];
  failure?: VmRecord['failure'];
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

/** How soon a VM whose action failed is looked at again (besides events and resyncs). */
export const FAILED_ACTION_RETRY_MS = 5000;
/** A live launcher process whose socket has not answered for this long counts as failed. */
export const UNRESPONSIVE_AFTER_MS = 120_000;

export class ReconcileError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
    this.name = 'ReconcileError';
  }
}

export function vmKey(namespace: string | undefined, name: string | undefined): VmKey {
  return `${namespace ?? 'default'}/${name ?? ''}`;
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

export class StandaloneBackend {
  private applied: AppliedState = { manifests: [], inventory: { entries: {} } };
  private desiredVms = new Map<VmKey, VirtualMachine>();
  private desiredPods = new Map<VmKey, PodManifest>();
  private readonly records = new Map<VmKey, VmRecord>();
  /**
   * A digest of each VM's record as last written, to skip unchanged writes. A digest, not the
   * JSON itself: with 1,000 VMs the JSON copies (instance spec, 30 events) held several MiB.
   */
  private readonly saved = new Map<VmKey, string>();
  private readonly pushPending = new Map<VmKey, number>();
  private readonly watchers = new Map<VmKey, { uid: string; abort: AbortController }>();
  private readonly queue: WorkQueue;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly policy: BackoffPolicy;
  private passes = 0;
  private stopping = false;
  /** Last time each instance's launcher answered (in memory: a busy launcher is not a dead one). */
  private readonly lastContact = new Map<string, number>();
  private readonly startedAt = Date.now();

  constructor(private readonly opts: BackendOptions) {
    this.now = opts.now ?? Date.now;
    this.policy = opts.backoffPolicy ?? DEFAULT_BACKOFF_POLICY;
    this.queue = new WorkQueue((k) => this.reconcileKey(k), opts.concurrency ?? 16, (k, err) => {
      opts.log.error({ vm: k, err }, 'reconcile failed');
    });
  }

  /** Loads the state dir (last applied revision, inventory, instances) and starts the resync timer. */
  async start(): Promise<void> {
    const { store, log } = this.opts;
    await store.init();
    this.applied = await store.readApplied();
    const split = splitRevision(this.applied.manifests);
    this.desiredVms = split.vms;
    this.desiredPods = split.pods;
    for (const r of await store.readVms()) {
      const key = vmKey(r.namespace, r.name);
      this.records.set(key, r);
      this.saved.set(key, recordDigest(r));
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
    for (const w of this.watchers.values()) w.abort.abort();
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

  /** Resolves once no reconcile is queued or running. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** A new good revision from the source: plan it, clear overrides it touches, persist, reconcile. */
  async applyRevision(rev: Revision, seenAt = this.now()): Promise<RevisionPlan> {
    const { store, log, metrics } = this.opts;
    const kept = rev.manifests.filter((m) => (m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine') || (m.apiVersion === 'v1' && m.kind === 'Pod'));
    const vmsOnly: Revision = { sha: rev.sha, manifests: kept.filter((m) => m.kind === 'VirtualMachine') };
    const plan = planRevision(this.applied.inventory, vmsOnly);
    const split = splitRevision(kept);

    // Overrides hold until a commit touches their VM.
    const overrides: OverrideMap = {};
    for (const r of this.records.values()) if (r.override) overrides[objectKey(vmObjectRef(r.namespace, r.name))] = r.override;
    const { cleared } = applyRevisionToOverrides(overrides, this.applied.inventory, vmsOnly);
    const now = this.now();
    for (const ok of cleared) {
      const parts = ok.split('/');
      const key = vmKey(parts.at(-2), parts.at(-1));
      const r = this.records.get(key);
      if (r?.override) {
        pushEvent(r, { type: 'Normal', reason: 'OverrideCleared', message: `commit ${rev.sha.slice(0, 12)} changed this VM: the ${r.override.action} override is cleared, git rules again` }, now);
        delete r.override;
      }
    }
    for (const obj of [...plan.create, ...plan.update]) {
      const key = vmKey(obj.metadata.namespace, obj.metadata.name);
      this.pushPending.set(key, seenAt);
      const r = this.records.get(key);
      if (r?.failure) delete r.failure;
    }

    // A good revision after a refused one supersedes the refusal.
    this.applied = { sha: rev.sha, appliedAt: now, seenAt, manifests: kept, inventory: plan.next };
    this.desiredVms = split.vms;
    this.desiredPods = split.pods;
    await store.writeApplied(this.applied);
    metrics.setRevision(rev.sha);
    metrics.refused.set(0);
    log.info(
      { sha: rev.sha, create: plan.create.map(objKey), update: plan.update.map(objKey), prune: plan.prune, unchanged: plan.unchanged.length, overridesCleared: cleared.length },
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
    rec.override = { action, at: now, revision: this.applied.sha ?? '' };
    pushEvent(rec, { type: 'Normal', reason: 'Override', message: `${action} requested: it overrides git for this VM until a commit changes the VM` }, now);
    await this.save(key, rec);
    this.opts.log.info({ vm: key, action }, `override: ${action}`);
    this.queue.add(key);
    return this.view(key, rec);
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
    const change = new Map<VmKey, DiffEntry['change']>();
    if (next && next.sha !== this.applied.sha) {
      const vmObjs = next.manifests.filter((m) => m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine');
      const plan = planRevision(this.applied.inventory, { sha: next.sha, manifests: vmObjs });
      for (const o of plan.create) change.set(vmKey(o.metadata.namespace, o.metadata.name), 'create');
      for (const o of plan.update) change.set(vmKey(o.metadata.namespace, o.metadata.name), 'update');
      vms = splitRevision(next.manifests).vms;
    }
    const entries: DiffEntry[] = [];
    const now = this.now();
    for (const key of [...new Set([...vms.keys(), ...this.records.keys()])].sort()) {
      const vm = vms.get(key);
      const rec = this.records.get(key);
      if (!vm) {
        if (rec) entries.push({ vm: key, change: 'prune', actions: rec.instance ? [{ type: 'delete-instance', uid: rec.instance.uid, gracePeriodSeconds: instanceGrace(rec.instance), reason: 'VM left git: prune' }] : [] });
        continue;
      }
      const observed = rec ? await this.observe(key, rec, vm, false) : undefined;
      const actions = decideVmActions(vm, observed, { now, ...(rec?.override ? { override: rec.override } : {}), ...(rec?.backoff ? { backoff: rec.backoff } : {}), ...(rec?.onceCompleted ? { onceCompleted: true } : {}) }, this.policy);
      entries.push({ vm: key, change: change.get(key) ?? 'unchanged', actions });
    }
    return { ...(this.applied.sha ? { applied: this.applied.sha } : {}), ...(next ? { next: next.sha } : {}), entries };
  }

  // ---- one VM ---------------------------------------------------------------------------

  private async reconcileKey(key: VmKey): Promise<void> {
    if (this.stopping) return;
    const began = performance.now();
    const { metrics, log } = this.opts;
    let result = 'ok';
    try {
      const vm = this.desiredVms.get(key);
      const existing = this.records.get(key);
      if (!vm) {
        if (existing) await this.prune(key, existing);
        return;
      }
      const rec = this.recordFor(key, vm);
      rec.revision = this.applied.sha;
      const observed = await this.observe(key, rec, vm, true);
      const now = this.now();
      rec.backoff = reconcileBackoff(rec.backoff, observed, now, this.policy);
      const rs = effectiveRunStrategy(vm);
      if (rs.ok && rs.strategy === 'Once' && observed && isFinal(observed)) rec.onceCompleted = true;
      const ctx = { now, ...(rec.override ? { override: rec.override } : {}), backoff: rec.backoff, ...(rec.onceCompleted ? { onceCompleted: true } : {}) };
      const actions = decideVmActions(vm, observed, ctx, this.policy);
      let acted = false;
      for (const a of actions) {
        if (this.stopping) break;
        try {
          acted = (await this.carryOut(key, rec, vm, a)) || acted;
          if (a.type !== 'none' && a.type !== 'wait-backoff') metrics.actions.inc({ action: a.type, result: 'ok' });
        } catch (err) {
          result = 'error';
          metrics.actions.inc({ action: a.type, result: 'error' });
          const reason = err instanceof ReconcileError || err instanceof LauncherError ? err.reason : 'ReconcileError';
          const message = (err as Error).message;
          rec.failure = { reason, message };
          pushEvent(rec, { type: 'Warning', reason, message }, this.now());
          log.error({ vm: key, action: a.type, reason, err: message }, `${a.type} failed`);
          // Look again soon: the next pass re-syncs a launcher that is up but has no VMI, or
          // finds it gone and backs off (CrashLoopBackOff), whichever is the case.
          this.queue.addAfter(key, FAILED_ACTION_RETRY_MS);
          break;
        }
      }
      const after = acted ? await this.observe(key, rec, vm, false) : observed;
      this.updateStatus(key, rec, vm, after);
      await this.save(key, rec);
      this.watch(key, rec);
    } catch (err) {
      result = 'error';
      throw err;
    } finally {
      metrics.reconciles.inc({ result });
      metrics.reconcileDuration.observe((performance.now() - began) / 1000);
    }
  }

  /** Returns true if the world changed. */
  private async carryOut(key: VmKey, rec: VmRecord, vm: VirtualMachine, a: Action): Promise<boolean> {
    const { agent, log } = this.opts;
    switch (a.type) {
      case 'none':
        return false;
      case 'wait-backoff': {
        const wait = Math.max(0, a.until - this.now());
        pushEvent(rec, { type: 'Warning', reason: 'CrashLoopBackOff', message: `${a.reason}; next start in ${Math.ceil(wait / 1000)}s` }, this.now());
        this.queue.addAfter(key, wait + 10);
        return false;
      }
      case 'sync-instance': {
        if (!rec.instance) return false;
        await agent.command(rec.instance, a.paused ? 'pause' : 'unpause');
        pushEvent(rec, { type: 'Normal', reason: a.paused ? 'Paused' : 'Unpaused', message: a.reason }, this.now());
        return true;
      }
      case 'delete-instance': {
        const inst = rec.instance;
        if (!inst || inst.uid !== a.uid) return false;
        log.info({ vm: key, uid: inst.uid, grace: a.gracePeriodSeconds, reason: a.reason }, 'stopping instance');
        await agent.stop(inst, a.gracePeriodSeconds);
        delete rec.instance;
        this.lastContact.delete(inst.uid);
        // Status follows at once, so no reader sees the old instance's status without it.
        this.updateStatus(key, rec, vm, undefined);
        await this.save(key, rec);
        pushEvent(rec, { type: 'Normal', reason: 'Stopped', message: `instance ${inst.uid} stopped: ${a.reason}` }, this.now());
        return true;
      }
      case 'create-instance':
        await this.createInstance(key, rec, vm, a.reason);
        return true;
    }
  }

  private async createInstance(key: VmKey, rec: VmRecord, vm: VirtualMachine, reason: string): Promise<void> {
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
    const now = this.now();
    const { spec, record } = agent.plan(vm, pod, randomUUID(), now);
    // Recorded before the process exists, so a crash from here on finds it by uid.
    rec.instance = record;
    delete rec.failure;
    this.updateStatus(key, rec, vm, { uid: record.uid, phase: 'Scheduling', reason: 'LauncherStarting', spec: record.spec, createdAt: record.createdAt });
    await this.save(key, rec);
    pushEvent(rec, { type: 'Normal', reason: 'Creating', message: `${reason}: starting launcher for instance ${record.uid}` }, now);
    await agent.spawn(record, spec);
    await this.save(key, rec);
    await agent.waitReady(record);
    const sync = await agent.sync(vm, record, (ms) => {
      log.info({ vm: key, uid: record.uid, waitingSeconds: Math.round(ms / 1000) }, 'launcher still preparing the VMI (pulling images, building disks, starting QEMU)');
    });
    record.synced = true;
    for (const w of sync.warnings ?? []) pushEvent(rec, { type: 'Warning', reason: 'ConversionWarning', message: w }, this.now());
    pushEvent(rec, { type: 'Normal', reason: 'Started', message: `instance ${record.uid}: launcher pid ${record.pid}, domain ${sync.domain} ${sync.state}` }, this.now());
    log.info({ vm: key, uid: record.uid, pid: record.pid, domain: sync.domain, state: sync.state, ms: this.now() - now }, 'instance started');
  }

  private async prune(key: VmKey, rec: VmRecord): Promise<void> {
    const { agent, store, log } = this.opts;
    if (rec.instance) {
      log.info({ vm: key, uid: rec.instance.uid }, 'VM left git: stopping its instance');
      await agent.stop(rec.instance, instanceGrace(rec.instance));
    }
    await agent.removeVmFiles(rec.namespace, rec.name);
    await store.removeVm(rec.namespace, rec.name);
    this.records.delete(key);
    this.saved.delete(key);
    this.pushPending.delete(key);
    this.watchers.get(key)?.abort.abort();
    this.watchers.delete(key);
    log.info({ vm: key }, 'pruned: instance, launcher, domain and VM files removed');
  }

  /**
   * What the instance looks like now. A launcher that never received its VMI (the
   * reconciler died between spawn and sync) gets it here, when `adopt` is set.
   */
  private async observe(key: VmKey, rec: VmRecord, vm: VirtualMachine, adopt: boolean): Promise<ObservedInstance | undefined> {
    const inst = rec.instance;
    if (!inst) return undefined;
    const { agent, log } = this.opts;
    let o = await agent.observe(inst);
    if (adopt && o.reachable && !inst.synced && o.info.phase === 'Scheduled' && o.info.state === 'Absent') {
      log.info({ vm: key, uid: inst.uid }, 'adopting a launcher that never received its VMI: syncing it');
      try {
        await agent.sync(vm, inst);
        inst.synced = true;
      } catch (err) {
        rec.failure = { reason: err instanceof LauncherError ? err.reason : 'SyncFailed', message: (err as Error).message };
      }
      o = await agent.observe(inst);
    }
    const now = this.now();
    let view: Pick<ObservedInstance, 'phase' | 'reason' | 'message' | 'paused' | 'ready'>;
    if (o.reachable) {
      this.lastContact.set(inst.uid, now);
      const i = o.info;
      if (i.phase !== 'Scheduled' || i.state !== 'Absent') inst.synced = true;
      view = { phase: i.phase, ...(i.reason ? { reason: i.reason } : {}), ...(i.message ? { message: i.message } : {}), paused: i.paused, ready: i.phase === 'Running' && !i.paused };
    } else if (o.processAlive && now - Math.max(inst.createdAt, this.lastContact.get(inst.uid) ?? this.startedAt) < UNRESPONSIVE_AFTER_MS) {
      view = { phase: 'Scheduling', reason: 'LauncherStarting', message: `launcher is starting (${o.reason})` };
    } else if (o.processAlive) {
      view = { phase: 'Failed', reason: 'LauncherUnresponsive', message: `launcher process is alive but its socket does not answer: ${o.reason}` };
    } else {
      view = { phase: 'Failed', reason: 'LauncherExited', message: `launcher process is gone; see ${inst.logFile}` };
    }
    if (view.phase === 'Running' && inst.runningSince === undefined) inst.runningSince = now;
    if ((view.phase === 'Succeeded' || view.phase === 'Failed') && inst.finishedAt === undefined) inst.finishedAt = now;
    return {
      uid: inst.uid,
      ...view,
      spec: inst.spec,
      ...(inst.vmGeneration !== undefined ? { vmGeneration: inst.vmGeneration } : {}),
      createdAt: inst.createdAt,
      ...(inst.runningSince !== undefined ? { runningSince: inst.runningSince } : {}),
      ...(inst.finishedAt !== undefined ? { finishedAt: inst.finishedAt } : {}),
    };
  }

  private updateStatus(key: VmKey, rec: VmRecord, vm: VirtualMachine, observed: ObservedInstance | undefined): void {
    const now = this.now();
    const status = computeVmStatus(vm, observed, {
      now,
      ...(rec.override ? { override: rec.override } : {}),
      ...(rec.backoff ? { backoff: rec.backoff } : {}),
      ...(rec.onceCompleted ? { onceCompleted: true } : {}),
      ...(rec.status ? { previous: rec.status } : {}),
      ...(rec.failure ? { failure: rec.failure } : {}),
      backoffPolicy: this.policy,
    });
    const before = rec.status?.printableStatus;
    if (before !== status.printableStatus) {
      const warn = status.printableStatus === 'CrashLoopBackOff' || status.printableStatus === 'Unknown';
      pushEvent(rec, { type: warn ? 'Warning' : 'Normal', reason: 'StatusChanged', message: `${before ?? 'new'} → ${status.printableStatus}` }, now);
      this.opts.log.info({ vm: key, from: before ?? null, to: status.printableStatus }, `${key} ${status.printableStatus}`);
    }
    const restartRequired = status.conditions?.some((c) => c.type === 'RestartRequired' && c.status === 'True');
    if (restartRequired && !rec.status?.conditions?.some((c) => c.type === 'RestartRequired' && c.status === 'True')) {
      pushEvent(rec, { type: 'Normal', reason: 'RestartRequired', message: 'git changed the VM template; the running instance keeps the old spec until it restarts (virtops restart)' }, now);
    }
    rec.status = status;
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
    current?.abort.abort();
    this.watchers.delete(key);
    if (!inst || !inst.synced) return;
    const abort = new AbortController();
    this.watchers.set(key, { uid: inst.uid, abort });
    void (async () => {
      try {
        let first = true;
        for await (const _t of launcherEvents(inst.socketPath, abort.signal)) {
          if (first) {
            first = false; // the snapshot
            continue;
          }
          this.queue.add(key);
        }
      } catch {
        // The launcher went away: the next pass notices.
      } finally {
        if (this.watchers.get(key)?.abort === abort) {
          this.watchers.delete(key);
          if (!abort.signal.aborted) this.queue.add(key);
        }
      }
    })();
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
    return {
      namespace: rec.namespace,
      name: rec.name,
      firstSeen: new Date(rec.firstSeen).toISOString(),
      ...(rec.revision ? { revision: rec.revision } : {}),
      status: rec.status,
      ...(rec.override ? { override: rec.override } : {}),
      ...(rec.failure ? { failure: rec.failure } : {}),
      inGit: this.desiredVms.has(key),
      ...(inst
        ? {
            instance: {
              uid: inst.uid,
              createdAt: new Date(inst.createdAt).toISOString(),
              ...(inst.pid !== undefined ? { pid: inst.pid } : {}),
              domain: inst.domainName,
              socket: inst.socketPath,
              console: join(dirname(inst.socketPath), `${inst.domainName}-serial0`),
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

function vmObjectRef(namespace: string, name: string): Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'> {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { namespace, name } };
}

function objKey(o: KubeObject): string {
  return vmKey(o.metadata.namespace, o.metadata.name);
}

/** The VMI's own grace period (the Pod's is the VMI's plus a 30 s margin). */
function instanceGrace(inst: InstanceRecord): number {
  return inst.spec.terminationGracePeriodSeconds ?? Math.max(0, inst.podGraceSeconds - 30);
}

function recordDigest(rec: VmRecord): string {
  return createHash('sha1').update(JSON.stringify(rec)).digest('base64');
}

function blankRecord(key: VmKey, now: number): VmRecord {
  const [namespace = 'default', name = ''] = key.split('/');
  return { namespace, name, firstSeen: now, events: [] };
}
