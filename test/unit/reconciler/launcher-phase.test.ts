import { describe, expect, it } from 'vitest';
import { LauncherMemory, UNRESPONSIVE_AFTER_MS, UNSETTLED_RECHECK_MS, awaitingVmi, launcherPhase, unsettledRecheckMs, type LauncherObservation } from '../../../reconciler/core/index.js';

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

describe('launcherPhase: the node cannot see the guest (libvirt down, launcher silent)', () => {
  const running = { phase: 'Running' as const, paused: false, ready: true };
  const at = Date.parse('2026-12-03T10:00:00Z');
  it.each<[string, LauncherObservation, Partial<Parameters<typeof launcherPhase>[1]>, string, string | undefined, RegExp | undefined]>([
    ['libvirt lost, the launcher reports its last state: that state, out of sync since the loss',
      { reachable: true, info: { phase: 'Running', state: 'Running', paused: false, libvirt: 'disconnected' } }, { lastKnown: running, libvirtLostAt: at }, 'Running', 'LibvirtUnreachable', /unreachable since 2026-12-03T10:00:00.000Z .*disconnected/],
    ['libvirt reconnecting: the last in-view phase wins over what the launcher guesses',
      { reachable: true, info: { phase: 'Unknown', paused: false, libvirt: 'connecting' } }, { lastKnown: running, libvirtLostAt: at }, 'Running', 'LibvirtUnreachable', /connecting/],
    ['libvirt lost before this observer saw the guest (adopted during an outage): the launcher\'s own last state, out of sync',
      { reachable: true, info: { phase: 'Running', paused: false, libvirt: 'disconnected' } }, {}, 'Running', 'LibvirtUnreachable', /unreachable since/],
    ['a launcher still connecting for its first start: not an outage',
      { reachable: true, info: { phase: 'Scheduled', paused: false, libvirt: 'connecting' } }, {}, 'Scheduled', undefined, undefined],
    ['libvirt connected again: in sync',
      { reachable: true, info: { phase: 'Running', paused: false, libvirt: 'connected' } }, { lastKnown: running, libvirtLostAt: at }, 'Running', undefined, undefined],
    ['an older launcher that does not say: taken as connected',
      { reachable: true, info: { phase: 'Running', paused: false } }, {}, 'Running', undefined, undefined],
    ['a running launcher goes silent: still Running, out of sync since its last answer',
      { reachable: false, processAlive: true, reason: 'timed out' }, { lastKnown: running, lastContact: at }, 'Running', 'LauncherUnresponsive', /not answered since 2026-12-03T10:00:00.000Z \(timed out\)/],
    ['a launcher silent while still starting: Scheduling, as before',
      { reachable: false, processAlive: true, reason: 'ECONNREFUSED' }, { lastKnown: { phase: 'Scheduled', paused: false } }, 'Scheduling', undefined, undefined],
  ])('%s', (_name, o, memory, phase, outOfSync, message) => {
    const p = launcherPhase(o, { now: at + 30_000, lastContact: at, logFile: '/pods/x/launcher.log', ...memory });
    expect(p.phase).toBe(phase);
    expect(p.outOfSync?.reason).toBe(outOfSync);
    if (message) expect(p.outOfSync?.message).toMatch(message);
  });

  it('silent for too long is Failed even with a last known phase', () => {
    const p = launcherPhase({ reachable: false, processAlive: true, reason: 'x' }, { now: UNRESPONSIVE_AFTER_MS + 1, lastContact: 0, logFile: 'l', lastKnown: { phase: 'Running', paused: false } });
    expect(p).toMatchObject({ phase: 'Failed', reason: 'LauncherUnresponsive' });
  });

  it('LauncherMemory: keeps the loss time while libvirt stays down, forgets it once back', () => {
    const m = new LauncherMemory(0);
    const up: LauncherObservation = { reachable: true, info: { phase: 'Running', paused: false, libvirt: 'connected' } };
    const down: LauncherObservation = { reachable: true, info: { phase: 'Unknown', paused: false, libvirt: 'disconnected' } };
    expect(m.phase('u', 0, up, 1000, 'l').outOfSync).toBeUndefined();
    const first = m.phase('u', 0, down, 2000, 'l');
    const later = m.phase('u', 0, down, 9000, 'l');
    expect(later.phase).toBe('Running');
    expect(later.outOfSync?.message).toBe(first.outOfSync?.message);
    expect(later.outOfSync?.message).toContain(new Date(2000).toISOString());
    expect(m.phase('u', 0, up, 10_000, 'l').outOfSync).toBeUndefined();
    expect(m.phase('u', 0, down, 11_000, 'l').outOfSync?.message).toContain(new Date(11_000).toISOString());
  });
});

describe('unsettledRecheckMs: which phases need another look (the launcher\'s events will not tell)', () => {
  it.each<[string, Parameters<typeof unsettledRecheckMs>[0], number | undefined]>([
    ['silent while starting', { phase: 'Scheduling', reason: 'LauncherStarting' }, UNSETTLED_RECHECK_MS],
    ['silent after answering (out of sync)', { phase: 'Running', outOfSync: { reason: 'LauncherUnresponsive', message: 'm' } }, UNSETTLED_RECHECK_MS],
    ['libvirt lost (out of sync)', { phase: 'Running', outOfSync: { reason: 'LibvirtUnreachable', message: 'm' } }, UNSETTLED_RECHECK_MS],
    ['in view and running', { phase: 'Running' }, undefined],
    ['in view, the domain not started yet', { phase: 'Scheduled' }, undefined],
    ['failed for good', { phase: 'Failed', reason: 'LauncherUnresponsive' }, undefined],
  ])('%s', (_name, p, want) => {
    expect(unsettledRecheckMs(p)).toBe(want);
  });
});
