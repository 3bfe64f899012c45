/**
 * Small shared types of the reconciler's pure core. Both reconciler modes (single host and
 * cluster) translate their world into these shapes, call the decision functions, and carry
 * out the returned actions. Times are epoch milliseconds so that no function here reads a
 * clock: the caller passes `now`.
 */
import type * as api from '../../api/kubevirt.js';

/** Epoch milliseconds. */
export type Millis = number;

/**
 * What the runtime reports about a VM's current instance (VMI): the shell builds this from
 * the launcher (single host) or from the VMI object (cluster).
 */
export interface ObservedInstance {
  /** Identity of this incarnation; a restart yields a new uid. */
  uid: string;
  phase: api.VMIPhase;
  /**
   * Why the instance is in its phase. Recognised values: `Unschedulable`, `ErrImagePull`,
   * `ImagePullBackOff`, `ErrorPvcNotFound`, `DataVolumeError`, `Provisioning` (while not
   * running) and `GuestShutdown` (a clean stop from inside the guest, phase Succeeded).
   */
  reason?: string;
  message?: string;
  /** The VMI spec the instance was started with (compared with the VM's template). */
  spec: api.VirtualMachineInstanceSpec;
  /** The VM generation the instance was created from, when known. */
  vmGeneration?: number;
  /** When the instance was created. */
  createdAt: Millis;
  /** When it last entered phase Running; absent if it never ran. */
  runningSince?: Millis;
  /** When it reached Succeeded/Failed. */
  finishedAt?: Millis;
  /** The guest is paused (phase stays Running). */
  paused?: boolean;
  /** Ready as the VMI's Ready condition says (running, not paused, agent/launcher healthy). */
  ready?: boolean;
  /** Deletion was requested and the instance is shutting down. */
  terminating?: boolean;
  /**
   * The phase is the last known one: the node cannot see the guest now (libvirt unreachable,
   * launcher not answering). Becomes condition Synchronized=False; nothing is restarted for it.
   */
  outOfSync?: { reason: string; message: string };
  /** Whether the guest agent answers (from the launcher's guest report; absent: unknown or no agent). */
  agentConnected?: boolean;
}

export type ImperativeAction = 'start' | 'stop' | 'restart' | 'pause' | 'unpause';
export const IMPERATIVE_ACTIONS: readonly ImperativeAction[] = ['start', 'stop', 'restart', 'pause', 'unpause'];

/**
 * An imperative request from the CLI (`virtops start|stop|...`), recorded on the VM. It
 * holds until a new git revision touches that VM (see applyRevisionToOverrides): git stays
 * the source of truth, the override is a documented, visible deviation from it.
 */
export interface Override {
  action: ImperativeAction;
  /** When it was requested. */
  at: Millis;
  /** Revision (commit SHA) that was current when it was requested. */
  revision: string;
}

/** CrashLoopBackOff bookkeeping for one VM. */
export interface BackoffState {
  /** Failures in a row without a stable run in between. */
  consecutiveFailures: number;
  /** No new instance before this time. */
  retryAfter?: Millis;
  /** uid of the last failed instance already counted (makes failure events idempotent). */
  lastFailedUid?: string;
}

export const NO_BACKOFF: BackoffState = Object.freeze({ consecutiveFailures: 0 });

export interface BackoffPolicy {
  initialMs: Millis;
  maxMs: Millis;
  /** A run at least this long counts as stable and resets the failure count. */
  stableAfterMs: Millis;
}

export type BackoffEvent =
  | { type: 'failed'; uid: string; runningSince?: Millis; finishedAt?: Millis }
  | { type: 'succeeded'; uid: string }
  | { type: 'running'; uid: string; since: Millis };

export interface DecisionContext {
  now: Millis;
  override?: Override;
  backoff?: BackoffState;
  /** Set once a runStrategy Once VM's instance has finished; the shell persists it. */
  onceCompleted?: boolean;
}

/** What the shell must do for one VM. A list is carried out in order. */
export type Action =
  | { type: 'create-instance'; reason: string }
  | { type: 'delete-instance'; uid: string; gracePeriodSeconds: number; reason: string }
  | { type: 'sync-instance'; uid: string; paused: boolean; reason: string }
  | { type: 'wait-backoff'; until: Millis; reason: string }
  | { type: 'none'; reason: string; error?: string };

export type ActionType = Action['type'];

// ---- inventory and revisions ----------------------------------------------------------

/** Any Kubernetes-style object read from dist/. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** `apiVersion/kind/namespace/name`; namespace `default` when unset. */
export type ObjectKey = string;

/** One commit's validated manifests. */
export interface Revision {
  sha: string;
  manifests: KubeObject[];
}

/** A commit the source refused to yield; the previous good revision stays current. */
export interface RevisionRefused {
  sha: string;
  errors: string[];
}

/** What we applied: the objects this reconciler owns. Anything else is foreign. */
export interface Inventory {
  /** The revision the inventory was last brought to. */
  revision?: string;
  /** Object key → content hash of the object as applied. */
  entries: Record<ObjectKey, string>;
}

export interface RevisionPlan {
  create: KubeObject[];
  update: KubeObject[];
  unchanged: KubeObject[];
  /** Keys of owned objects that left git. */
  prune: ObjectKey[];
  /** The inventory after applying the plan. */
  next: Inventory;
}
