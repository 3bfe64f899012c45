import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** tools/kube/ in this repository: wrapper Go modules, versions.env and build.sh. */
export const TOOLS_KUBE_DIR = fileURLToPath(new URL('../../../tools/kube/', import.meta.url));

export interface ControlPlaneVersions {
  /** k8s.io/kubernetes release, e.g. `v1.37.2`; what `/version` reports as gitVersion. */
  readonly kubernetes: string;
  /** go.etcd.io/etcd/server/v3 release, e.g. `v3.6.16`. */
  readonly etcd: string;
}

/** Parses tools/kube/versions.env (`KEY=VALUE` lines, `#` comments). Pure. */
export function parseVersionsEnv(text: string): ControlPlaneVersions {
  const vars = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const need = (key: string, pattern: RegExp): string => {
    const value = vars.get(key);
    if (value === undefined || !pattern.test(value)) {
      throw new Error(`tools/kube/versions.env: ${key} must be set to a release tag like ${pattern === K8S_TAG ? 'v1.37.2' : 'v3.6.16'} (got ${value ?? 'nothing'})`);
    }
    return value;
  };
  return { kubernetes: need('K8S_VERSION', K8S_TAG), etcd: need('ETCD_VERSION', ETCD_TAG) };
}
const K8S_TAG = /^v1\.\d+\.\d+$/;
const ETCD_TAG = /^v3\.\d+\.\d+$/;

/** CONTAINERD_VERSION of versions.env (the real node's container runtime), e.g. `v2.4.2`. Pure. */
export function containerdVersionOf(text: string): string {
  const value = /^\s*CONTAINERD_VERSION=(\S*)/m.exec(text)?.[1];
  if (value === undefined || !/^v2\.\d+\.\d+$/.test(value)) {
    throw new Error(`tools/kube/versions.env: CONTAINERD_VERSION must be set to a containerd v2 release tag like v2.4.2 (got ${value ?? 'nothing'})`);
  }
  return value;
}

export function readContainerdVersion(): string {
  return containerdVersionOf(readFileSync(join(TOOLS_KUBE_DIR, 'versions.env'), 'utf8'));
}

/** Cache directory holding `containerd` and `containerd-shim-runc-v2` (same rule as build.sh). */
export function defaultContainerdDir(version: string = readContainerdVersion(), env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'containerd', version);
}

/** Cache directory of the locally built pause and busybox OCI layouts (scripts/build-pause-image.sh). */
export function defaultNodeImagesDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'node-images');
}

export function readVersions(): ControlPlaneVersions {
  return parseVersionsEnv(readFileSync(join(TOOLS_KUBE_DIR, 'versions.env'), 'utf8'));
}

/** Cache directory holding `kube` and `etcd` for these versions (same rule as build.sh). */
export function defaultBinDir(versions: ControlPlaneVersions = readVersions(), env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'kube', `${versions.kubernetes}-${versions.etcd}`);
}

/** ${VIRTOPS_CACHE:-$HOME/.cache/virtops}, as the build scripts compute it. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.VIRTOPS_CACHE || join(env.HOME || homedir(), '.cache', 'virtops');
}
