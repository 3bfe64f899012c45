import { describe, expect, it } from 'vitest';
import { UNRESPONSIVE_AFTER_MS, awaitingVmi, launcherPhase, type LauncherObservation } from '../../../reconciler/core/index.js';

const t = (now: number, lastContact = 0) => ({ now, lastContact, logFile: '/pods/x/launcher.log' });

describe('launcherPhase: one observation → phase function for both modes', () => {
  it.each<[string, LauncherObservation, number, string, string | undefined]>([
    ['answering, running', { reachable: true, info: { phase: 'Running', state: 'Running', paused: false } }, 5, 'Running', undefined],
    ['answering, no VMI yet', { reachable: true, info: { phase: 'Scheduled', state: 'Absent', paused: false } }, 5, 'Scheduled', undefined],
    ['silent but alive, recently started', { reachable: false, processAlive: true, reason: 'ECONNREFUSED' }, UNRESPONSIVE_AFTER_MS - 1, 'Scheduling', 'LauncherStarting'],
    ['silent but alive for too long', { reachable: false, processAlive: true, reason: 'timeout' }, UNRESPONSIVE_AFTER_MS, 'Failed', 'LauncherUnresponsive'],
    ['process gone', { reachable: false, processAlive: false, reason: 'ENOENT' }, 5, 'Failed', 'LauncherExited'],
  ])('%s', (_name, o, now, phase, reason) => {
    const p = launcherPhase(o, t(now));
    expect(p.phase).toBe(phase);
    expect(p.reason).toBe(reason);
  });

  it('ready only when running and not paused', () => {
    expect(launcherPhase({ reachable: true, info: { phase: 'Running', paused: true } }, t(1)).ready).toBe(false);
    expect(launcherPhase({ reachable: true, info: { phase: 'Running', paused: false } }, t(1)).ready).toBe(true);
  });

  it('the silence is counted from the last contact, not from the start', () => {
    const o: LauncherObservation = { reachable: false, processAlive: true, reason: 'busy' };
    expect(launcherPhase(o, t(UNRESPONSIVE_AFTER_MS + 10, 20)).phase).toBe('Scheduling');
  });

  it('awaitingVmi: reachable, Scheduled, no domain', () => {
    expect(awaitingVmi({ reachable: true, info: { phase: 'Scheduled', state: 'Absent', paused: false } })).toBe(true);
    expect(awaitingVmi({ reachable: true, info: { phase: 'Running', state: 'Running', paused: false } })).toBe(false);
    expect(awaitingVmi({ reachable: false, processAlive: true, reason: 'x' })).toBe(false);
  });
});

describe('launcherPhase: a launcher whose monitor died', () => {
  it('is Failed (LauncherUnsupervised) even though its socket answers', () => {
    const p = launcherPhase({ reachable: true, info: { phase: 'Running', state: 'Running', paused: false }, supervised: false }, t(5));
    expect(p).toMatchObject({ phase: 'Failed', reason: 'LauncherUnsupervised' });
  });
});
