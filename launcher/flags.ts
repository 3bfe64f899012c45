/**
 * The launcher's command-line flags: the KubeVirt-style set synth renders into the
 * launcher Pod's compute container, plus virtops extras with defaults. Validation is
 * pure and reports every bad flag at once, each naming the flag and the fix.
 */
import { isAbsolute, join } from 'node:path';
import { homedir } from 'node:os';
import type { EmulationRequest } from './emulation.js';

export interface LauncherConfig {
  name: string;
  uid: string;
  namespace: string;
  kubevirtShareDir: string;
  ephemeralDiskDir: string;
  containerDiskDir: string;
  gracePeriodSeconds: number;
  hookSidecars: number;
  /** How long QEMU may take to reach "running" after a start. */
  qemuTimeoutMs: number;
  emulation: EmulationRequest;
  libvirtUri: string;
  stateDir: string;
  imageStore: string;
  secretsDir: string;
  pvcDir: string;
  /** Registries (host[:port]) reached over plain HTTP / without TLS verification. */
  insecureRegistries: string[];
}

/** Raw option values as commander hands them over (all strings; repeatable ones as arrays). */
export interface RawLauncherFlags {
  qemuTimeout?: string;
  name?: string;
  uid?: string;
  namespace?: string;
  kubevirtShareDir?: string;
  ephemeralDiskDir?: string;
  containerDiskDir?: string;
  gracePeriodSeconds?: string;
  hookSidecars?: string;
  emulation?: string;
  libvirtUri?: string;
  stateDir?: string;
  imageStore?: string;
  secretsDir?: string;
  pvcDir?: string;
  insecureRegistry?: string[];
}

/** Flag specs shared by `launcher` and `launcher-monitor` (flag, value name, description, default). */
export const LAUNCHER_FLAGS: readonly { flag: string; key: keyof RawLauncherFlags; description: string; default?: string; repeatable?: boolean }[] = [
  { flag: '--qemu-timeout <duration>', key: 'qemuTimeout', description: 'how long QEMU may take to start (e.g. 240s, 4m)', default: '240s' },
  { flag: '--name <vmi>', key: 'name', description: 'VMI name' },
  { flag: '--uid <uid>', key: 'uid', description: 'VMI uid' },
  { flag: '--namespace <ns>', key: 'namespace', description: 'VMI namespace', default: 'default' },
  { flag: '--kubevirt-share-dir <dir>', key: 'kubevirtShareDir', description: 'shared runtime dir (sockets/, logs/)' },
  { flag: '--ephemeral-disk-dir <dir>', key: 'ephemeralDiskDir', description: 'dir for overlays, emptyDisks and cloud-init ISOs' },
  { flag: '--container-disk-dir <dir>', key: 'containerDiskDir', description: 'dir for unpacked containerDisk/kernelBoot images' },
  { flag: '--grace-period-seconds <n>', key: 'gracePeriodSeconds', description: 'ACPI shutdown grace period before destroy', default: '30' },
  { flag: '--hook-sidecars <n>', key: 'hookSidecars', description: 'number of hook sidecars (virtops supports 0)', default: '0' },
  { flag: '--emulation <mode>', key: 'emulation', description: 'auto | kvm | tcg', default: 'auto' },
  { flag: '--libvirt-uri <uri>', key: 'libvirtUri', description: 'libvirt connection URI', default: 'qemu:///system' },
  { flag: '--state-dir <dir>', key: 'stateDir', description: 'launcher state (default <kubevirt-share-dir>/launcher)' },
  { flag: '--image-store <dir>', key: 'imageStore', description: 'shared OCI image cache (default ~/.cache/virtops/images)' },
  { flag: '--secrets-dir <dir>', key: 'secretsDir', description: 'secrets/configMaps as files (default <kubevirt-share-dir>/secrets)' },
  { flag: '--pvc-dir <dir>', key: 'pvcDir', description: 'PVC mounts: <dir>/<claim>/disk.img (default <kubevirt-share-dir>/pvcs)' },
  { flag: '--insecure-registry <host>', key: 'insecureRegistry', description: 'registry reached without TLS (repeatable)', repeatable: true },
];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Go-style duration ("240s", "4m", "1h30m", "500ms") → milliseconds; null if malformed. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h))+$/.test(t)) return null;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of t.matchAll(DURATION_PART)) total += Number(m[1]) * unit[m[2]!]!;
  return Math.round(total);
}

export type FlagResult = { ok: true; config: LauncherConfig } | { ok: false; errors: string[] };

export function validateLauncherFlags(raw: RawLauncherFlags, home: string = homedir()): FlagResult {
  const errors: string[] = [];
  const need = (v: string | undefined, flag: string, fix: string): string => {
    if (v === undefined || v.trim() === '') errors.push(`${flag} is required: ${fix}`);
    return v ?? '';
  };
  const dir = (v: string | undefined, flag: string, fallback?: string): string => {
    if (v === undefined || v === '') {
      if (fallback !== undefined) return fallback;
      errors.push(`${flag} is required: pass an absolute directory path`);
      return '';
    }
    if (!isAbsolute(v)) errors.push(`${flag} "${v}" is not an absolute path: pass an absolute directory path`);
    return v;
  };
  const int = (v: string | undefined, flag: string, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !/^\d+$/.test(v.trim()) || n < min || n > max) {
      errors.push(`${flag} "${v ?? ''}" is not a whole number in ${min}..${max}: pass e.g. ${flag} ${min === 0 ? 30 : min}`);
      return 0;
    }
    return n;
  };

  const name = need(raw.name, '--name', 'pass the VMI name, e.g. --name web-1');
  if (name && (name.length > 253 || !DNS_SUBDOMAIN.test(name))) {
    errors.push(`--name "${name}" is not a DNS-1123 name: use lower-case letters, digits, "-" and "."`);
  }
  const namespace = raw.namespace ?? 'default';
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    errors.push(`--namespace "${namespace}" is not a DNS-1123 label: use lower-case letters, digits and "-"`);
  }
  const uid = need(raw.uid, '--uid', "pass the VMI's metadata.uid, e.g. --uid 6f1c...");
  if (uid && !/^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/.test(uid)) {
    errors.push(`--uid "${uid}" is not a uid: use letters, digits and "-" (a UUID)`);
  }
  const shareDir = dir(raw.kubevirtShareDir, '--kubevirt-share-dir');
  const ephemeralDiskDir = dir(raw.ephemeralDiskDir, '--ephemeral-disk-dir');
  const containerDiskDir = dir(raw.containerDiskDir, '--container-disk-dir');
  const gracePeriodSeconds = int(raw.gracePeriodSeconds ?? '30', '--grace-period-seconds', 0, 86_400);
  const hookSidecars = int(raw.hookSidecars ?? '0', '--hook-sidecars', 0, 16);
  if (hookSidecars > 0) errors.push(`--hook-sidecars ${hookSidecars}: virtops runs no hook sidecars; pass --hook-sidecars 0`);
  const qemuTimeoutMs = parseDuration(raw.qemuTimeout ?? '240s');
  if (qemuTimeoutMs === null || qemuTimeoutMs <= 0) {
    errors.push(`--qemu-timeout "${raw.qemuTimeout}" is not a positive duration: use e.g. 240s, 4m or 1h`);
  }
  const emulation = raw.emulation ?? 'auto';
  if (emulation !== 'auto' && emulation !== 'kvm' && emulation !== 'tcg') {
    errors.push(`--emulation "${emulation}" is not one of auto, kvm, tcg: pass --emulation tcg when KVM is unusable`);
  }
  const libvirtUri = raw.libvirtUri ?? 'qemu:///system';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(libvirtUri)) {
    errors.push(`--libvirt-uri "${libvirtUri}" is not a libvirt URI: use e.g. qemu:///system or test:///default`);
  }
  const insecureRegistries = raw.insecureRegistry ?? [];
  for (const r of insecureRegistries) {
    if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(r)) errors.push(`--insecure-registry "${r}" is not host[:port]: use e.g. 127.0.0.1:5000`);
  }
  const stateDir = dir(raw.stateDir, '--state-dir', shareDir && join(shareDir, 'launcher'));
  const imageStore = dir(raw.imageStore, '--image-store', join(home, '.cache', 'virtops', 'images'));
  const secretsDir = dir(raw.secretsDir, '--secrets-dir', shareDir && join(shareDir, 'secrets'));
  const pvcDir = dir(raw.pvcDir, '--pvc-dir', shareDir && join(shareDir, 'pvcs'));

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    config: {
      name, uid, namespace, kubevirtShareDir: shareDir, ephemeralDiskDir, containerDiskDir, gracePeriodSeconds, hookSidecars,
      qemuTimeoutMs: qemuTimeoutMs!, emulation: emulation as EmulationRequest, libvirtUri, stateDir, imageStore, secretsDir,
      pvcDir, insecureRegistries,
    },
  };
}

/** Where the launcher's files live, all derived from the config. */
export function launcherPaths(c: LauncherConfig) {
  return {
    socket: join(c.kubevirtShareDir, 'sockets', 'launcher-sock'),
    socketsDir: join(c.kubevirtShareDir, 'sockets'),
    logDir: join(c.kubevirtShareDir, 'logs'),
    nvramDir: join(c.stateDir, 'nvram'),
    stateFile: join(c.stateDir, 'launcher-state.json'),
    domainName: `${c.namespace}_${c.name}`,
  };
}
