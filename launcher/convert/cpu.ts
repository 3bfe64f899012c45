/**
 * vCPUs and the guest CPU: `<vcpu placement="static">` = sockets × cores × threads and
 * `<cpu>` with the topology and model.
 *
 * Under TCG (no KVM) `host-passthrough` cannot work (libvirt refuses it: there is no host
 * CPU to pass through) and `host-model` means "whatever this QEMU's emulator offers",
 * which depends on the machine. Both, and the default, become `mode="maximum"`: every
 * feature the emulator implements (QEMU's `-cpu max`), so guests that require
 * x86-64-v2 (RHEL 9 and alike) still boot, which `qemu64` would not allow.
 */
import type * as api from '../../api/kubevirt.js';
import type { Emulation } from './context.js';
import { check, ConversionError, type Diagnostics, warnUnknownKeys } from './errors.js';
import { ceilQuantity, QuantityError } from './quantity.js';
import type { XmlNode } from './xml.js';

const HANDLED = ['cores', 'sockets', 'threads', 'model', 'features'];
const IGNORED: Record<string, string> = {
  dedicatedCpuPlacement: 'CPU pinning is not done on a single host; vCPUs float',
  isolateEmulatorThread: 'no dedicated emulator thread without CPU pinning',
  maxSockets: 'CPU hotplug is not supported; the guest gets a fixed vCPU count',
  numa: 'guest NUMA topology is not passed through',
  realtime: 'realtime tuning is not applied',
};
const FEATURE_POLICIES = ['force', 'require', 'optional', 'disable', 'forbid'];
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

export interface CpuResult {
  vcpus: number;
  /** `<vcpu>` and `<cpu>`. */
  xml: XmlNode;
}

export function convertCpu(domain: api.DomainSpec, emulation: Emulation, diag: Diagnostics): CpuResult {
  const cpu = domain.cpu ?? {};
  const base = 'spec.domain.cpu';
  warnUnknownKeys(diag, cpu, base, [...HANDLED, ...Object.keys(IGNORED)]);
  for (const [key, why] of Object.entries(IGNORED)) {
    const v = (cpu as Record<string, unknown>)[key];
    if (v !== undefined && v !== false) diag.warn(`${base}.${key}`, `${why}; ignored`);
  }

  const topology = {
    sockets: count(cpu.sockets, `${base}.sockets`),
    cores: count(cpu.cores, `${base}.cores`),
    threads: count(cpu.threads, `${base}.threads`),
  };
  if (cpu.sockets === undefined && cpu.cores === undefined && cpu.threads === undefined) {
    // No topology: like KubeVirt, the CPU limit (else request), rounded up, becomes sockets.
    topology.sockets = vcpusFromResources(domain.resources) ?? 1;
  }
  const vcpus = topology.sockets * topology.cores * topology.threads;

  const cpuXml: XmlNode = { ...modeOf(cpu.model, emulation, diag) };
  cpuXml.topology = { '@sockets': topology.sockets, '@dies': 1, '@cores': topology.cores, '@threads': topology.threads };
  const features = (cpu.features ?? []).map((f, i) => {
    const p = `${base}.features[${i}]`;
    check(typeof f.name === 'string' && MODEL_NAME.test(f.name), `${p}.name`, `"${f.name ?? ''}" is not a CPU feature name`, 'use a libvirt feature name such as "vmx" or "pcid"');
    const policy = f.policy ?? 'require';
    check(FEATURE_POLICIES.includes(policy), `${p}.policy`, `"${policy}" is not a feature policy`, `use one of ${FEATURE_POLICIES.join(', ')}`);
    return { '@policy': policy, '@name': f.name };
  });
  if (features.length > 0) cpuXml.feature = features;

  return { vcpus, xml: { vcpu: { '@placement': 'static', '#': String(vcpus) }, cpu: cpuXml } };
}

function modeOf(model: string | undefined, emulation: Emulation, diag: Diagnostics): XmlNode {
  const wanted = model ?? 'host-model'; // KubeVirt's cluster default
  if (wanted === 'host-model' || wanted === 'host-passthrough') {
    if (emulation === 'kvm') return { '@mode': wanted };
    if (model !== undefined) {
      diag.warn('spec.domain.cpu.model', `"${model}" needs KVM; under TCG the guest gets the emulator's maximum CPU model instead`);
    }
    return { '@mode': 'maximum', '@check': 'none' };
  }
  check(MODEL_NAME.test(wanted), 'spec.domain.cpu.model', `"${wanted}" is not a CPU model name`, 'use host-model, host-passthrough or a libvirt model such as "Skylake-Client" or "qemu64"');
  return { '@mode': 'custom', '@match': 'exact', model: { '@fallback': 'allow', '#': wanted } };
}

function count(n: number | undefined, path: string): number {
  if (n === undefined) return 1;
  check(Number.isInteger(n) && n >= 1, path, `${n} is not a whole number ≥ 1`, 'use 1 or more');
  return n;
}

function vcpusFromResources(resources: api.ResourceRequirements | undefined): number | undefined {
  for (const kind of ['limits', 'requests'] as const) {
    const q = resources?.[kind]?.cpu;
    if (q === undefined) continue;
    const path = `spec.domain.resources.${kind}.cpu`;
    try {
      const n = ceilQuantity(q);
      check(n >= 1n, path, `${q} is not a positive CPU amount`, 'use e.g. "1", "2" or "500m"');
      return Number(n);
    } catch (e) {
      if (e instanceof QuantityError) throw new ConversionError(path, e.message, 'use a CPU amount such as "2" or "1500m"');
      throw e;
    }
  }
  return undefined;
}
