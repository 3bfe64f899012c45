/**
 * The node agent beside a real kubelet (`virtops agent` without `--process-runtime`): the
 * kubelet and the container runtime run the launcher Pods; the agent finds each launcher
 * through the node's launcher socket directory and drives it (virt-handler's share dir).
 *
 * Layout (synth's `nodeSocketDir`, default /var/lib/virtops/launchers; the agent's
 * `--launcher-socket-dir`): every launcher Pod mounts `<dir>/<pod uid>/` (a hostPath with
 * `subPathExpr: $(POD_UID)`) and its launcher monitor serves the launcher's command socket
 * there as `launcher-sock` (launcher/monitor/node-socket.ts). Paths stay short whatever the
 * names: 1 + 36 bytes of uid + 14 after the directory, so a directory of up to 56 bytes keeps
 * the socket within the 107-byte limit (checked at start-up).
 *
 * The agent's part:
 * - **hand the directory over**: for each Pod on this node, `<dir>/<pod uid>` is made (or
 *   taken from the kubelet, which creates a missing subPath dir as root) owned by the Pod's
 *   runAsUser:runAsGroup with mode 0700; `<dir>` itself is root's, 0700. The monitor waits
 *   until it may write there.
 * - **check the peer before talking to it**: the directory and the socket are not symlinks,
 *   are owned by the Pod's runAsUser, the directory has mode 0700 (no group/other bits), and
 *   the process listening on the socket (SO_PEERCRED of our connection: the kernel's record
 *   of who called listen()) is in this Pod's cgroup (`pod<uid>` in /proc/<pid>/cgroup). So a
 *   socket left by an earlier incarnation, or planted by anything but this Pod, is not used.
 * - **alive** is the launcher monitor process of the VMI (its argv holds `launcher-monitor`
 *   and the VMI uid) in this Pod's cgroup, found in /proc: the agent needs the host's pid
 *   namespace (`hostPID: true` in the DaemonSet, as virt-handler).
 * - **stop** shuts the guest down through the launcher (ACPI, then destroy after the grace
 *   period) and leaves the process to the kubelet: the Pod ends when its VMI is deleted
 *   (owner reference), and the Pod's status is the kubelet's alone.
 * - **after a SIGKILL** of the launcher-monitor (the compute container's main process, which
 *   runs the launcher in-process: one Node process per VM) there is no cleanup to run here,
 *   unlike the process runtime: the container ends and takes its cgroup with it, QEMU and
 *   the container's own libvirt daemon (`--libvirt-daemon pod`, which held the domain)
 *   included; the ephemeral disks are in the Pod's emptyDirs, which the kubelet removes with
 *   the Pod. Left behind is only the stale relay socket in `<dir>/<pod uid>`: the peer check
 *   refuses it, and the directory goes with the Pod (below).
 * - the directories of Pods that are gone are removed (at start, every resync, and when a Pod
 *   leaves); the kubelet never removes hostPath contents.
 * - **the Pod's libvirt daemon** (online snapshots, snapshots.ts): reached as root through the
 *   launcher monitor's root, `/proc/<pid>/root<socket>` (`podDaemon`), the monitor found as
 *   `alive` finds it, symlinks in the path resolved inside that root (`resolveInRoot`: the
 *   image's `/var/run` is a link to `/run`, which the kernel would take as the host's).
 */
import { chmod, lchown, lstat, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { basename, join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import sockopt from 'sockopt';
import type { VirtualMachineInstance } from '../../api/kubevirt.js';
import { launcherFlagValue } from '../../launcher/flags.js';
import { sessionSocketOf } from '../../launcher/monitor/libvirt-daemon.js';
import { NODE_SOCKET_NAME } from '../../launcher/monitor/node-socket.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { LAUNCHER_MARKER, LauncherError, NodeAgent, type InstanceRecord, type LauncherRuntime } from '../agent/agent.js';
import type { ProcessSpec } from '../agent/pod-process.js';
import { findProcesses } from '../agent/process-runtime.js';

/** A Pod uid as the API server makes them (the only names the socket directory holds). */
const POD_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The longest `--launcher-socket-dir` whose sockets fit in 107 bytes: dir + '/' + uid(36) + '/' + 'launcher-sock'(13). */
export const MAX_SOCKET_DIR_BYTES = 107 - 1 - 36 - 1 - NODE_SOCKET_NAME.length;

/** The Pod's user and group (compute container's securityContext over the Pod's; 107 as synth writes it). */
export function podIdentity(pod: Pick<V1Pod, 'spec'>): { uid: number; gid: number } {
  const compute = pod.spec?.containers.find((c) => c.name === 'compute');
  const uid = compute?.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser ?? 107;
  const gid = compute?.securityContext?.runAsGroup ?? pod.spec?.securityContext?.runAsGroup ?? uid;
  return { uid, gid };
}

/**
 * Pure: how the agent reaches the libvirt daemon of a launcher Pod whose launcher monitor is
 * `pid` (in the host's pid namespace), from the compute container's args: the daemon's socket
 * through that process's root (`/proc/<pid>/root/<socket>`, the Pod's mount namespace; the
 * agent is root there), and where the Pod mounts claims (`--vmi-disks-dir`). An error when the
 * Pod runs no daemon of its own or mounts no claims so.
 */
export function podDaemonView(computeArgs: readonly string[], pid: number): { socket: string; vmiDisksDir: string } | { unreachable: string } {
  const socket = launcherFlagValue(computeArgs, 'libvirtDaemon') === 'pod' ? sessionSocketOf(launcherFlagValue(computeArgs, 'libvirtUri') ?? '') : undefined;
  if (!socket) return { unreachable: 'its launcher Pod runs no libvirt daemon of its own (no --libvirt-daemon pod with a session socket)' };
  const vmiDisksDir = launcherFlagValue(computeArgs, 'vmiDisksDir');
  if (!vmiDisksDir) return { unreachable: 'its launcher Pod finds claims under --pvc-dir, not where the kubelet mounts them (no --vmi-disks-dir)' };
  return { socket: `/proc/${pid}/root${socket}`, vmiDisksDir };
}

/**
 * `path` (under `root`, a `/proc/<pid>/root`) with every symlink resolved inside that root: the
 * kernel would resolve an absolute link (Debian's `/var/run` → `/run`) against the caller's root,
 * i.e. the host's, and `..` never leaves `root`. Missing components are kept as they are.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const rest = path.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; rest.length; ) {
    const part = rest.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    const st = await lstat(here).catch(() => undefined);
    if (!st?.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++hops > 40) throw new Error(`${path} under ${root}: too many symbolic links`);
    const target = await readlink(here);
    if (target.startsWith('/')) done.length = 0;
    rest.unshift(...target.split('/').filter(Boolean));
  }
  return join(root, ...done);
}

/** Whether a /proc/<pid>/cgroup text puts the process in the Pod `podUid` (cgroupfs `pod<uid>` or systemd `pod<uid_with_underscores>`). */
export function inPodCgroup(cgroupText: string, podUid: string): boolean {
  const marks = [`pod${podUid}`, `pod${podUid.replace(/-/g, '_')}`];
  return cgroupText.split('\n').some((l) => marks.some((m) => l.includes(m)));
}

/** Pure: what is wrong with a socket directory and socket, by their lstat facts; undefined when they are fit to use. */
export function socketDirProblem(
  dir: { isDirectory: boolean; isSymbolicLink: boolean; uid: number; mode: number } | undefined,
  socket: { isSocket: boolean; uid: number } | undefined,
  owner: number,
): string | undefined {
  if (!dir) return 'its socket directory does not exist yet';
  if (dir.isSymbolicLink || !dir.isDirectory) return 'its socket directory is not a plain directory';
  if (dir.uid !== owner) return `its socket directory is owned by uid ${dir.uid}, not the Pod's ${owner}`;
  if ((dir.mode & 0o077) !== 0) return `its socket directory has mode ${(dir.mode & 0o777).toString(8)}, not 700`;
  if (!socket) return 'the launcher has not published its socket yet';
  if (!socket.isSocket) return `${NODE_SOCKET_NAME} is not a socket`;
  if (socket.uid !== owner) return `its socket is owned by uid ${socket.uid}, not the Pod's ${owner}`;
  return undefined;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/** The pid (in our pid namespace) of the process that listens on `path`; undefined when none answers. */
async function listenerPid(path: string): Promise<number | undefined> {
  const socket = connect(path);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const pid = sockopt.getsockopt(socket, SOL_SOCKET, SO_PEERCRED) as number;
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    socket.destroy();
  }
}

async function cgroupOf(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
}

/** The launcher runtime where the kubelet runs launchers: found in /proc, never started or killed here. */
export class KubeletRuntime implements LauncherRuntime {
  readonly kind = 'kubelet';

  start(_record: InstanceRecord, _spec: ProcessSpec): Promise<number> {
    return Promise.reject(new LauncherError('on a kubelet node the kubelet starts launcher Pods; the agent only drives them', 'KubeletRuns'));
  }

  async alive(record: InstanceRecord): Promise<boolean> {
    return (await this.pids(record)).length > 0;
  }

  supervised(record: InstanceRecord): Promise<boolean> {
    return this.alive(record);
  }

  async pid(record: InstanceRecord): Promise<number | undefined> {
    return (await this.pids(record))[0];
  }

  /** Launcher monitors of this VMI in this Pod's cgroup (the record's dir is named by the Pod uid). */
  async pids(record: InstanceRecord): Promise<number[]> {
    const podUid = basename(record.podDir);
    const out: number[] = [];
    for (const pid of await findProcesses([LAUNCHER_MARKER, record.uid])) if (inPodCgroup(await cgroupOf(pid), podUid)) out.push(pid);
    return out;
  }

  /** The kubelet ends the container (when the Pod is deleted with its VMI); nothing to do here. */
  async stop(): Promise<void> {}
}

/** The node-side handler of launchers that the kubelet runs (see the module comment). */
export class KubeletLaunchers extends NodeAgent {
  constructor(private readonly socketDir: string, log: Logger) {
    super({
      podsDir: socketDir,
      virtopsCommand: [],
      hostFlags: {},
      baseEnv: {},
      // The domain lives in the Pod's own libvirt daemon and goes with the Pod.
      janitor: { removeDomain: () => Promise.resolve('absent' as const) },
      runtime: new KubeletRuntime(),
      log,
    });
  }

  override podDir(_namespace: string, podUid: string): string {
    return join(this.socketDir, podUid);
  }

  /** The record of the launcher in `pod` (by Pod uid); no process spec: the kubelet has it. */
  override plan(vmi: VirtualMachineInstance, pod: PodManifest, opts: { podName: string; now: number; vmGeneration?: number }): { spec: ProcessSpec; record: InstanceRecord } {
    const uid = vmi.metadata.uid;
    const podUid = pod.metadata.uid;
    if (!uid) throw new LauncherError(`VirtualMachineInstance ${vmi.metadata.namespace ?? 'default'}/${vmi.metadata.name} has no uid yet`, 'NoUid');
    if (!podUid || !POD_UID.test(podUid)) throw new LauncherError(`launcher Pod ${pod.metadata.name} has no uid the API server made (${podUid ?? 'none'})`, 'NoPodUid');
    const namespace = vmi.metadata.namespace ?? 'default';
    const dir = this.podDir(namespace, podUid);
    const record: InstanceRecord = {
      uid,
      createdAt: opts.now,
      spec: structuredClone(vmi.spec),
      ...(opts.vmGeneration !== undefined ? { vmGeneration: opts.vmGeneration } : {}),
      podDir: dir,
      socketPath: join(dir, NODE_SOCKET_NAME),
      shareDir: dir,
      domainName: `${namespace}_${vmi.metadata.name}`,
      logFile: `the compute container's log (kubectl logs -n ${namespace} ${pod.metadata.name} -c compute)`,
      podGraceSeconds: pod.spec.terminationGracePeriodSeconds,
    };
    // No argv: nothing here ever starts it (KubeletRuntime.start refuses).
    return { spec: { argv: [], env: {}, dirs: [], hostFlagChanges: [], socketPath: record.socketPath, shareDir: dir, domainName: record.domainName }, record };
  }

  /** `<dir>` (root, 0700) and `<dir>/<pod uid>` handed to the Pod's user (0700); idempotent. */
  async prepare(pod: V1Pod): Promise<void> {
    const podUid = pod.metadata?.uid;
    if (!podUid || !POD_UID.test(podUid)) return;
    await mkdir(this.socketDir, { recursive: true, mode: 0o700 });
    const dir = join(this.socketDir, podUid);
    await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    const st = await lstat(dir);
    if (st.isSymbolicLink() || !st.isDirectory()) throw new LauncherError(`${dir} is not a plain directory; remove it`, 'SocketDirInvalid');
    const { uid, gid } = podIdentity(pod);
    if (st.uid !== uid || st.gid !== gid) await lchown(dir, uid, gid);
    if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  }

  /** Undefined when the launcher socket of `pod` is fit to talk to; else why not (see the module comment). */
  async verify(record: InstanceRecord, pod: V1Pod): Promise<string | undefined> {
    const podUid = pod.metadata?.uid ?? '';
    const facts = async (p: string) => lstat(p).catch(() => undefined);
    const d = await facts(record.podDir);
    const s = await facts(record.socketPath);
    const problem = socketDirProblem(
      d && { isDirectory: d.isDirectory(), isSymbolicLink: d.isSymbolicLink(), uid: d.uid, mode: d.mode },
      s && { isSocket: s.isSocket(), uid: s.uid },
      podIdentity(pod).uid,
    );
    if (problem) return problem;
    const pid = await listenerPid(record.socketPath);
    if (pid === undefined) return 'nothing answers on its socket yet';
    if (!inPodCgroup(await cgroupOf(pid), podUid)) return `the process listening on its socket (pid ${pid}) is not in the Pod's cgroup`;
    return undefined;
  }

  /**
   * The libvirt daemon of the launcher Pod `pod` running VMI `vmiUid` (online snapshots): see
   * podDaemonView; the launcher monitor is found as `alive` finds it, in the Pod's cgroup.
   */
  async podDaemon(vmiUid: string, pod: V1Pod | undefined): Promise<{ libvirtUri: string; vmiDisksDir: string } | { unreachable: string }> {
    const podUid = pod?.metadata?.uid;
    if (!pod || !podUid) return { unreachable: 'its launcher Pod is not known on this node yet' };
    let pid: number | undefined;
    for (const p of await findProcesses([LAUNCHER_MARKER, vmiUid])) if (inPodCgroup(await cgroupOf(p), podUid)) pid ??= p;
    if (pid === undefined) return { unreachable: `its launcher monitor is not running in launcher Pod ${pod.metadata?.name ?? podUid}` };
    const view = podDaemonView(pod.spec?.containers.find((c) => c.name === 'compute')?.args ?? [], pid);
    if ('unreachable' in view) return view;
    const root = `/proc/${pid}/root`;
    const socket = await resolveInRoot(root, view.socket.slice(root.length));
    return { libvirtUri: `qemu+unix:///session?socket=${socket}`, vmiDisksDir: view.vmiDisksDir };
  }

  /** Removes the socket directory of a Pod that is gone. */
  async removePod(podUid: string): Promise<void> {
    if (POD_UID.test(podUid)) await rm(join(this.socketDir, podUid), { recursive: true, force: true });
  }

  /** Removes socket directories whose Pod uid `keep` does not hold; returns them. */
  async sweep(keep: () => ReadonlySet<string>): Promise<string[]> {
    const entries = (await readdir(this.socketDir).catch(() => [] as string[])).filter((e) => POD_UID.test(e));
    const kept = keep();
    const gone = entries.filter((e) => !kept.has(e));
    for (const e of gone) await rm(join(this.socketDir, e), { recursive: true, force: true });
    return gone;
  }
}
