/**
 * What a launcher observation says about its VMI, for both modes: the single-host store and
 * the cluster agent call this one function, so a launcher that does not answer is reported
 * the same way everywhere (phase Scheduling while it may still be starting, Failed once it
 * has been silent for `UNRESPONSIVE_AFTER_MS` or its process is gone).
 *
 * KubeVirt's meaning of the phases: Scheduling until the launcher Pod is running and ready,
 * Scheduled once it is and the domain is not yet up, then whatever the launcher reports.
 */
import type { VMIPhase } from '../../api/kubevirt.js';
import type { Millis } from './types.js';

/** A live launcher process whose socket has not answered for this long counts as failed. */
export const UNRESPONSIVE_AFTER_MS = 120_000;

/** What the node saw of a launcher: its answer, or why there was none. */
export type LauncherObservation =
  | {
      reachable: true;
      info: { phase: VMIPhase; state?: string; reason?: string; message?: string; paused: boolean };
      /** false: the process that supervises the launcher (its monitor) is gone. */
      supervised?: boolean;
    }
  | { reachable: false; processAlive: boolean; reason: string };

export interface LauncherPhase {
  phase: VMIPhase;
  reason?: string;
  message?: string;
  paused?: boolean;
  /** Running and not paused (the VMI's Ready condition). */
  ready?: boolean;
}

/**
 * @param lastContact the last time this launcher answered, or when it was started (or when
 *   this process started watching it, for an adopted launcher), whichever is latest
 * @param logFile where its output goes, named in the messages
 */
export function launcherPhase(o: LauncherObservation, t: { now: Millis; lastContact: Millis; logFile: string }): LauncherPhase {
  if (o.reachable && o.supervised === false) {
    // Nothing would clean up after this launcher if it died, nor stop it with the Pod: it is
    // treated as a failed instance (stopped, then restarted as the runStrategy says), as a
    // virt-launcher Pod whose monitor died ends.
    return { phase: 'Failed', reason: 'LauncherUnsupervised', message: `the launcher answers but its monitor process is gone; see ${t.logFile}` };
  }
  if (o.reachable) {
    const i = o.info;
    return {
      phase: i.phase,
      ...(i.reason ? { reason: i.reason } : {}),
      ...(i.message ? { message: i.message } : {}),
      paused: i.paused,
      ready: i.phase === 'Running' && !i.paused,
    };
  }
  if (!o.processAlive) return { phase: 'Failed', reason: 'LauncherExited', message: `launcher process is gone; see ${t.logFile}` };
  if (t.now - t.lastContact < UNRESPONSIVE_AFTER_MS) {
    return { phase: 'Scheduling', reason: 'LauncherStarting', message: `launcher is starting (${o.reason})` };
  }
  return {
    phase: 'Failed',
    reason: 'LauncherUnresponsive',
    message: `launcher process is alive but its socket has not answered for ${Math.round((t.now - t.lastContact) / 1000)}s: ${o.reason}; see ${t.logFile}`,
  };
}

/** The launcher has not taken a VMI yet (spawned, then the reconciler died before the sync). */
export function awaitingVmi(o: LauncherObservation): boolean {
  return o.reachable && o.info.phase === 'Scheduled' && o.info.state === 'Absent';
}
