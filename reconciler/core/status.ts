/**
 * VM status as KubeVirt reports it: printableStatus (first matching rule wins, in
 * KubeVirt's order), conditions Ready / Paused / RestartRequired / Failure, generations,
 * startFailure. `lastTransitionTime` of a condition changes only when its status changes,
 * so writing the same status twice is a no-op for watchers.
 *
 * A VM that git declares stopped (Halted) is healthy: printableStatus Stopped, Ready=False
 * (reason VMINotExists) and no Failure condition.
 */
import type { Condition, PrintableStatus, VirtualMachine, VirtualMachineInstanceStatus, VirtualMachineStatus } from '../../api/kubevirt.js';
import type { ObservedGuest } from './launcher-phase.js';
import { inBackoff } from './backoff.js';
import { isLive, reconcileBackoff, vmIntent, type Intent } from './decide.js';
import { CONDITION_ONCE_COMPLETED, REASON_INVALID_SPEC } from './reconcile-state.js';
import { templateChanged } from './spec-change.js';
import type { BackoffPolicy, DecisionContext, ObservedInstance } from './types.js';

export interface StatusContext extends DecisionContext {
  /** The status last written, for stable lastTransitionTime. */
  previous?: VirtualMachineStatus;
  /** A reconcile error to surface as condition Failure (e.g. the launcher could not be started). */
  failure?: { reason: string; message: string };
  backoffPolicy?: BackoffPolicy;
}

export const CONDITION_ORDER = ['Ready', 'Paused', 'AgentConnected', 'Synchronized', 'RestartRequired', CONDITION_ONCE_COMPLETED, 'Failure'] as const;

const NOT_RUNNING_REASONS: Partial<Record<string, PrintableStatus>> = {
  Unschedulable: 'ErrorUnschedulable',
  ErrImagePull: 'ErrImagePull',
  ImagePullBackOff: 'ImagePullBackOff',
  ErrorPvcNotFound: 'ErrorPvcNotFound',
  DataVolumeError: 'DataVolumeError',
  WaitingForVolumeBinding: 'WaitingForVolumeBinding',
  Provisioning: 'Provisioning',
};

export function printableStatus(
  vm: VirtualMachine,
  observed: ObservedInstance | undefined,
  intent: Intent,
  backoffActive: boolean,
): PrintableStatus {
  if (vm.metadata.deletionTimestamp) return 'Terminating';
  const live = observed !== undefined && isLive(observed) ? observed : undefined;
  if (live && (live.terminating || !intent.wantRunning)) return 'Stopping';
  if (live && live.phase === 'Running') return live.paused ? 'Paused' : 'Running';
  if (live && live.phase !== 'Unknown') {
    const mapped = live.reason ? NOT_RUNNING_REASONS[live.reason] : undefined;
    return mapped ?? 'Starting';
  }
  if (!live) {
    if (intent.error) return 'Stopped';
    if (intent.wantRunning && backoffActive && !intent.startRequested) return 'CrashLoopBackOff';
    // About to be (re)started: KubeVirt shows Starting rather than Stopped.
    return intent.wantRunning ? 'Starting' : 'Stopped';
  }
  return 'Unknown';
}

export function computeVmStatus(
  vm: VirtualMachine,
  observed: ObservedInstance | undefined,
  ctx: StatusContext,
): VirtualMachineStatus {
  const intent = vmIntent(vm, observed, ctx);
  const backoff = reconcileBackoff(ctx.backoff, observed, ctx.now, ctx.backoffPolicy);
  const live = observed !== undefined && isLive(observed) ? observed : undefined;
  const ready = live !== undefined && live.phase === 'Running' && !live.paused && !live.terminating && (live.ready ?? false);
  const nowIso = new Date(ctx.now).toISOString();

  const wanted: Condition[] = [];
  if (ready) {
    wanted.push({ type: 'Ready', status: 'True' });
  } else if (!live) {
    wanted.push({ type: 'Ready', status: 'False', reason: 'VMINotExists', message: 'VMI does not exist' });
  } else {
    const reason = live.paused ? 'Paused' : live.phase !== 'Running' ? `VMI${live.phase}` : 'GuestNotReady';
    wanted.push({ type: 'Ready', status: 'False', reason, message: live.message ?? `VMI is ${live.phase}${live.paused ? ' (paused)' : ''}` });
  }
  if (live?.paused) {
    wanted.push({ type: 'Paused', status: 'True', reason: 'PausedByUser', message: 'VMI was paused by user' });
  }
  if (live?.agentConnected) {
    // KubeVirt mirrors the VMI's AgentConnected onto the VM.
    wanted.push({ type: 'AgentConnected', status: 'True' });
  }
  if (live?.outOfSync) {
    // The VMI's condition, surfaced on the VM (KubeVirt mirrors VMI conditions there): the status
    // is the last known one, and says why and since when.
    wanted.push({ type: 'Synchronized', status: 'False', reason: live.outOfSync.reason, message: live.outOfSync.message });
  }
  if (templateChanged(vm, observed)) {
    wanted.push({
      type: 'RestartRequired',
      status: 'True',
      reason: 'TemplateChanged',
      message: 'the VM template changed and the running instance still has the old spec; it applies at the next restart (or set annotation virtops.io/restart-on-change: "true")',
    });
  }
  if (ctx.onceCompleted) {
    wanted.push({ type: CONDITION_ONCE_COMPLETED, status: 'True', reason: 'InstanceFinished', message: 'runStrategy Once: the VM has had its run; it starts again only when asked to (virtops start)' });
  }
  if (intent.error) {
    wanted.push({ type: 'Failure', status: 'True', reason: REASON_INVALID_SPEC, message: intent.error });
  } else if (ctx.failure) {
    wanted.push({ type: 'Failure', status: 'True', reason: ctx.failure.reason, message: ctx.failure.message });
  }

  const status: VirtualMachineStatus = {
    printableStatus: printableStatus(vm, observed, intent, inBackoff(backoff, ctx.now)),
    ready,
    created: live !== undefined,
    conditions: withStableTimes(wanted, ctx.previous?.conditions, nowIso),
  };
  if (intent.strategy) status.runStrategy = intent.strategy;
  const generation = vm.metadata.generation;
  if (generation !== undefined) {
    status.desiredGeneration = generation;
    // The generation the live instance reflects (KubeVirt's meaning); with no live
    // instance nothing lags behind.
    status.observedGeneration = live?.vmGeneration ?? generation;
  }
  if (backoff.consecutiveFailures > 0) {
    status.startFailure = {
      consecutiveFailCount: backoff.consecutiveFailures,
      ...(backoff.lastFailedUid ? { lastFailedVMIUID: backoff.lastFailedUid } : {}),
      ...(backoff.retryAfter !== undefined ? { retryAfterTimestamp: new Date(backoff.retryAfter).toISOString() } : {}),
    };
  }
  return status;
}

/** Keep a condition's lastTransitionTime while its status stays the same. */
export function withStableTimes(wanted: Condition[], previous: Condition[] | undefined, nowIso: string): Condition[] {
  const byType = new Map((previous ?? []).map((c) => [c.type, c]));
  return wanted
    .map((c) => {
      const before = byType.get(c.type);
      const lastTransitionTime = before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : nowIso;
      return { ...c, lastProbeTime: null, lastTransitionTime };
    })
    .sort((a, b) => conditionRank(a.type) - conditionRank(b.type));
}

function conditionRank(type: string): number {
  const i = (CONDITION_ORDER as readonly string[]).indexOf(type);
  return i === -1 ? CONDITION_ORDER.length : i;
}

/**
 * The VMI status fields the guest contributes, as KubeVirt's virt-handler reports them:
 * `interfaces` (every NIC of the domain, with the IPs the agent sees), `guestOSInfo` while the
 * agent answers, and condition AgentConnected=True while it does (KubeVirt removes the
 * condition when the agent goes away rather than setting it False). Conditions keep their
 * lastTransitionTime from `previous` while their status holds. For both modes: the cluster
 * agent merges it into the VMI it writes; on a single host the CLI shows it from the launcher.
 */
export function vmiGuestStatus(guest: ObservedGuest | undefined, previous: Condition[] | undefined, nowIso: string): Pick<VirtualMachineInstanceStatus, 'interfaces' | 'guestOSInfo'> & { conditions: Condition[] } {
  if (!guest) return { conditions: [] };
  const conditions: Condition[] = guest.agentConnected ? [{ type: 'AgentConnected', status: 'True' }] : [];
  return {
    ...(guest.interfaces.length ? { interfaces: guest.interfaces.map((i) => ({ ...i })) } : {}),
    ...(guest.agentConnected && guest.guestOSInfo ? { guestOSInfo: { ...guest.guestOSInfo } } : {}),
    conditions: withStableTimes(conditions, previous, nowIso),
  };
}
