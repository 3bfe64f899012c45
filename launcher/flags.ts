/**
 * The launcher command-line contract, owned here and only here: the flag table, building
 * an argv from a typed config (synth writes it into each launcher Pod's compute
 * container), parsing an argv back into raw flags (the CLI, the pool runtime, the
 * `domain-xml` preview), editing single flags in place (the node agent's host flags) and
 * validating raw flags into a LauncherConfig. Validation is pure and reports every bad
 * flag at once, each naming the flag and the fix.
 *
 * The flags are KubeVirt's virt-launcher set plus virtops extras with defaults. The order
 * of LAUNCHER_FLAGS is the order synth writes them in, so it is part of dist/.
 */
import { isAbsolute, join } from 'node:path';
import { homedir } from 'node:os';
import { Command, CommanderError } from 'commander';
import type { EmulationRequest } from './emulation.js';

export const LIBVIRT_DAEMONS = ['external', 'pod'] as const;
export type LibvirtDaemon = (typeof LIBVIRT_DAEMONS)[number];

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
  /**
   * Who runs the libvirt daemon the launcher connects to: `external` (the node's, e.g.
   * qemu:///system) or `pod` (the monitor starts one in the compute container, so QEMU is
   * a child of the Pod's processes and in its cgroup; launcher/monitor/libvirt-daemon.ts).
   */
  libvirtDaemon: LibvirtDaemon;
  stateDir: string;
  imageStore: string;
  secretsDir: string;
  pvcDir: string;
  /**
   * A launcher Pod run by a real kubelet: its claim volumes are mounted one directory per
   * volume, `<vmiDisksDir>/<volume name>/disk.img` (KubeVirt's layout; synth's PATHS.vmiDisks),
   * and claims are found there instead of under `pvcDir`. Unset: claims are under `pvcDir`.
   */
  vmiDisksDir?: string;
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
  libvirtDaemon?: string;
  stateDir?: string;
  imageStore?: string;
  secretsDir?: string;
  pvcDir?: string;
  vmiDisksDir?: string;
  insecureRegistry?: string[];
}

export interface LauncherFlagSpec {
  /** Commander syntax, `--name <value>`. */
  flag: string;
  /** The option's name in RawLauncherFlags (commander's camel-case of the flag). */
  key: keyof RawLauncherFlags;
  /** The LauncherConfig field it sets. */
  field: keyof LauncherConfig;
  description: string;
  default?: string;
  repeatable?: boolean;
  /** The config value as flag text, where String() is not it. */
  format?(value: LauncherConfig[keyof LauncherConfig]): string;
}

/** The launcher commands that take these flags (`launcher-monitor` is what a launcher Pod runs). */
export const LAUNCHER_MONITOR_COMMAND = 'launcher-monitor';
export const LAUNCHER_COMMANDS: readonly string[] = [LAUNCHER_MONITOR_COMMAND, 'launcher'];

/** Flag specs shared by `launcher` and `launcher-monitor`, in the order synth writes them. */
export const LAUNCHER_FLAGS: readonly LauncherFlagSpec[] = [
  // Whole seconds, the way KubeVirt's virt-controller writes it (dist/ has `240s`).
  { flag: '--qemu-timeout <duration>', key: 'qemuTimeout', field: 'qemuTimeoutMs', description: 'how long QEMU may take to start (e.g. 240s, 4m)', default: '240s', format: (ms) => formatSecondsDuration(ms as number) },
  { flag: '--name <vmi>', key: 'name', field: 'name', description: 'VMI name' },
  { flag: '--uid <uid>', key: 'uid', field: 'uid', description: 'VMI uid' },
  { flag: '--namespace <ns>', key: 'namespace', field: 'namespace', description: 'VMI namespace', default: 'default' },
  { flag: '--kubevirt-share-dir <dir>', key: 'kubevirtShareDir', field: 'kubevirtShareDir', description: 'shared runtime dir (sockets/, logs/)' },
  { flag: '--ephemeral-disk-dir <dir>', key: 'ephemeralDiskDir', field: 'ephemeralDiskDir', description: 'dir for overlays, emptyDisks and cloud-init ISOs' },
  { flag: '--container-disk-dir <dir>', key: 'containerDiskDir', field: 'containerDiskDir', description: 'dir for unpacked containerDisk/kernelBoot images' },
  { flag: '--grace-period-seconds <n>', key: 'gracePeriodSeconds', field: 'gracePeriodSeconds', description: 'ACPI shutdown grace period before destroy', default: '30' },
  { flag: '--hook-sidecars <n>', key: 'hookSidecars', field: 'hookSidecars', description: 'number of hook sidecars (virtops supports 0)', default: '0' },
  { flag: '--emulation <mode>', key: 'emulation', field: 'emulation', description: 'auto | kvm | tcg', default: 'auto' },
  { flag: '--libvirt-uri <uri>', key: 'libvirtUri', field: 'libvirtUri', description: 'libvirt connection URI', default: 'qemu:///system' },
  { flag: '--libvirt-daemon <where>', key: 'libvirtDaemon', field: 'libvirtDaemon', description: 'external (connect to --libvirt-uri as it is) | pod (the monitor starts a session libvirtd in this container first)', default: 'external' },
  { flag: '--state-dir <dir>', key: 'stateDir', field: 'stateDir', description: 'launcher state (default <kubevirt-share-dir>/launcher)' },
  { flag: '--image-store <dir>', key: 'imageStore', field: 'imageStore', description: 'shared OCI image cache (default ~/.cache/virtops/images)' },
  { flag: '--secrets-dir <dir>', key: 'secretsDir', field: 'secretsDir', description: 'secrets/configMaps as files (default <kubevirt-share-dir>/secrets)' },
  { flag: '--pvc-dir <dir>', key: 'pvcDir', field: 'pvcDir', description: 'claims: <dir>/<namespace>/<claim>/disk.img, <claim>.img or <claim>.qcow2 (default <kubevirt-share-dir>/pvcs)' },
  { flag: '--vmi-disks-dir <dir>', key: 'vmiDisksDir', field: 'vmiDisksDir', description: 'volumes mounted into this Pod by a kubelet: a claim at <dir>/<volume>/disk.img (replaces --pvc-dir), a hostDisk at <dir>/<volume>/<file name>' },
  { flag: '--insecure-registry <host>', key: 'insecureRegistry', field: 'insecureRegistries', description: 'registry reached without TLS (repeatable)', repeatable: true },
];

const flagOf = (f: LauncherFlagSpec): string => f.flag.split(' ')[0]!;
const BY_FIELD = new Map(LAUNCHER_FLAGS.map((f) => [f.field, f]));
/** `--name` etc. by raw key, for messages. */
const FLAG = Object.fromEntries(LAUNCHER_FLAGS.map((f) => [f.key, flagOf(f)])) as Record<keyof RawLauncherFlags, string>;
const DEFAULT = Object.fromEntries(LAUNCHER_FLAGS.flatMap((f) => (f.default !== undefined ? [[f.key, f.default]] : []))) as Partial<Record<keyof RawLauncherFlags, string>>;

function formatSecondsDuration(ms: number): string {
  const whole = Math.round(ms);
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`;
}

/** The flag that sets `field`: `kubevirtShareDir` → `--kubevirt-share-dir`. */
export function launcherFlag(field: keyof LauncherConfig): string {
  return flagOf(BY_FIELD.get(field)!);
}

// ---- build ----------------------------------------------------------------------------

/**
 * The launcher's flags for `values`, in table order; fields left undefined are left out
 * (the launcher applies its defaults). `uid` may be a `$(VAR)` reference for kubelet to expand.
 */
export function buildLauncherArgs(values: Partial<LauncherConfig>): string[] {
  const args: string[] = [];
  for (const f of LAUNCHER_FLAGS) {
    const v = values[f.field];
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) args.push(flagOf(f), f.format ? f.format(item) : String(item));
  }
  return args;
}

// ---- parse ----------------------------------------------------------------------------

/** Registers the launcher flags on a commander command (defaults only in the help text: validation applies them). */
export function addLauncherOptions(cmd: Command): Command {
  for (const f of LAUNCHER_FLAGS) {
    if (f.repeatable) cmd.option(f.flag, f.description, (v: string, prev: string[] = []) => [...prev, v]);
    else cmd.option(f.flag, f.description + (f.default ? ` (default ${f.default})` : ''));
  }
  return cmd;
}

/**
 * Launcher flags (the args after the command) → raw flags, parsed by commander with the
 * options the `launcher` commands register, so `--f=v`, repeats and errors match the CLI.
 * Throws on an unknown flag, a missing value or a stray argument.
 */
export function parseLauncherArgs(args: readonly string[]): RawLauncherFlags {
  const cmd = addLauncherOptions(new Command())
    .helpOption(false)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  try {
    cmd.parse([...args], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw new Error(`launcher argv: ${e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')}`);
    throw e;
  }
  return { ...cmd.opts<RawLauncherFlags>() };
}

/** A launcher command line (`... launcher-monitor --flag value ...`) → raw flags. */
export function parseLauncherArgv(argv: readonly string[]): RawLauncherFlags {
  // The first element naming a launcher command: the runtime's head (node, loader, entry) comes before it.
  const at = argv.findIndex((a) => LAUNCHER_COMMANDS.includes(a));
  if (at < 0) throw new Error(`launcher argv: no ${LAUNCHER_COMMANDS.join(' or ')} command in "${argv.join(' ')}"`);
  return parseLauncherArgs(argv.slice(at + 1));
}

// ---- edit in place --------------------------------------------------------------------

/** The value `field`'s flag has in `args` (`--f v` or `--f=v`; the last one wins, as in commander). */
export function launcherFlagValue(args: readonly string[], field: keyof LauncherConfig): string | undefined {
  const flag = launcherFlag(field);
  for (let i = args.length - 1; i >= 0; i--) {
    const a = args[i]!;
    if (a === flag) return args[i + 1];
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

/**
 * `args` with every occurrence of `field`'s flag replaced by one `--f value` where the first
 * was (appended when absent). Everything else stays as it is, so a caller that adds host
 * facts changes only what it reports. `previous` is the value it replaced.
 */
export function setLauncherFlag(args: readonly string[], field: keyof LauncherConfig, value: string): { args: string[]; previous?: string } {
  const flag = launcherFlag(field);
  const previous = launcherFlagValue(args, field);
  const out: string[] = [];
  let placed = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === flag || a.startsWith(`${flag}=`)) {
      if (a === flag) i++;
      if (!placed) out.push(flag, value);
      placed = true;
      continue;
    }
    out.push(a);
  }
  if (!placed) out.push(flag, value);
  return { args: out, ...(previous !== undefined ? { previous } : {}) };
}

// ---- validate -------------------------------------------------------------------------

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

  const name = need(raw.name, FLAG.name, `pass the VMI name, e.g. ${FLAG.name} web-1`);
  if (name && (name.length > 253 || !DNS_SUBDOMAIN.test(name))) {
    errors.push(`${FLAG.name} "${name}" is not a DNS-1123 name: use lower-case letters, digits, "-" and "."`);
  }
  const namespace = raw.namespace ?? DEFAULT.namespace!;
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    errors.push(`${FLAG.namespace} "${namespace}" is not a DNS-1123 label: use lower-case letters, digits and "-"`);
  }
  const uid = need(raw.uid, FLAG.uid, `pass the VMI's metadata.uid, e.g. ${FLAG.uid} 6f1c...`);
  if (uid && !/^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/.test(uid)) {
    errors.push(`${FLAG.uid} "${uid}" is not a uid: use letters, digits and "-" (a UUID)`);
  }
  const shareDir = dir(raw.kubevirtShareDir, FLAG.kubevirtShareDir);
  const ephemeralDiskDir = dir(raw.ephemeralDiskDir, FLAG.ephemeralDiskDir);
  const containerDiskDir = dir(raw.containerDiskDir, FLAG.containerDiskDir);
  const gracePeriodSeconds = int(raw.gracePeriodSeconds ?? DEFAULT.gracePeriodSeconds, FLAG.gracePeriodSeconds, 0, 86_400);
  const hookSidecars = int(raw.hookSidecars ?? DEFAULT.hookSidecars, FLAG.hookSidecars, 0, 16);
  if (hookSidecars > 0) errors.push(`${FLAG.hookSidecars} ${hookSidecars}: virtops runs no hook sidecars; pass ${FLAG.hookSidecars} 0`);
  const qemuTimeoutMs = parseDuration(raw.qemuTimeout ?? DEFAULT.qemuTimeout!);
  if (qemuTimeoutMs === null || qemuTimeoutMs <= 0) {
    errors.push(`${FLAG.qemuTimeout} "${raw.qemuTimeout}" is not a positive duration: use e.g. 240s, 4m or 1h`);
  }
  const emulation = raw.emulation ?? DEFAULT.emulation!;
  if (emulation !== 'auto' && emulation !== 'kvm' && emulation !== 'tcg') {
    errors.push(`${FLAG.emulation} "${emulation}" is not one of auto, kvm, tcg: pass ${FLAG.emulation} tcg when KVM is unusable`);
  }
  const libvirtUri = raw.libvirtUri ?? DEFAULT.libvirtUri!;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(libvirtUri)) {
    errors.push(`${FLAG.libvirtUri} "${libvirtUri}" is not a libvirt URI: use e.g. qemu:///system or test:///default`);
  }
  const libvirtDaemon = raw.libvirtDaemon ?? DEFAULT.libvirtDaemon!;
  if (!(LIBVIRT_DAEMONS as readonly string[]).includes(libvirtDaemon)) {
    errors.push(`${FLAG.libvirtDaemon} "${libvirtDaemon}" is not one of ${LIBVIRT_DAEMONS.join(', ')}: pass ${FLAG.libvirtDaemon} pod to run libvirt inside the launcher's container`);
  } else if (libvirtDaemon === 'pod' && !/^qemu(\+unix)?:\/\/\/session\?(.*&)?socket=\//.test(libvirtUri)) {
    errors.push(`${FLAG.libvirtUri} "${libvirtUri}" does not name the session daemon's socket, which ${FLAG.libvirtDaemon} pod connects to: pass ${FLAG.libvirtUri} 'qemu+unix:///session?socket=/var/run/libvirt/libvirt-sock'`);
  }
  const insecureRegistries = raw.insecureRegistry ?? [];
  for (const r of insecureRegistries) {
    if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(r)) errors.push(`${FLAG.insecureRegistry} "${r}" is not host[:port]: use e.g. 127.0.0.1:5000`);
  }
  const stateDir = dir(raw.stateDir, FLAG.stateDir, shareDir && join(shareDir, 'launcher'));
  const imageStore = dir(raw.imageStore, FLAG.imageStore, join(home, '.cache', 'virtops', 'images'));
  const secretsDir = dir(raw.secretsDir, FLAG.secretsDir, shareDir && join(shareDir, 'secrets'));
  const pvcDir = dir(raw.pvcDir, FLAG.pvcDir, shareDir && join(shareDir, 'pvcs'));
  const vmiDisksDir = raw.vmiDisksDir === undefined ? undefined : dir(raw.vmiDisksDir, FLAG.vmiDisksDir);

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    config: {
      name, uid, namespace, kubevirtShareDir: shareDir, ephemeralDiskDir, containerDiskDir, gracePeriodSeconds, hookSidecars,
      qemuTimeoutMs: qemuTimeoutMs!, emulation: emulation as EmulationRequest, libvirtUri, libvirtDaemon: libvirtDaemon as LibvirtDaemon, stateDir, imageStore, secretsDir,
      pvcDir, ...(vmiDisksDir !== undefined ? { vmiDisksDir } : {}), insecureRegistries,
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
