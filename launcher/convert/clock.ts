/**
 * `<clock>`: UTC (optionally with a persistent offset) or a named timezone, and timers.
 * KubeVirt's timer names map to libvirt's: kvm → kvmclock, hyperv → hypervclock. A timer
 * listed without `present` is present (KubeVirt's default).
 */
import type * as api from '../../api/kubevirt.js';
import type { Emulation } from './context.js';
import { check, type Diagnostics, warnUnknownKeys } from './errors.js';
import { yesNo, type XmlNode } from './xml.js';

const BASE = 'spec.domain.clock';
const TIMERS = [
  { key: 'hpet', libvirt: 'hpet', tickPolicies: ['delay', 'catchup', 'merge', 'discard'] },
  { key: 'pit', libvirt: 'pit', tickPolicies: ['delay', 'catchup', 'discard'] },
  { key: 'rtc', libvirt: 'rtc', tickPolicies: ['delay', 'catchup'] },
  { key: 'kvm', libvirt: 'kvmclock', tickPolicies: [] },
  { key: 'hyperv', libvirt: 'hypervclock', tickPolicies: [] },
] as const;
// A timezone as the TZ database names it: Area/Location, or a bare name such as UTC.
const TIMEZONE = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;

export function convertClock(clock: api.Clock | undefined, emulation: Emulation, diag: Diagnostics): XmlNode {
  const c = clock ?? {};
  warnUnknownKeys(diag, c, BASE, ['utc', 'timezone', 'timer']);
  check(!(c.utc && c.timezone !== undefined), BASE, 'both utc and timezone are set', 'choose one of clock.utc or clock.timezone');

  const xml: XmlNode = {};
  if (c.timezone !== undefined) {
    check(TIMEZONE.test(c.timezone), `${BASE}.timezone`, `"${c.timezone}" is not a timezone name`, 'use a TZ database name such as "Europe/Berlin"');
    xml['@offset'] = 'timezone';
    xml['@timezone'] = c.timezone;
  } else {
    xml['@offset'] = 'utc'; // KubeVirt's default too
    const offset = c.utc?.offsetSeconds;
    if (offset !== undefined) {
      check(Number.isInteger(offset), `${BASE}.utc.offsetSeconds`, `${offset} is not a whole number of seconds`, 'use an integer such as 3600');
      xml['@adjustment'] = offset;
    }
  }

  const timers: XmlNode[] = [];
  warnUnknownKeys(diag, c.timer, `${BASE}.timer`, TIMERS.map((t) => t.key));
  for (const t of TIMERS) {
    const spec = c.timer?.[t.key] as (api.TimerState & { tickPolicy?: string; track?: string }) | undefined;
    if (!spec) continue;
    const path = `${BASE}.timer.${t.key}`;
    warnUnknownKeys(diag, spec, path, ['present', ...(t.tickPolicies.length ? ['tickPolicy'] : []), ...(t.key === 'rtc' ? ['track'] : [])]);
    const present = spec.present !== false;
    const timer: XmlNode = { '@name': t.libvirt };
    if (spec.tickPolicy !== undefined) {
      check((t.tickPolicies as readonly string[]).includes(spec.tickPolicy), `${path}.tickPolicy`, `"${spec.tickPolicy}" is not a ${t.key} tick policy`, `use one of ${t.tickPolicies.join(', ')}`);
      timer['@tickpolicy'] = spec.tickPolicy;
    }
    if (spec.track !== undefined) {
      check(spec.track === 'guest' || spec.track === 'wall', `${path}.track`, `"${spec.track}" is not an rtc track mode`, 'use "guest" or "wall"');
      timer['@track'] = spec.track;
    }
    timer['@present'] = yesNo(present);
    if (present && emulation === 'tcg' && (t.key === 'kvm' || t.key === 'hyperv')) {
      diag.warn(path, `the ${t.libvirt} paravirtual clock is a KVM feature; under TCG the guest may not see it`);
    }
    timers.push(timer);
  }
  if (timers.length > 0) xml.timer = timers;
  return xml;
}
