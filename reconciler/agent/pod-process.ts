/**
 * From a launcher Pod (as synth wrote it to dist/) to a host process: the pure half of the
 * node agent's process runtime. Without a kubelet, the agent does kubelet's work itself:
 *
 * - every emptyDir volume becomes a per-VM host directory `<podDir>/<volume>`;
 *   a mount nested in another (sockets under /var/run/kubevirt) becomes a symlink inside
 *   the outer volume's directory, so both paths reach the same files, as with bind mounts;
 * - the compute container's env is resolved (downward-API fieldRefs from the Pod's own
 *   metadata, with the real VMI uid in the `kubevirt.io/created-by` label) and `$(VAR)`
 *   references in args are expanded as kubelet expands them;
 * - args and env values that name a mount path are rewritten to the host directory;
 * - the command `virtops` resolves to this checkout's CLI (`node <repo>/cli/bin.js`);
 * - host-specific flags (emulation, libvirt URI, image store, ...) replace or extend the
 *   Pod's args, and each one is reported so the caller logs what differs from git.
 *
 * Everything else is the Pod's: what is in git is what runs.
 */
import { posix } from 'node:path';
import type { Container, PodManifest } from '../../synth/pod-types.js';
import { LABEL_CREATED_BY, launcherArgv } from '../../synth/launcher-pod.js';
import { buildLauncherArgs, launcherFlag, launcherFlagValue, setLauncherFlag, type LauncherConfig } from '../../launcher/flags.js';

/** Host facts given to every launcher, as the launcher config fields they set. */
export type HostFlags = Partial<Pick<LauncherConfig, HostFlagField | 'insecureRegistries'>>;

/** Host flags that replace the Pod's value (`emulation`: KVM may be unusable on this host). */
const REPLACED_HOST_FLAGS = ['emulation', 'libvirtUri', 'imageStore', 'pvcDir', 'secretsDir'] as const;
type HostFlagField = (typeof REPLACED_HOST_FLAGS)[number];

export interface ProcessInput {
  pod: PodManifest;
  /** The VMI uid of this incarnation (fills the created-by label and $(VMI_UID)). */
  uid: string;
  /** `<state-dir>/pods/<ns>_<name>`: everything of this VM's launcher lives under it. */
  podDir: string;
  /** How to run the `virtops` CLI of this checkout, e.g. [process.execPath, '<repo>/cli/bin.js']. */
  virtopsCommand: string[];
  hostFlags: HostFlags;
}

export interface HostDir {
  volume: string;
  /** Path inside the container. */
  mountPath: string;
  /** Directory on this host. */
  hostPath: string;
  /** Created as a symlink to an already mapped directory (nested mount). */
  linkTo?: string;
}

export interface HostFlagChange {
  flag: string;
  /** What the Pod says (undefined: the Pod does not pass the flag). */
  pod?: string;
  host: string;
}

export interface ProcessSpec {
  argv: string[];
  env: Record<string, string>;
  dirs: HostDir[];
  hostFlagChanges: HostFlagChange[];
  /** The launcher's command socket on this host. */
  socketPath: string;
  /** Where the launcher's share dir (logs/, sockets/) lives on this host. */
  shareDir: string;
  domainName: string;
}

export class PodProcessError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'PodProcessError';
  }
}

export function computeContainer(pod: PodManifest): Container {
  const c = pod.spec.containers.find((x) => x.name === 'compute');
  if (!c) throw new PodProcessError(`Pod ${pod.metadata.name} spec.containers`, "no 'compute' container; re-run virtops synth and commit dist/");
  return c;
}

export function launcherProcessSpec(input: ProcessInput): ProcessSpec {
  const { pod, uid, podDir } = input;
  const withUid: PodManifest = {
    ...pod,
    metadata: { ...pod.metadata, labels: { ...(pod.metadata.labels ?? {}), [LABEL_CREATED_BY]: uid } },
  };
  const compute = computeContainer(withUid);
  const dirs = hostDirs(withUid, compute, podDir);
  const rewrite = (value: string): string => rewritePath(value, dirs);

  const env: Record<string, string> = {};
  for (const [i, e] of (compute.env ?? []).entries()) {
    if (e.value !== undefined) env[e.name] = rewrite(expand(e.value, env));
    else if (e.valueFrom?.fieldRef) env[e.name] = fieldRef(withUid, e.valueFrom.fieldRef.fieldPath, `spec.containers[compute].env[${i}].valueFrom.fieldRef.fieldPath`);
  }

  const [cmd, ...rest] = launcherArgv(withUid, env);
  if (cmd === undefined) throw new PodProcessError('spec.containers[compute].command', 'is empty; re-run virtops synth');
  let args = rest.map((a) => rewriteArg(a, dirs));
  const head = cmd === 'virtops' ? input.virtopsCommand : [cmd];

  // Host flags edit the Pod's args in place (nothing else moves), so the argv stays the Pod's.
  const changes: HostFlagChange[] = [];
  const hf = input.hostFlags;
  for (const field of REPLACED_HOST_FLAGS) {
    const value = hf[field];
    if (value === undefined) continue;
    const r = setLauncherFlag(args, field, value);
    args = r.args;
    if (r.previous !== value) changes.push({ flag: launcherFlag(field), ...(r.previous !== undefined ? { pod: r.previous } : {}), host: value });
  }
  for (const r of hf.insecureRegistries ?? []) {
    args.push(...buildLauncherArgs({ insecureRegistries: [r] }));
    changes.push({ flag: launcherFlag('insecureRegistries'), host: r });
  }

  const shareArg = launcherFlagValue(args, 'kubevirtShareDir');
  if (!shareArg) throw new PodProcessError('spec.containers[compute].args', `has no ${launcherFlag('kubevirtShareDir')}; re-run virtops synth`);
  const name = launcherFlagValue(args, 'name') ?? pod.metadata.labels?.['vm.kubevirt.io/name'] ?? '';
  const namespace = launcherFlagValue(args, 'namespace') ?? 'default';
  return {
    argv: [...head, ...args],
    env,
    dirs,
    hostFlagChanges: changes,
    // Through the real directory, not the nested-mount link: shorter, and unix socket paths are capped at 107 bytes.
    socketPath: throughLinks(posix.join(shareArg, 'sockets', 'launcher-sock'), dirs),
    shareDir: shareArg,
    domainName: `${namespace}_${name}`,
  };
}

/** emptyDir volumes mounted by the compute container → host dirs; nested mounts as links. */
function hostDirs(pod: PodManifest, compute: Container, podDir: string): HostDir[] {
  const byName = new Map(pod.spec.volumes.map((v) => [v.name, v]));
  const mounts = [...(compute.volumeMounts ?? [])]
    .filter((m) => byName.get(m.name)?.emptyDir !== undefined)
    // Outer mounts first, so a nested one can link into its parent.
    .sort((a, b) => a.mountPath.length - b.mountPath.length);
  const dirs: HostDir[] = [];
  for (const m of mounts) {
    // Volume names are DNS labels (no dots), so they never collide with launcher.log.
    const hostPath = posix.join(podDir, m.name);
    const parent = [...dirs].reverse().find((d) => isUnder(m.mountPath, d.mountPath));
    dirs.push({ volume: m.name, mountPath: m.mountPath, hostPath, ...(parent ? { linkTo: posix.join(parent.hostPath, posix.relative(parent.mountPath, m.mountPath)) } : {}) });
  }
  return dirs;
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** A container path → the host path of the innermost mount holding it; other strings unchanged. */
export function rewritePath(value: string, dirs: HostDir[]): string {
  if (!value.startsWith('/')) return value;
  let best: HostDir | undefined;
  for (const d of dirs) if (isUnder(value, d.mountPath) && (!best || d.mountPath.length > best.mountPath.length)) best = d;
  if (!best) return value;
  const rel = posix.relative(best.mountPath, value);
  return rel ? posix.join(best.hostPath, rel) : best.hostPath;
}

/** A host path under a nested-mount link → the same path under the link's target directory. */
export function throughLinks(path: string, dirs: HostDir[]): string {
  for (const d of dirs) {
    if (d.linkTo && isUnder(path, d.linkTo)) {
      const rel = posix.relative(d.linkTo, path);
      return rel ? posix.join(d.hostPath, rel) : d.hostPath;
    }
  }
  return path;
}

function rewriteArg(arg: string, dirs: HostDir[]): string {
  const eq = arg.indexOf('=');
  if (arg.startsWith('--') && eq > 0) return `${arg.slice(0, eq + 1)}${rewritePath(arg.slice(eq + 1), dirs)}`;
  return rewritePath(arg, dirs);
}

function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, k: string) => env[k] ?? m);
}

function fieldRef(pod: PodManifest, fieldPath: string, at: string): string {
  const meta = pod.metadata;
  if (fieldPath === 'metadata.name') return meta.name;
  if (fieldPath === 'metadata.namespace') return meta.namespace ?? 'default';
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === 'labels' ? meta.labels : meta.annotations)?.[m[2]!] ?? '';
  throw new PodProcessError(at, `"${fieldPath}" is not supported by the standalone node agent: use metadata.name, metadata.namespace, metadata.labels['...'] or metadata.annotations['...']`);
}
