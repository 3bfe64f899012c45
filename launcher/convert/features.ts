/**
 * `<features>`: ACPI (on unless disabled, as in KubeVirt), APIC, SMM, paravirtual
 * spinlocks, KVM hiding and the Hyper-V enlightenments. A KubeVirt FeatureState that is
 * present without `enabled` counts as enabled.
 */
import type * as api from '../../api/kubevirt.js';
import type { Emulation } from './context.js';
import { check, type Diagnostics, enabled, warnUnknownKeys } from './errors.js';
import { onOff, type XmlNode } from './xml.js';

const BASE = 'spec.domain.features';
type Hyperv = NonNullable<api.Features['hyperv']>;

/** KubeVirt's hyperv names → libvirt's element names, in libvirt's documented order. */
const HYPERV: [keyof Hyperv, string][] = [
  ['relaxed', 'relaxed'], ['vapic', 'vapic'], ['spinlocks', 'spinlocks'], ['vpindex', 'vpindex'],
  ['runtime', 'runtime'], ['synic', 'synic'], ['synictimer', 'stimer'], ['reset', 'reset'],
  ['vendorid', 'vendor_id'], ['frequencies', 'frequencies'], ['reenlightenment', 'reenlightenment'],
  ['tlbflush', 'tlbflush'], ['ipi', 'ipi'], ['evmcs', 'evmcs'],
];
/** Enlightenments that QEMU refuses without another one (KubeVirt validates the same pairs). */
const HYPERV_NEEDS: [keyof Hyperv, keyof Hyperv][] = [
  ['synic', 'vpindex'], ['synictimer', 'synic'], ['ipi', 'vpindex'], ['tlbflush', 'vpindex'], ['evmcs', 'vapic'],
];

export function convertFeatures(
  features: api.Features | undefined,
  opts: { requiresSmm: boolean; emulation: Emulation },
  diag: Diagnostics,
): XmlNode {
  const f = features ?? {};
  warnUnknownKeys(diag, f, BASE, ['acpi', 'apic', 'smm', 'pvspinlock', 'kvm', 'hyperv']);
  const xml: XmlNode = {};

  if (f.acpi === undefined || enabled(f.acpi)) xml.acpi = {};
  if (enabled(f.apic)) xml.apic = f.apic?.endOfInterrupt ? { '@eoi': 'on' } : {};

  if (f.hyperv) {
    const hv = hypervXml(f.hyperv, diag);
    if (hv) {
      xml.hyperv = hv;
      if (opts.emulation === 'tcg') diag.warn(`${BASE}.hyperv`, 'Hyper-V enlightenments are meant for KVM; under TCG QEMU may ignore or refuse some of them');
    }
  }
  if (f.kvm) {
    warnUnknownKeys(diag, f.kvm, `${BASE}.kvm`, ['hidden']);
    if (f.kvm.hidden) xml.kvm = { hidden: { '@state': 'on' } };
  }
  if (f.pvspinlock) xml.pvspinlock = { '@state': onOff(enabled(f.pvspinlock)) };

  if (opts.requiresSmm) {
    check(f.smm === undefined || enabled(f.smm), `${BASE}.smm`, 'SMM is disabled but EFI Secure Boot needs it', 'remove features.smm.enabled: false, or set firmware.bootloader.efi.secureBoot: false');
    xml.smm = { '@state': 'on' };
  } else if (f.smm) {
    xml.smm = { '@state': onOff(enabled(f.smm)) };
  }
  return xml;
}

function hypervXml(hv: Hyperv, diag: Diagnostics): XmlNode | undefined {
  const path = `${BASE}.hyperv`;
  warnUnknownKeys(diag, hv, path, HYPERV.map(([k]) => k));
  for (const [feature, needs] of HYPERV_NEEDS) {
    if (enabled(hv[feature])) {
      check(enabled(hv[needs]), `${path}.${feature}`, `${feature} needs ${needs}`, `also enable features.hyperv.${needs}`);
    }
  }
  const xml: XmlNode = { '@mode': 'custom' };
  let any = false;
  for (const [key, element] of HYPERV) {
    const state = hv[key];
    if (state === undefined) continue;
    any = true;
    const on = enabled(state);
    const el: XmlNode = { '@state': onOff(on) };
    if (key === 'spinlocks' && on) {
      const retries = hv.spinlocks?.spinlocks ?? 4096;
      check(Number.isInteger(retries) && retries >= 4096, `${path}.spinlocks.spinlocks`, `${retries} retries is below the minimum`, 'use 4096 or more');
      el['@retries'] = retries;
    }
    if (key === 'vendorid' && on) {
      const id = hv.vendorid?.vendorid ?? '';
      check(id.length >= 1 && id.length <= 12, `${path}.vendorid.vendorid`, `"${id}" is not a vendor id of 1–12 characters`, 'set a vendor id such as "virtops"');
      el['@value'] = id;
    }
    if (key === 'synictimer' && on && hv.synictimer?.direct) el.direct = { '@state': onOff(enabled(hv.synictimer.direct)) };
    for (const sub of ['direct', 'extended'] as const) {
      // libvirt learnt <tlbflush><direct/><extended/> in 9.1; Debian 12 ships 9.0, whose schema rejects them.
      if (key === 'tlbflush' && hv.tlbflush?.[sub]) diag.warn(`${path}.tlbflush.${sub}`, 'needs libvirt 9.1 or newer; ignored');
    }
    xml[element] = el;
  }
  return any ? xml : undefined;
}
