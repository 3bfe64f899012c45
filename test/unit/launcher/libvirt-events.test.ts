import { describe, expect, it } from 'vitest';
import { diffDomainStates, parseVirshEventLine } from '../../../launcher/libvirt/events.js';
import type { DomainState } from '../../../launcher/libvirt/driver.js';
import { backoffDelay } from '../../../launcher/libvirt/backoff.js';
import { DomainNotFoundError, LibvirtError, LibvirtUnavailableError, classifyError } from '../../../launcher/libvirt/errors.js';

describe('parseVirshEventLine', () => {
  it.each([
    ["2026-11-27 05:04:11.578+0000: event 'lifecycle' for domain 'probe-evt': Defined Added", 'probe-evt', 'Defined', 'Added'],
    ["2026-11-27 05:04:11.864+0000: event 'lifecycle' for domain 'default_vm-a': Started Booted", 'default_vm-a', 'Started', 'Booted'],
    ["2026-11-27 05:04:13.327+0000: event 'lifecycle' for domain 'x': Shutdown Finished after host request", 'x', 'Shutdown', 'Finished after host request'],
    ["2026-11-27 05:04:13.328+0000: event 'lifecycle' for domain 'x': Stopped Destroyed", 'x', 'Stopped', 'Destroyed'],
    ["2026-11-27 05:04:13.343+0000: event 'lifecycle' for domain 'x': Undefined Removed", 'x', 'Undefined', 'Removed'],
  ])('parses %s', (line, domain, type, detail) => {
    const ev = parseVirshEventLine(line);
    expect(ev).toMatchObject({ domain, type, detail, source: 'virsh' });
    expect(ev?.timestamp.toISOString()).toMatch(/^2026-11-27T05:04:1\d\.\d{3}Z$/);
  });

  it.each([
    '',
    'event loop interrupted',
    "2026-11-27 05:04:13.343+0000: event 'reboot' for domain 'x'",
    "2026-11-27 05:04:13.343+0000: event 'lifecycle' for domain 'x': Exploded Badly",
  ])('ignores %j', (line) => {
    expect(parseVirshEventLine(line)).toBeNull();
  });

  it('keeps the UTC offset', () => {
    const ev = parseVirshEventLine("2026-01-01 01:00:00.000+0100: event 'lifecycle' for domain 'x': Started Booted");
    expect(ev?.timestamp.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('diffDomainStates', () => {
  const m = (o: Record<string, DomainState>) => new Map(Object.entries(o));
  it.each<[string, Record<string, DomainState>, Record<string, DomainState>, string[]]>([
    ['nothing changed', { a: 'Running' }, { a: 'Running' }, []],
    ['new running domain', {}, { a: 'Running' }, ['a Defined', 'a Started']],
    ['new inactive domain', {}, { a: 'Shutoff' }, ['a Defined']],
    ['start', { a: 'Shutoff' }, { a: 'Running' }, ['a Started']],
    ['pause', { a: 'Running' }, { a: 'Paused' }, ['a Suspended']],
    ['unpause', { a: 'Paused' }, { a: 'Running' }, ['a Resumed']],
    ['stop', { a: 'Running' }, { a: 'Shutoff' }, ['a Stopped']],
    ['crash', { a: 'Running' }, { a: 'Crashed' }, ['a Crashed']],
    ['removed', { a: 'Shutoff', b: 'Running' }, { b: 'Running' }, ['a Undefined']],
  ])('%s', (_name, prev, next, expected) => {
    expect(diffDomainStates(m(prev), m(next)).map((e) => `${e.domain} ${e.type}`)).toEqual(expected);
  });
});

describe('backoffDelay', () => {
  it('doubles from 250 ms and caps at 10 s (no jitter)', () => {
    const d = [0, 1, 2, 3, 10, 50].map((a) => backoffDelay(a, { jitter: 0 }));
    expect(d).toEqual([250, 500, 1000, 2000, 10_000, 10_000]);
  });
  it('jitter only shortens the delay, by at most the fraction', () => {
    expect(backoffDelay(2, { jitter: 0.5 }, () => 0)).toBe(500);
    expect(backoffDelay(2, { jitter: 0.5 }, () => 1)).toBe(1000);
  });
});

describe('classifyError', () => {
  it.each([
    ["Failed to connect socket to '/nope': No such file or directory", LibvirtUnavailableError],
    ['internal error: client socket is closed', LibvirtUnavailableError],
    ['Cannot recv data: Connection reset by peer', LibvirtUnavailableError],
    ["Domain not found: no domain with matching name 'x'", DomainNotFoundError],
    ["internal error: Domain 'x' is already running", LibvirtError],
  ])('%s', (msg, cls) => {
    const e = classifyError(new Error(msg), 'start', 'x', 'qemu:///system');
    expect(e).toBeInstanceOf(cls);
    expect(e.constructor).toBe(cls);
    expect(e.operation).toBe('start');
    expect(e.domain).toBe('x');
    expect(e.message).toContain('x');
  });
});
