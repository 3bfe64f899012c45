/**
 * The host side of running launchers, shared by `virtops up` (reconciler/standalone/up.ts),
 * `virtops agent` (reconciler/cluster/run.ts) and the `virtops domain-xml` preview: the
 * state dir and its layout, the host flags every launcher gets, the environment launchers
 * inherit, and pure validators for the flags that describe the host. Each validator pushes
 * messages naming the flag and the fix into `errors`, so a command reports every problem
 * at once.
 *
 * A leaf (node:path and types only) because the CLI imports DEFAULT_STATE_DIR from here when
 * it registers commands and launcher/convert/node-layout.ts re-exports it; duration flags
 * are in duration-flag.ts for that reason (launcher/flags.ts loads commander).
 */
import { createHash } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import type { HostFlags } from './pod-process.js';

/** Default --state-dir of `up` and `agent` (and the paths `domain-xml` previews). */
export const DEFAULT_STATE_DIR = '/var/lib/virtops';
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

export type HostEmulation = 'auto' | 'kvm' | 'tcg';
const EMULATIONS: readonly string[] = ['auto', 'kvm', 'tcg'] satisfies HostEmulation[];

/** What the host flags describe: where state lives and how launchers reach libvirt and registries. */
export interface HostConfig {
  stateDir: string;
  emulation: HostEmulation;
  libvirtUri: string;
  insecureRegistries: string[];
}

export type HostLayoutOptions = Omit<HostConfig, 'insecureRegistries'> & { insecureRegistries?: string[] };

/** The host flags as commander gives them (same names for `up` and `agent`). */
export interface RawHostFlags {
  stateDir?: string;
  emulation?: string;
  libvirtUri?: string;
  insecureRegistry?: string[];
}

// ---- layout --------------------------------------------------------------------------------

/** `<state-dir>/pods`: one directory per VM's launcher Pod. */
export function podsDir(stateDir: string): string {
  return join(stateDir, 'pods');
}

/**
 * The longest --state-dir every launcher's unix sockets fit under (sun_path holds 107 bytes):
 * `<state-dir>/pods/<12-char key>/public/sockets/serial0` is the longest socket path.
 */
export const MAX_STATE_DIR_BYTES = 64;

/**
 * A launcher Pod's directory name: 12 characters of a hash of `<namespace>/<name>`, so the
 * socket paths under it have the same length whatever the names (63 bytes each in
 * Kubernetes). `vm.json` in the directory says whose it is.
 */
export function podKey(namespace: string, name: string): string {
  return createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 12);
}

/** `<state-dir>/pods/<podKey>` (the node agent's podDir). */
export function podDir(stateDir: string, namespace: string, name: string): string {
  return join(podsDir(stateDir), podKey(namespace, name));
}

/**
 * The host facts added to every launcher's flags (see the README's "What runs is what is in
 * git"): one builder, so `up`, `agent` and the `domain-xml` preview lay paths out alike.
 */
export function hostFlags(o: HostLayoutOptions): HostFlags {
  return {
    // `auto` leaves the launcher Pod's own --emulation in force.
    ...(o.emulation !== 'auto' ? { emulation: o.emulation } : {}),
    libvirtUri: o.libvirtUri,
    imageStore: join(o.stateDir, 'images'),
    pvcDir: join(o.stateDir, 'pvcs'),
    secretsDir: join(o.stateDir, 'secrets'),
    insecureRegistries: o.insecureRegistries ?? [],
  };
}

const BASE_ENV_KEYS = ['PATH', 'HOME', 'VIRTOPS_LOG_LEVEL', 'VIRTOPS_TRUST_NESTED_KVM', 'TMPDIR'];

/**
 * The part of this process's environment launchers inherit (the Pod's env comes on top).
 * An allow-list: launchers outlive `up`/`agent`, and nothing else of ours should leak in.
 */
export function baseEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of BASE_ENV_KEYS) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

// ---- validators ----------------------------------------------------------------------------

export function validateStateDir(value: string, errors: string[]): string {
  if (!isAbsolute(value)) errors.push(`--state-dir "${value}" is not an absolute path: pass e.g. --state-dir ${DEFAULT_STATE_DIR}`);
  else if (Buffer.byteLength(value) > MAX_STATE_DIR_BYTES) {
    errors.push(`--state-dir "${value}" is ${Buffer.byteLength(value)} bytes, over ${MAX_STATE_DIR_BYTES}: launcher unix sockets under it would not fit the 107-byte limit; pass a shorter path (a symlink works), e.g. --state-dir ${DEFAULT_STATE_DIR}`);
  }
  return value;
}

/** The emulation mode, or undefined (with a message in `errors`) when it is not one. */
export function validateEmulation(value: string, errors: string[]): HostEmulation | undefined {
  if (EMULATIONS.includes(value)) return value as HostEmulation;
  errors.push(`--emulation "${value}" is not one of auto, kvm, tcg: pass --emulation tcg where KVM is unusable`);
  return undefined;
}

export function validateLibvirtUri(value: string, errors: string[]): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) errors.push(`--libvirt-uri "${value}" is not a libvirt URI: use e.g. ${DEFAULT_LIBVIRT_URI} or test:///default`);
  return value;
}

export function validateInsecureRegistries(values: readonly string[], errors: string[]): string[] {
  for (const r of values) if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(r)) errors.push(`--insecure-registry "${r}" is not host[:port]: use e.g. 127.0.0.1:5000`);
  return [...values];
}

/**
 * The four host flags with their defaults applied. Undefined when any is invalid (the
 * messages are in `errors`); every flag is checked either way.
 */
export function validateHostFlags(raw: RawHostFlags, errors: string[]): HostConfig | undefined {
  const before = errors.length;
  const stateDir = validateStateDir(raw.stateDir ?? DEFAULT_STATE_DIR, errors);
  const emulation = validateEmulation(raw.emulation ?? 'auto', errors);
  const libvirtUri = validateLibvirtUri(raw.libvirtUri ?? DEFAULT_LIBVIRT_URI, errors);
  const insecureRegistries = validateInsecureRegistries(raw.insecureRegistry ?? [], errors);
  if (errors.length > before || emulation === undefined) return undefined;
  return { stateDir, emulation, libvirtUri, insecureRegistries };
}
