/**
 * Choosing the accelerator for `--emulation auto`.
 *
 * Heuristic (conservative: TCG is slow but always works, KVM that half-works hangs guests):
 *  1. /dev/kvm must exist and be read-write for us;
 *  2. libvirt must offer the kvm domain type (`virsh domcapabilities --virttype kvm`);
 *  3. the host must not itself be a guest (no `hypervisor` CPU flag in /proc/cpuinfo):
 *     nested KVM opens fine but real guests fail (MSR errors, emulation failures, hangs),
 *     as measured on this project's machines. Set VIRTOPS_TRUST_NESTED_KVM=1 to allow it.
 * Anything in doubt → tcg. Pass --emulation kvm to force KVM.
 */
import { execFile } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import type { Emulation } from './convert/context.js';

export type EmulationRequest = 'auto' | Emulation;

export interface HostProbe {
  kvmDeviceUsable: boolean;
  libvirtOffersKvm: boolean;
  hostIsVirtualMachine: boolean;
  trustNestedKvm: boolean;
}

export function chooseEmulation(requested: EmulationRequest, probe: HostProbe): { emulation: Emulation; reason: string } {
  if (requested !== 'auto') return { emulation: requested, reason: `--emulation ${requested}` };
  if (!probe.kvmDeviceUsable) return { emulation: 'tcg', reason: '/dev/kvm is missing or not read-write' };
  if (!probe.libvirtOffersKvm) return { emulation: 'tcg', reason: 'libvirt does not offer the kvm domain type' };
  if (probe.hostIsVirtualMachine && !probe.trustNestedKvm) {
    return { emulation: 'tcg', reason: 'host is itself a VM (nested KVM is unreliable); set VIRTOPS_TRUST_NESTED_KVM=1 to use it' };
  }
  return { emulation: 'kvm', reason: '/dev/kvm usable and offered by libvirt' };
}

/** Reads the host facts chooseEmulation needs. */
export async function probeHost(libvirtUri: string): Promise<HostProbe> {
  const kvmDeviceUsable = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false);
  let libvirtOffersKvm = false;
  if (kvmDeviceUsable) {
    libvirtOffersKvm = await new Promise<boolean>((resolve) =>
      execFile('virsh', ['-c', libvirtUri, 'domcapabilities', '--virttype', 'kvm'], (err, stdout) => resolve(!err && /<domain>kvm<\/domain>/.test(stdout))),
    );
  }
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    kvmDeviceUsable,
    libvirtOffersKvm,
    hostIsVirtualMachine: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    trustNestedKvm: process.env['VIRTOPS_TRUST_NESTED_KVM'] === '1',
  };
}
