/**
 * The one VM reconcile, for both modes (KubeVirt's VM controller, Flux's `Reconcile`):
 * `reconcileVm(key, snapshot, deps) → result`. It reads the VM's instance, asks
 * reconciler/core what to do, carries the actions out through an `InstanceStore`, and
 * writes the status `computeVmStatus` returns through a `VmStatusSink`. The modes differ
 * only in the store and sink they pass:
 *
 *   single host  instances are local records whose launchers run on this host
 *                (reconciler/standalone/local-instances.ts); status in the state dir
 *   cluster      instances are VirtualMachineInstances + launcher Pods in the API server,
 *                run by the node agents (reconciler/cluster/controller.ts); status on the VM
 *
 * What a pass must remember for the next one (CrashLoopBackOff, Once completion, the last
 * action error) is read back from the VM's status (core/reconcile-state.ts), so a restart or
 * a failover changes nothing. Level-triggered: every pass re-reads the world; an event only
 * decides when a VM is looked at.
 */
import type { Logger } from 'pino';
import type { VirtualMachine, VirtualMachineStatus } from '../../api/kubevirt.js';
import {
  type Action,
  type BackoffPolicy,
  DEFAULT_BACKOFF_POLICY,
  type ObservedInstance,
  type Override,
  computeVmStatus,
  decideVmActions,
  effectiveRunStrategy,
  isFinal,
  reconcileBackoff,
  reconcileStateFromStatus,
} from '../core/index.js';
import type { ReconcileResult } from '../queue.js';

/** `<namespace>/<name>` */
export type VmKey = string;

/** How soon a VM whose action failed is looked at again (besides events and resyncs). */
export const FAILED_ACTION_RETRY_MS = 5000;

export function vmKey(namespace: string | undefined, name: string | undefined): VmKey {
  return `${namespace ?? 'default'}/${name ?? ''}`;
}

/** What a store knows of one VM when a pass starts. */
export interface VmSnapshot {
  vm: VirtualMachine;
  /** The status as last written; the durable reconcile state is read back from it. */
  status?: VirtualMachineStatus;
  /** An imperative start/stop/restart/pause: single host keeps it in its state, a cluster on the VM (annotation virtops.io/override). */
  override?: Override;
}

/** A reconcile step that cannot go on; becomes condition Failure and a Warning event. */
export class ReconcileError extends Error {
  constructor(readonly reason: string, message: string, readonly retryAfterMs?: number) {
    super(message);
    this.name = 'ReconcileError';
  }
}

export interface StepOutcome {
  /** Look at the VM again after this long. */
  requeueAfterMs?: number;
  /** The world is not ready for this pass's later actions (e.g. an instance still terminating). */
  halt?: boolean;
}

/**
 * Called while a long step (starting a launcher) makes progress, so readers see Starting.
 * Each call goes through the status sink and becomes the `previous` of the next one, so a
 * store that calls it needs a sink that persists at once (the local store; the cluster's
 * controller never calls it: its sink may defer a transient status).
 */
export type Progress = (observed: ObservedInstance | undefined) => Promise<void>;

/** Where a VM's instances live and how they are made and removed. */
export interface InstanceStore {
  /**
   * The VM's current instance (undefined: none). May repair the instance's own pieces (a
   * cluster VMI whose launcher Pod is missing); throws ReconcileError when it cannot tell.
   */
  observe(key: VmKey, vm: VirtualMachine): Promise<ObservedInstance | undefined>;
  create(key: VmKey, vm: VirtualMachine, reason: string, progress: Progress): Promise<StepOutcome>;
  delete(key: VmKey, vm: VirtualMachine, uid: string, gracePeriodSeconds: number, reason: string, progress: Progress): Promise<StepOutcome>;
  setPaused(key: VmKey, vm: VirtualMachine, uid: string, paused: boolean, reason: string): Promise<StepOutcome>;
}

export interface VmStatusSink {
  /** Persists `next` (`previous`: as last written). A deferred write asks for a later look. */
  write(key: VmKey, vm: VirtualMachine, previous: VirtualMachineStatus | undefined, next: VirtualMachineStatus, observed: ObservedInstance | undefined): Promise<StepOutcome>;
}

export interface VmEventSink {
  event(key: VmKey, vm: VirtualMachine, type: 'Normal' | 'Warning', reason: string, message: string): void | Promise<void>;
}

export interface VmReconcileDeps {
  instances: InstanceStore;
  status: VmStatusSink;
  events: VmEventSink;
  log: Logger;
  now: () => number;
  backoffPolicy?: BackoffPolicy;
  /** Counts carried-out actions (metrics). */
  onAction?: (type: Action['type'], result: 'ok' | 'error') => void;
}

/** Statuses worth a Warning event when a VM enters them. */
const WARNING_STATUSES = new Set(['CrashLoopBackOff', 'ErrorUnschedulable', 'ErrImagePull', 'ImagePullBackOff', 'ErrorPvcNotFound', 'DataVolumeError', 'Unknown']);

export async function reconcileVm(key: VmKey, snap: VmSnapshot, deps: VmReconcileDeps): Promise<ReconcileResult> {
  const { vm, override } = snap;
  const { instances, log } = deps;
  const policy = deps.backoffPolicy ?? DEFAULT_BACKOFF_POLICY;
  const remembered = reconcileStateFromStatus(snap.status);
  let failure = remembered.failure;
  let requeue: number | undefined;
  const later = (ms: number | undefined) => {
    if (ms !== undefined) requeue = Math.min(requeue ?? Infinity, Math.max(0, ms));
  };

  let observed: ObservedInstance | undefined;
  let blocked = false;
  try {
    observed = await instances.observe(key, vm);
  } catch (err) {
    if (!(err instanceof ReconcileError)) throw err;
    failure = { reason: err.reason, message: err.message };
    later(err.retryAfterMs ?? FAILED_ACTION_RETRY_MS);
    blocked = true;
  }

  const now = deps.now();
  const backoff = reconcileBackoff(remembered.backoff, observed, now, policy);
  const rs = effectiveRunStrategy(vm);
  const onceCompleted = remembered.onceCompleted === true || (rs.ok && rs.strategy === 'Once' && observed !== undefined && isFinal(observed));
  const ctx = { now, backoff, ...(override ? { override } : {}), ...(onceCompleted ? { onceCompleted } : {}) };

  let previous = snap.status;
  const writeStatus = async (obs: ObservedInstance | undefined): Promise<void> => {
    const status = computeVmStatus(vm, obs, { ...ctx, now: deps.now(), ...(previous ? { previous } : {}), ...(failure ? { failure } : {}), backoffPolicy: policy });
    if (previous?.printableStatus !== status.printableStatus) {
      log.info({ vm: key, from: previous?.printableStatus ?? null, to: status.printableStatus }, `${key} ${status.printableStatus}`);
      if (WARNING_STATUSES.has(status.printableStatus ?? '')) {
        const message =
          status.printableStatus === 'CrashLoopBackOff'
            ? `the VM keeps failing (${status.startFailure?.consecutiveFailCount ?? '?'} failures in a row); next start after ${status.startFailure?.retryAfterTimestamp ?? 'a backoff'}`
            : obs?.message ?? `the VM is ${status.printableStatus}`;
        await deps.events.event(key, vm, 'Warning', status.printableStatus ?? 'Unknown', message);
      }
    }
    const out = await deps.status.write(key, vm, previous, status, obs);
    previous = status;
    later(out.requeueAfterMs);
  };

  const actions = blocked ? [] : decideVmActions(vm, observed, ctx, policy);
  let acted = false;
  for (const a of actions) {
    if (a.type === 'none') continue;
    if (a.type === 'wait-backoff') {
      later(a.until - now + 10);
      continue;
    }
    try {
      const out = await carryOut(key, vm, a, instances, writeStatus);
      acted = true;
      deps.onAction?.(a.type, 'ok');
      // The last error is shown until an action succeeds or a pass finds nothing to do.
      failure = undefined;
      later(out.requeueAfterMs);
      if (out.halt) break;
    } catch (err) {
      deps.onAction?.(a.type, 'error');
      const reason = (err as { reason?: unknown }).reason;
      failure = { reason: typeof reason === 'string' ? reason : 'ReconcileError', message: (err as Error).message };
      log.error({ vm: key, action: a.type, reason: failure.reason, err: failure.message }, `${a.type} failed`);
      // An event when the failure is news, not at every retry (the status's Failure condition
      // holds it meanwhile): a create failing every 5 s would otherwise flood the history.
      if (remembered.failure?.reason !== failure.reason || remembered.failure.message !== failure.message) {
        await deps.events.event(key, vm, 'Warning', failure.reason, failure.message);
      }
      // Look again soon: the next pass finds the instance up (and syncs it), or gone (and backs off).
      later((err as { retryAfterMs?: number }).retryAfterMs ?? FAILED_ACTION_RETRY_MS);
      acted = true;
      break;
    }
  }
  if (!blocked && actions.every((a) => a.type === 'none')) failure = undefined;
  if (acted && !blocked) {
    try {
      observed = await instances.observe(key, vm);
    } catch (err) {
      if (!(err instanceof ReconcileError)) throw err;
      failure = { reason: err.reason, message: err.message };
      observed = undefined;
    }
  }
  await writeStatus(observed);
  return requeue !== undefined ? { requeueAfterMs: requeue } : {};
}

function carryOut(key: VmKey, vm: VirtualMachine, a: Exclude<Action, { type: 'none' | 'wait-backoff' }>, instances: InstanceStore, progress: Progress): Promise<StepOutcome> {
  switch (a.type) {
    case 'create-instance':
      return instances.create(key, vm, a.reason, progress);
    case 'delete-instance':
      return instances.delete(key, vm, a.uid, a.gracePeriodSeconds, a.reason, progress);
    case 'sync-instance':
      return instances.setPaused(key, vm, a.uid, a.paused, a.reason);
  }
}
