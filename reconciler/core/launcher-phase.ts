/**
 * What a launcher observation says about its VMI, for both modes: the single-host store and
 * the cluster agent call this one function, so a launcher that does not answer is reported
 * the same way everywhere (phase Scheduling while it may still be starting, Failed once it
 * has been silent for `UNRESPONSIVE_AFTER_MS` or its process is gone).
 *
 * KubeVirt's meaning of the phases: Scheduling until the launcher Pod is running and ready,
 * Scheduled once it is and the domain is not yet up, then whatever the launcher reports.
 *
 * When the node cannot see the guest for a while (libvirtd down or restarting, a launcher
 * busy past its answer timeout) the guest itself keeps running: QEMU does not need libvirtd.
 * So the last known phase stands, marked out of sync (the VMI's `Synchronized=False`, as
 * virt-handler reports a VMI it cannot sync), instead of flapping to Starting.
 */
import type { VMIPhase } from '../../api/kubevirt.js';
import type { Millis } from './types.js';

/** A live launcher process whose socket has not answered for this long counts as failed. */
export const UNRESPONSIVE_AFTER_MS = 120_000;

/** What the node saw of a launcher: its answer, or why there was none. */
export type LauncherObservation =
  | {
      reachable: true;
      /** `libvirt`: the launcher's libvirt connection (`connected`, `connecting`, `disconnected`). */
      info: { phase: VMIPhase; state?: string; reason?: string; message?: string; paused: boolean; libvirt?: string; guest?: ObservedGuest };
      /** false: the process that supervises the launcher (its monitor) is gone. */
      supervised?: boolean;
    }
  | { reachable: false; processAlive: boolean; reason: string };

/**
 * What the launcher reports of the guest while it runs (launcher/guest-agent-status.ts
 * GuestInfo, structurally): its NICs with the IPs the agent sees, OS info, whether the agent
 * answers. reconciler/core/status.ts vmiGuestStatus turns it into VMI status fields.
 */
export interface ObservedGuest {
  agentConnected: boolean;
  interfaces: { name?: string; mac?: string; interfaceName?: string; ipAddress?: string; ipAddresses?: string[]; infoSource: string }[];
  guestOSInfo?: { id?: string; name?: string; prettyName?: string; version?: string; versionId?: string; kernelRelease?: string; kernelVersion?: string; machine?: string };
  hostname?: string;
}

export interface LauncherPhase {
  phase: VMIPhase;
  reason?: string;
  message?: string;
  paused?: boolean;
  /** Running and not paused (the VMI's Ready condition). */
  ready?: boolean;
  /** The phase is the last known one: the node cannot see the guest now (VMI Synchronized=False). */
  outOfSync?: OutOfSync;
  /** The guest as the launcher last reported it (absent while not running, or from older launchers). */
  guest?: ObservedGuest;
  /** guest.agentConnected, flat: the VM's mirrored AgentConnected condition (ObservedInstance.agentConnected). */
  agentConnected?: boolean;
}

export interface OutOfSync {
  reason: 'LibvirtUnreachable' | 'LauncherUnresponsive';
  message: string;
}

/** What the observer remembers between observations of one launcher. */
export interface ObservationMemory {
  now: Millis;
  /** The last time this launcher answered, or when it was started (or first watched), whichever is latest. */
  lastContact: Millis;
  /** Where its output goes, named in the messages. */
  logFile: string;
  /** The phase of its last answer that had the guest in view (not out of sync). */
  lastKnown?: LauncherPhase;
  /** Since when its answers say libvirt is unreachable (undefined: they do not). */
  libvirtLostAt?: Millis;
}

/** Whether a launcher's answer says it cannot reach libvirt (absent: an older launcher, taken as connected). */
export function libvirtLost(o: LauncherObservation): boolean {
  return o.reachable && o.info.libvirt !== undefined && o.info.libvirt !== 'connected';
}

export function launcherPhase(o: LauncherObservation, t: ObservationMemory): LauncherPhase {
  if (o.reachable && o.supervised === false) {
    // The socket answers, but no launcher-monitor process of this instance runs (something
    // else serves the socket, e.g. a launcher started by hand): nothing would clean up after
    // it or stop it with the Pod, so it is a failed instance (stopped, then restarted as the
    // runStrategy says), as a virt-launcher Pod whose monitor died ends.
    return { phase: 'Failed', reason: 'LauncherUnsupervised', message: `the launcher socket answers but no launcher-monitor process of this instance runs; see ${t.logFile}` };
  }
  if (o.reachable) {
    const i = o.info;
    const seen: LauncherPhase = {
      phase: i.phase,
      ...(i.reason ? { reason: i.reason } : {}),
      ...(i.message ? { message: i.message } : {}),
      paused: i.paused,
      ready: i.phase === 'Running' && !i.paused,
      ...(i.guest ? { guest: i.guest, agentConnected: i.guest.agentConnected } : {}),
    };
    // A launcher still connecting for its first start is not an outage: nothing ran yet.
    const starting = !t.lastKnown && (i.phase === 'Pending' || i.phase === 'Scheduling' || i.phase === 'Scheduled');
    if (!libvirtLost(o) || starting) return seen;
    // The launcher answers with the domain state it saw last; its own guess stands only when
    // nothing better is known (it never had the guest in view since this observer started).
    const since = new Date(t.libvirtLostAt ?? t.now).toISOString();
    return {
      ...(t.lastKnown ?? seen),
      outOfSync: { reason: 'LibvirtUnreachable', message: `libvirt is unreachable since ${since} (the launcher's connection is ${i.libvirt}); the status shown is the last known one` },
    };
  }
  if (!o.processAlive) return { phase: 'Failed', reason: 'LauncherExited', message: `launcher process is gone; see ${t.logFile}` };
  if (t.now - t.lastContact < UNRESPONSIVE_AFTER_MS) {
    // A launcher that had its guest in view and now does not answer (busy, libvirt calls
    // hanging) keeps its last known phase until it counts as failed; one still starting is
    // Scheduling.
    if (t.lastKnown && t.lastKnown.phase !== 'Scheduling' && t.lastKnown.phase !== 'Scheduled') {
      return {
        ...t.lastKnown,
        outOfSync: { reason: 'LauncherUnresponsive', message: `the launcher has not answered since ${new Date(t.lastContact).toISOString()} (${o.reason}); the status shown is the last known one; see ${t.logFile}` },
      };
    }
    return { phase: 'Scheduling', reason: 'LauncherStarting', message: `launcher is starting (${o.reason})` };
  }
  return {
    phase: 'Failed',
    reason: 'LauncherUnresponsive',
    message: `launcher process is alive but its socket has not answered for ${Math.round((t.now - t.lastContact) / 1000)}s: ${o.reason}; see ${t.logFile}`,
  };
}

/** How soon an observer looks again at a launcher whose phase is not settled (unsettledRecheckMs). */
export const UNSETTLED_RECHECK_MS = 5000;

/**
 * When to look again at a launcher after this phase, or undefined when nothing but its own
 * events needs to. A phase that stands in for an answer (the launcher silent while it may still
 * be starting, or out of sync: silent, or libvirt lost) is not settled: the launcher's event
 * stream is quiet meanwhile (it is not answering, or it reports nothing new once it answers
 * again), so without a look the VMI would show it until the next resync (bench:scaling once
 * saw a VM at 100 VMs on 2 cores take 280 s from its domain's start to Running, under a
 * 5-minute resync: a launcher too busy to answer the look right after its start would do that).
 */
export function unsettledRecheckMs(p: Pick<LauncherPhase, 'phase' | 'reason' | 'outOfSync'>): number | undefined {
  const silentWhileStarting = p.phase === 'Scheduling' && p.reason === 'LauncherStarting';
  return p.outOfSync || silentWhileStarting ? UNSETTLED_RECHECK_MS : undefined;
}

/** The launcher has not taken a VMI yet (spawned, then the reconciler died before the sync). */
export function awaitingVmi(o: LauncherObservation): boolean {
  return o.reachable && o.info.phase === 'Scheduled' && o.info.state === 'Absent';
}

/**
 * What an observer (the node agent, in both modes) remembers of each launcher it observes:
 * when it last answered, its last in-view phase, since when libvirt is lost. In memory only: a
 * restarted observer starts from "watching since now", which errs towards patience.
 */
export class LauncherMemory {
  private readonly byUid = new Map<string, { lastContact?: Millis; lastKnown?: LauncherPhase; libvirtLostAt?: Millis }>();

  /** @param watchingSince when this observer started (counts as a contact for launchers it adopts) */
  constructor(private readonly watchingSince: Millis) {}

  /** The phase of one observation of launcher `uid` (started at `createdAt`), remembering what the next one needs. */
  phase(uid: string, createdAt: Millis, o: LauncherObservation, now: Millis, logFile: string): LauncherPhase {
    const m = this.byUid.get(uid) ?? {};
    if (o.reachable) m.lastContact = now;
    if (libvirtLost(o)) m.libvirtLostAt ??= now;
    else if (o.reachable) delete m.libvirtLostAt;
    const p = launcherPhase(o, {
      now,
      lastContact: Math.max(createdAt, m.lastContact ?? this.watchingSince),
      logFile,
      ...(m.lastKnown ? { lastKnown: m.lastKnown } : {}),
      ...(m.libvirtLostAt !== undefined ? { libvirtLostAt: m.libvirtLostAt } : {}),
    });
    if (!p.outOfSync) m.lastKnown = p;
    this.byUid.set(uid, m);
    return p;
  }

  /** The launcher was stopped for good. */
  forget(uid: string): void {
    this.byUid.delete(uid);
  }
}
