/**
 * Pure mapping from what libvirt reports to what the VMI says: phase, reason, Paused.
 * The launcher feeds it the domain state plus what it knows itself (did it start the
 * domain, did a sync fail, how did the domain stop).
 */
import type { VMIPhase } from '../api/kubevirt.js';
import type { DomainState } from './libvirt/driver.js';

export interface ObservedDomain {
  /** 'Absent' when no domain of that name is defined. */
  state: DomainState | 'Absent';
  /** Whether this launcher started (or adopted) the domain for the current VMI. */
  started: boolean;
  /** A sync failure that ends the VMI (e.g. ErrImagePull). */
  failure?: { reason: string; message: string };
  /** libvirt's last lifecycle event for the domain, e.g. Stopped/Crashed. */
  lastEvent?: { type: string; detail: string };
}

export interface VmiStatusView {
  phase: VMIPhase;
  reason?: string;
  message?: string;
  paused: boolean;
}

export function vmiStatusFor(o: ObservedDomain): VmiStatusView {
  if (o.failure) return { phase: 'Failed', reason: o.failure.reason, message: o.failure.message, paused: false };
  switch (o.state) {
    case 'Running':
    case 'Blocked':
    case 'Shutdown': // shutting down: still running until it is off
      return { phase: 'Running', paused: false };
    case 'Paused':
    case 'PMSuspended':
      return { phase: 'Running', paused: true, reason: o.state === 'Paused' ? 'PausedByUser' : 'GuestSuspended' };
    case 'Crashed':
      return { phase: 'Failed', reason: 'Crashed', message: 'the guest crashed', paused: false };
    case 'NoState':
      return { phase: o.started ? 'Unknown' : 'Scheduled', paused: false };
    case 'Shutoff':
    case 'Absent': {
      if (!o.started) return { phase: 'Scheduled', paused: false };
      const ev = o.lastEvent;
      if (ev && (ev.type === 'Crashed' || /^(Crashed|Failed)/.test(ev.detail))) {
        return { phase: 'Failed', reason: 'Crashed', message: `domain stopped: ${ev.type} ${ev.detail}`, paused: false };
      }
      return { phase: 'Succeeded', paused: false, ...(ev ? { message: `domain stopped: ${ev.type} ${ev.detail}`.trim() } : {}) };
    }
  }
}

/** What a sync must do, given the desired spec hash and the domain as found. */
export type SyncDecision =
  | { action: 'create' }
  | { action: 'unchanged' }
  | { action: 'restart-required'; definedHash: string | null }
  | { action: 'finished' };

export function decideSync(input: {
  desiredHash: string;
  domain: { state: DomainState | 'Absent'; specHash: string | null };
  /** The VMI already ran to completion under this launcher. */
  finished: boolean;
}): SyncDecision {
  const { desiredHash, domain, finished } = input;
  if (finished) return { action: 'finished' };
  const active = domain.state !== 'Absent' && domain.state !== 'Shutoff' && domain.state !== 'Crashed';
  if (!active) return { action: 'create' };
  if (domain.specHash === desiredHash) return { action: 'unchanged' };
  return { action: 'restart-required', definedHash: domain.specHash };
}
