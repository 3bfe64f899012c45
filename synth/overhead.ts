/**
 * Memory overhead of a launcher Pod: everything besides guest RAM that the Pod's cgroup is
 * charged for. Same shape as KubeVirt's formula, but the fixed costs are those of *virtops'*
 * processes, measured on Node 20 / QEMU 7.2 (Debian 12):
 *
 * - Node runtime, file-backed (binary text + ICU): ~34–41 MiB RSS per process, but shared file
 *   pages are charged to the cgroup once, so it is counted once for monitor + launcher.
 * - launcher monitor (Node, no dependencies): ~6 MiB anonymous RSS idle; budget 8 MiB.
 * - launcher (Node + @unraid/libvirt + fast-xml-parser + pino): ~18 MiB
 *   anonymous RSS after loading; budget 24 MiB for heap growth while serving commands.
 *   Together: 40 + 8 + 24 = 72 MiB for the two Node processes.
 * - QEMU: 50 MiB process base (device models, libraries), +8 MiB per vCPU (thread stacks,
 *   vCPU state), +8 MiB when an IOThread is used, +32 MiB for the VGA framebuffer when a
 *   graphics device is attached (KubeVirt's autoattachGraphicsDevice defaults to true).
 * - TCG: without KVM, QEMU keeps a translated-code cache; a 128 MiB TCG guest measured
 *   210–220 MB RSS, i.e. ≥ 82 MiB beyond guest RAM. Budget 48 MiB on top of the QEMU base
 *   when emulation may be TCG (`auto` budgets for the worst case).
 * - Page tables: guest RAM / 512 (one 8-byte entry per 4 KiB page).
 * - libvirtd/virtlogd are the host's shared daemons in virtops (no per-Pod virtqemud), so they
 *   are not part of a Pod's overhead.
 */
import type * as api from '../api/kubevirt.js';
import { MiB, parseQuantity } from './quantity.js';

export type Emulation = 'kvm' | 'tcg' | 'auto';

export const OVERHEAD_CONSTANTS = {
  nodeRuntimeShared: 40 * MiB,
  launcherMonitor: 8 * MiB,
  launcher: 24 * MiB,
  qemuBase: 50 * MiB,
  perVcpu: 8 * MiB,
  ioThread: 8 * MiB,
  vga: 32 * MiB,
  tcgCodeCache: 48 * MiB,
  pageTableDivisor: 512,
} as const;

/** Each component in bytes; `total` is their sum. */
export interface OverheadBreakdown {
  pageTables: number;
  nodeRuntime: number;
  launcherMonitor: number;
  launcher: number;
  qemu: number;
  vcpus: number;
  ioThreads: number;
  vga: number;
  tcg: number;
  total: number;
}

export interface OverheadOptions {
  /** @default 'auto' (budgets for TCG) */
  readonly emulation?: Emulation;
}

/** Guest RAM in bytes, the way KubeVirt reads it: memory.guest, else requests, else limits. */
export function guestMemoryBytes(spec: api.VirtualMachineInstanceSpec): number {
  const d = spec.domain;
  const q = d.memory?.guest ?? d.resources?.requests?.memory ?? d.resources?.limits?.memory;
  return q === undefined ? 0 : parseQuantity(q);
}

/** vCPUs = sockets × cores × threads (each defaulting to 1), else the CPU request rounded up. */
export function vcpuCount(spec: api.VirtualMachineInstanceSpec): number {
  const cpu = spec.domain.cpu;
  if (cpu && (cpu.sockets || cpu.cores || cpu.threads)) {
    return (cpu.sockets ?? 1) * (cpu.cores ?? 1) * (cpu.threads ?? 1);
  }
  const req = spec.domain.resources?.requests?.cpu ?? spec.domain.resources?.limits?.cpu;
  return req === undefined ? 1 : Math.max(1, Math.ceil(parseQuantity(req)));
}

function usesIoThread(spec: api.VirtualMachineInstanceSpec): boolean {
  return spec.domain.ioThreadsPolicy !== undefined || (spec.domain.devices.disks ?? []).some((d) => d.dedicatedIOThread);
}

export function computeOverhead(spec: api.VirtualMachineInstanceSpec, opts: OverheadOptions = {}): OverheadBreakdown {
  const c = OVERHEAD_CONSTANTS;
  const emulation = opts.emulation ?? 'auto';
  const parts = {
    pageTables: Math.ceil(guestMemoryBytes(spec) / c.pageTableDivisor),
    nodeRuntime: c.nodeRuntimeShared,
    launcherMonitor: c.launcherMonitor,
    launcher: c.launcher,
    qemu: c.qemuBase,
    vcpus: c.perVcpu * vcpuCount(spec),
    ioThreads: usesIoThread(spec) ? c.ioThread : 0,
    vga: spec.domain.devices.autoattachGraphicsDevice === false ? 0 : c.vga,
    tcg: emulation === 'kvm' ? 0 : c.tcgCodeCache,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  return { ...parts, total };
}
