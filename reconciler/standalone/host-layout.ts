/**
 * Where `virtops up` puts a VM's launcher on this host, as pure functions shared by `up`
 * (reconciler/standalone/up.ts) and the preview of `virtops domain-xml`, so the preview
 * lays paths out exactly as `up` will.
 */
import { join } from 'node:path';
import type { HostFlags } from '../agent/pod-process.js';

export interface HostLayoutOptions {
  stateDir: string;
  emulation: 'auto' | 'kvm' | 'tcg';
  libvirtUri: string;
  insecureRegistries?: string[];
}

/** `<state-dir>/pods`: one directory per VM's launcher Pod. */
export function podsDir(stateDir: string): string {
  return join(stateDir, 'pods');
}

/** `<state-dir>/pods/<ns>_<name>` (the node agent's podDir). */
export function podDir(stateDir: string, namespace: string, name: string): string {
  return join(podsDir(stateDir), `${namespace}_${name}`);
}

/** The host facts `up` adds to every launcher's flags (see the README's "What runs is what is in git"). */
export function upHostFlags(o: HostLayoutOptions): HostFlags {
  return {
    ...(o.emulation !== 'auto' ? { emulation: o.emulation } : {}),
    libvirtUri: o.libvirtUri,
    imageStore: join(o.stateDir, 'images'),
    pvcDir: join(o.stateDir, 'pvcs'),
    secretsDir: join(o.stateDir, 'secrets'),
    insecureRegistries: o.insecureRegistries ?? [],
  };
}
