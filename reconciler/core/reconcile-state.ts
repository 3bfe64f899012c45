/**
 * The little a VM reconcile must remember between passes (CrashLoopBackOff, whether a
 * runStrategy Once VM has had its run, the last action error) lives in the VM's status in
 * both modes, nowhere else: a restarted `virtops up` or a controller that takes over after a
 * failover reads it back from there and carries on where the last one stopped.
 *
 *   backoff        status.startFailure (KubeVirt's field: consecutiveFailCount,
 *                  lastFailedVMIUID, retryAfterTimestamp)
 *   onceCompleted  condition OnceCompleted=True
 *   failure        condition Failure=True (except InvalidSpec, which is recomputed each pass)
 */
import type { VirtualMachineStatus } from '../../api/kubevirt.js';
import type { BackoffState } from './types.js';

export const CONDITION_ONCE_COMPLETED = 'OnceCompleted';
export const REASON_INVALID_SPEC = 'InvalidSpec';

export interface ReconcileState {
  backoff?: BackoffState;
  onceCompleted?: boolean;
  failure?: { reason: string; message: string };
}

export function reconcileStateFromStatus(status: VirtualMachineStatus | undefined): ReconcileState {
  if (!status) return {};
  const out: ReconcileState = {};
  const sf = status.startFailure;
  if (sf && (sf.consecutiveFailCount ?? 0) > 0) {
    const retryAfter = sf.retryAfterTimestamp ? Date.parse(sf.retryAfterTimestamp) : NaN;
    out.backoff = {
      consecutiveFailures: sf.consecutiveFailCount ?? 0,
      ...(sf.lastFailedVMIUID ? { lastFailedUid: sf.lastFailedVMIUID } : {}),
      ...(Number.isNaN(retryAfter) ? {} : { retryAfter }),
    };
  }
  const conditions = status.conditions ?? [];
  if (conditions.some((c) => c.type === CONDITION_ONCE_COMPLETED && c.status === 'True')) out.onceCompleted = true;
  const failure = conditions.find((c) => c.type === 'Failure' && c.status === 'True' && c.reason !== REASON_INVALID_SPEC);
  if (failure) out.failure = { reason: failure.reason ?? 'ReconcileError', message: failure.message ?? '' };
  return out;
}
