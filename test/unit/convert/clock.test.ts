import { describe, expect, it } from 'vitest';
import type * as api from '../../../api/kubevirt.js';
import { convertClock } from '../../../launcher/convert/clock.js';
import { Diagnostics } from '../../../launcher/convert/errors.js';
import { conversionError } from './helpers.js';

describe('clock', () => {
  it.each([
    ['default utc', undefined, { '@offset': 'utc' }],
    ['utc with offset', { utc: { offsetSeconds: -3600 } }, { '@offset': 'utc', '@adjustment': -3600 }],
    ['timezone', { timezone: 'Europe/Berlin' }, { '@offset': 'timezone', '@timezone': 'Europe/Berlin' }],
    [
      'timers: present by default, tick policies, rtc track, libvirt names',
      { timer: { hpet: { present: false }, pit: { tickPolicy: 'delay' }, rtc: { tickPolicy: 'catchup', track: 'guest' }, kvm: {}, hyperv: { present: true } } },
      {
        '@offset': 'utc',
        timer: [
          { '@name': 'hpet', '@present': 'no' },
          { '@name': 'pit', '@tickpolicy': 'delay', '@present': 'yes' },
          { '@name': 'rtc', '@tickpolicy': 'catchup', '@track': 'guest', '@present': 'yes' },
          { '@name': 'kvmclock', '@present': 'yes' },
          { '@name': 'hypervclock', '@present': 'yes' },
        ],
      },
    ],
  ] as const)('%s', (_, clock, want) => {
    expect(convertClock(clock as api.Clock | undefined, 'kvm', new Diagnostics())).toEqual(want);
  });

  it('warns that paravirtual clocks need KVM under TCG', () => {
    const diag = new Diagnostics();
    convertClock({ timer: { kvm: {}, hyperv: { present: false } } }, 'tcg', diag);
    expect(diag.warnings).toEqual([expect.stringMatching(/^spec\.domain\.clock\.timer\.kvm: the kvmclock/)]);
  });

  it.each([
    [{ utc: {}, timezone: 'UTC' }, 'spec.domain.clock'],
    [{ timezone: 'Mars Base/One' }, 'spec.domain.clock.timezone'],
    [{ utc: { offsetSeconds: 1.5 } }, 'spec.domain.clock.utc.offsetSeconds'],
    [{ timer: { rtc: { tickPolicy: 'merge' } } }, 'spec.domain.clock.timer.rtc.tickPolicy'],
    [{ timer: { rtc: { track: 'moon' } } }, 'spec.domain.clock.timer.rtc.track'],
  ])('rejects %j at %s', (clock, path) => {
    expect(conversionError(() => convertClock(clock as api.Clock, 'kvm', new Diagnostics())).path).toBe(path);
  });
});
