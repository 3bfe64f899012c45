/**
 * VMI → libvirt domain XML. Pure: the same VMI and context always give the same bytes.
 * Each concern lives in its own module (KubeVirt's converter layout); this file checks
 * cross-cutting rules (boot order) and assembles the pieces in libvirt's element order.
 *
 * Lifecycle actions follow KubeVirt: a guest reboot restarts the guest inside the same
 * domain (the VMI lives on), a guest power-off or crash ends the domain, and the VM's
 * runStrategy decides what happens next.
 */
import type * as api from '../../api/kubevirt.js';
import { convertClock } from './clock.js';
import { convertConsole } from './console.js';
import type { ConversionContext } from './context.js';
import { convertCpu } from './cpu.js';
import { checkDeviceFields, convertDevices } from './devices.js';
import { convertDisks } from './disks.js';
import { check, Diagnostics, warnUnknownKeys } from './errors.js';
import { convertFeatures } from './features.js';
import { convertFirmware } from './firmware.js';
import { identityOf, metadataXml } from './identity.js';
import { convertInterfaces, qemuPassThrough } from './interfaces.js';
import { convertMemory } from './memory.js';
import { renderDomain, type XmlNode } from './xml.js';

export interface ConversionResult {
  xml: string;
  warnings: string[];
}

/** Spec fields consumed elsewhere (launcher Pod, scheduler, launcher grace period): not the domain's business. */
const SPEC_KEYS_ELSEWHERE = [
  'nodeSelector', 'tolerations', 'affinity', 'evictionStrategy', 'terminationGracePeriodSeconds', 'priorityClassName', 'schedulerName',
];
const DOMAIN_KEYS = ['resources', 'cpu', 'memory', 'machine', 'firmware', 'clock', 'features', 'devices', 'ioThreadsPolicy'];

export function convertVmi(vmi: api.VirtualMachineInstance, ctx: ConversionContext): ConversionResult {
  check(vmi?.kind === 'VirtualMachineInstance', 'kind', `expected a VirtualMachineInstance, got ${String(vmi?.kind)}`, 'pass a VMI (build one from a VM with vmiFromVm)');
  check(vmi.spec?.domain?.devices !== undefined, 'spec.domain.devices', 'the VMI has no devices section', 'set spec.domain.devices (it may be {})');
  check(ctx.emulation === 'kvm' || ctx.emulation === 'tcg', 'context.emulation', `"${String(ctx.emulation)}" is not an accelerator`, 'use "kvm" or "tcg"');
  const diag = new Diagnostics();
  const { spec } = vmi;
  const domain = spec.domain;

  warnUnknownKeys(diag, spec, 'spec', ['architecture', 'domain', 'networks', 'volumes', ...SPEC_KEYS_ELSEWHERE, 'hostname', 'subdomain']);
  const arch = spec.architecture ?? 'amd64';
  check(arch === 'amd64' || arch === 'x86_64', 'spec.architecture', `"${arch}" guests are not supported`, 'use "amd64" (or leave it unset)');
  for (const key of ['hostname', 'subdomain'] as const) {
    if (spec[key] !== undefined) diag.warn(`spec.${key}`, 'not handed to the guest by virtops (no DHCP server of ours); set it through cloud-init');
  }
  warnUnknownKeys(diag, domain, 'spec.domain', DOMAIN_KEYS);
  checkDeviceFields(domain.devices, diag);

  const id = identityOf(vmi);
  const memory = convertMemory(domain, diag);
  const cpu = convertCpu(domain, ctx.emulation, diag);
  const disks = convertDisks({ spec, ctx, vcpus: cpu.vcpus }, diag);
  const nics = convertInterfaces({ spec, ctx, vcpus: cpu.vcpus, uuid: id.uuid }, diag);

  const bootOrders = [...disks.bootOrders, ...nics.bootOrders];
  const byOrder = new Map<number, string>();
  for (const b of bootOrders) {
    const other = byOrder.get(b.order);
    check(other === undefined, b.path, `boot order ${b.order} is also used by ${other}`, 'give each boot device a different bootOrder');
    byOrder.set(b.order, b.path);
  }

  const firmware = convertFirmware(domain, ctx, id, diag, { defaultBootDevice: bootOrders.length === 0 });
  const features = convertFeatures(domain.features, { requiresSmm: firmware.requiresSmm, emulation: ctx.emulation }, diag);

  const devices: XmlNode = {};
  if (disks.disks.length > 0) devices.disk = disks.disks;
  if (disks.controllers.length > 0) devices.controller = disks.controllers;
  if (nics.interfaces.length > 0) devices.interface = nics.interfaces;
  Object.assign(devices, convertConsole(domain.devices, ctx, id.domainName), convertDevices(domain.devices, ctx, id.domainName));

  const root: XmlNode = {
    '@type': ctx.emulation === 'kvm' ? 'kvm' : 'qemu',
    name: id.domainName,
    uuid: id.uuid,
    metadata: metadataXml(vmi, id),
    ...memory.xml,
    vcpu: cpu.xml.vcpu,
    ...(disks.iothreads ? { iothreads: String(disks.iothreads) } : {}),
    sysinfo: firmware.sysinfo,
    os: firmware.os,
    features,
    cpu: cpu.xml.cpu,
    clock: convertClock(domain.clock, ctx.emulation, diag),
    on_poweroff: 'destroy',
    on_reboot: 'restart',
    on_crash: 'destroy',
    devices,
    // The pod network's port forwards (see interfaces.ts): QEMU pass-through after <devices>.
    ...(nics.qemu ? qemuPassThrough(nics.qemu) : {}),
  };
  return { xml: renderDomain({ domain: root }), warnings: diag.warnings };
}
