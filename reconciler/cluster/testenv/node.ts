import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRootOf, goAvailable, runBuildScript } from './binaries.js';
import { readControlPlane, type ControlPlaneInfo } from './control-plane.js';
import { renderKubeconfig } from './credentials.js';
import {
  cgroupHierarchies,
  pidsInCgroup,
  recordHostState,
  removeCgroups,
  restoreHostState,
  unmountUnder,
  type HostState,
} from './host-state.js';
import {
  checkNodeName,
  containerdArgs,
  kubeletArgs,
  NODE_PROCESSES,
  nodeLayoutOf,
  renderCniConflist,
  renderContainerdConfig,
  renderHostsToml,
  renderKubeletConfig,
  renderRegistryConfig,
  type KubeletSettings,
  type NodeLayout,
  type NodeProcess,
} from './node-config.js';
import { freePorts } from './ports.js';
import { httpGet } from './probe.js';
import { isAlive, isOurs, killOnExit, liveByPidFile, readPid, spawnDetached, stopProcess, tailOf } from './processes.js';
import { cacheRoot, defaultBinDir, defaultContainerdDir, defaultNodeImagesDir, readContainerdVersion, TOOLS_KUBE_DIR } from './versions.js';

/**
 * A real node for the testenv: containerd v2 (+ runc, CNI bridge/host-local/portmap/loopback)
 * and a kubelet of the control plane's version, registered against a running testenv control
 * plane, with a small plain-HTTP registry of its own holding the locally built pause image.
 * One such node per machine (the kubelet and CNI use some fixed host paths and sysctls).
 * Everything it changes on the host is recorded in DIR/host-state.json first and undone by
 * stopNode(DIR), also after a crash. See README.md.
 */

export interface StartNodeOptions {
  /** The control plane: its dir or its info (startControlPlane's result). */
  readonly controlPlane: string | ControlPlaneInfo;
  /** Node state dir; default `<control plane dir>/node`. */
  readonly dir?: string;
  /**
   * Node name (`--hostname-override`); default defaultNodeName(). It must resolve to a
   * loopback address: the API server dials the kubelet (on 127.0.0.1) by this name.
   */
  readonly name?: string;
  /** Taints the node registers with (keep other tests' Pods off it). */
  readonly taints?: KubeletSettings['taints'];
  /** Pod subnet of the CNI bridge; default 10.89.0.0/24. */
  readonly subnet?: string;
  /** Keep the processes when this Node process exits (`virtops testenv up --kubelet`). */
  readonly detached?: boolean;
  readonly onProgress?: (line: string) => void;
  /** Until the Node is Ready; default 180 s. */
  readonly readyTimeoutMs?: number;
}

/** A running node as seen from outside; DIR/node.json. */
export interface NodeInfo {
  readonly dir: string;
  readonly name: string;
  readonly controlPlaneDir: string;
  /** `127.0.0.1:PORT` of the node's registry (plain HTTP; containerd pulls from it). */
  readonly registryHost: string;
  /** Images pushed there at start: the sandbox image and a busybox for tests. */
  readonly images: { readonly pause: string; readonly busybox: string };
  readonly kubeletPort: number;
  readonly cgroupRoot: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly kubernetesVersion: string;
  readonly containerdVersion: string;
  readonly containerdSocket: string;
  readonly commands: Readonly<Record<NodeProcess, { readonly binary: string; readonly args: readonly string[]; readonly env?: Record<string, string> }>>;
}

export interface KubeletNode extends NodeInfo {
  /** Stops every process, removes containers, mounts, cgroups, links, iptables chains, restores sysctls, deletes the Node object. */
  stop(): Promise<void>;
  /** Copies an OCI layout (tag `latest`) to `<registryHost>/<repo>:latest`; returns the reference. */
  pushImage(layout: string, repo: string): Promise<string>;
  /**
   * Lets containerd pull from another plain-HTTP registry `host:port` (e.g. one Pods reach
   * through the CNI bridge); takes effect on the next pull, no restart. Removed with the node dir.
   */
  trustRegistry(host: string): void;
  pids(): Partial<Record<NodeProcess, number>>;
  /**
   * Stops the kubelet (SIGTERM; containers keep running under their shims, as on a real node)
   * and starts it again; resolves once it has posted the Node's status anew.
   */
  restartKubelet(timeoutMs?: number): Promise<void>;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const markerOf = (dir: string) => `${dir}/`;
/** Names the one node dir of this machine, so a second start (or a crashed node) is found. */
export const HOST_NODE_MARKER = '/run/virtops-testenv-node';
const BRIDGE = 'virtops-cni0';
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export async function startNode(options: StartNodeOptions): Promise<KubeletNode> {
  const cp = typeof options.controlPlane === 'string' ? readControlPlane(options.controlPlane) : options.controlPlane;
  if (cp === undefined) throw new Error(`controlPlane: no testenv.json in ${String(options.controlPlane)}; start one first (virtops testenv up --dir DIR)`);
  const name = options.name ?? (await defaultNodeName());
  const subnet = options.subnet ?? '10.89.0.0/24';
  const errors = [checkNodeName(name), /^\d+\.\d+\.\d+\.\d+\/(1[6-9]|2[0-8])$/.test(subnet) ? undefined : `subnet: "${subnet}" must be an IPv4 CIDR /16../28 such as 10.89.0.0/24`];
  if (process.getuid?.() !== 0) errors.push('the kubelet node needs root (cgroups, mounts, iptables); run as root');
  const problems = errors.filter((e): e is string => e !== undefined);
  if (problems.length > 0) throw new Error(`startNode: ${problems.join('; ')}`);
  const resolved = await lookup(name).catch(() => undefined);
  if (resolved === undefined || !isLoopback(resolved.address)) {
    throw new Error(
      `startNode: name: "${name}" ${resolved ? `resolves to ${resolved.address}, not a loopback address` : 'does not resolve'}; the API server reaches the kubelet (listening on 127.0.0.1) by this name: add "127.0.0.1 ${name}" to /etc/hosts or omit name (default: this machine's hostname)`,
    );
  }
  const dir = absDir(options.dir ?? join(cp.dir, 'node'));
  const progress = options.onProgress ?? (() => {});

  // One node per machine: a running one is an error, a crashed one is cleaned up first.
  const other = existsSync(HOST_NODE_MARKER) ? readFileSync(HOST_NODE_MARKER, 'utf8').trim() : undefined;
  if (other !== undefined && other !== '') {
    if (runningNodeProcesses(other).length > 0) {
      throw new Error(`a kubelet node already runs on this machine (dir ${other}); stop it first: virtops testenv down --dir ${other} (or stopNode)`);
    }
    progress(`cleaning up a node that did not stop cleanly (${other})`);
    await stopNode(other);
  }
  if (existsSync(nodeLayoutOf(dir).hostState)) await stopNode(dir);

  const bins = await ensureNodeArtifacts(cp.binDir, progress);
  const l = nodeLayoutOf(dir);
  for (const p of [l.containerdRoot, l.containerdState, l.kubeletRoot, l.podLogs, l.logs, join(dir, 'cni'), join(dir, 'registry'), l.certsDir]) rmSync(p, { recursive: true, force: true });
  for (const p of [l.logs, l.containerdRoot, l.cniConfDir, l.cniIpamDir, l.podLogs, l.kubeletRoot, l.registryData]) mkdirSync(p, { recursive: true, mode: 0o700 });

  const cgroupRoot = `/virtops-testenv-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
  // Record before changing anything: this is what `down` undoes, even after a crash.
  const state = recordHostState(dir, { cgroupRoot, bridge: BRIDGE });
  writeFileSync(l.hostState, JSON.stringify(state, null, 2) + '\n');
  writeFileSync(HOST_NODE_MARKER, `${dir}\n`);
  if (!options.detached) killedOnExit.add(dir);

  try {
    makeCgroupRoot(cgroupRoot);
    const [registryPort, kubeletPort, healthzPort] = await freePorts(3);
    const registryHost = `127.0.0.1:${registryPort}`;
    const tag = bins.imagesKey;
    const images = { pause: `${registryHost}/virtops/pause:${tag}`, busybox: `${registryHost}/virtops/busybox:${tag}` };
    const nodeUser = cp.users.find((u) => u.name === `system:node:${name}`);
    writeFileSync(l.containerdConfig, renderContainerdConfig(l, { sandboxImage: images.pause }));
    mkdirSync(join(l.certsDir, registryHost), { recursive: true });
    writeFileSync(join(l.certsDir, registryHost, 'hosts.toml'), renderHostsToml(registryHost));
    writeFileSync(join(l.cniConfDir, '10-virtops-testenv.conflist'), renderCniConflist(l, { bridge: BRIDGE, subnet }));
    writeFileSync(l.kubeletConfig, renderKubeletConfig(l, { port: kubeletPort!, healthzPort: healthzPort!, cgroupRoot, ...(options.taints ? { taints: options.taints } : {}) }));
    // The node's own identity when the control plane was started with it (Node authorizer
    // applies), else the admin's.
    writeFileSync(
      l.kubeletKubeconfig,
      renderKubeconfig({ server: cp.apiServerUrl, caFile: cp.caFile, user: nodeUser?.name ?? 'admin', token: nodeUser?.token ?? cp.token }),
      { mode: 0o600 },
    );
    writeFileSync(l.registryConfig, renderRegistryConfig(l, registryHost));

    const info: NodeInfo = {
      dir,
      name,
      controlPlaneDir: cp.dir,
      registryHost,
      images,
      kubeletPort: kubeletPort!,
      cgroupRoot,
      bridge: BRIDGE,
      subnet,
      kubernetesVersion: cp.kubernetesVersion,
      containerdVersion: bins.containerdVersion,
      containerdSocket: l.containerdSocket,
      commands: {
        registry: { binary: 'docker-registry', args: ['serve', l.registryConfig] },
        // The shim is looked up on PATH.
        containerd: { binary: bins.containerd, args: containerdArgs(l), env: { PATH: `${bins.containerdDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` } },
        kubelet: { binary: bins.kubelet, args: kubeletArgs(l, { nodeName: name }) },
      },
    };
    writeFileSync(l.state, JSON.stringify(info, null, 2) + '\n');

    const started = Date.now();
    progress('starting the node registry ...');
    await startProcess(info, 'registry', async () => (await httpGet(`http://${registryHost}/v2/`))?.status === 200, 15_000);
    await pushLayout(join(bins.imagesDir, 'pause'), images.pause);
    await pushLayout(join(bins.imagesDir, 'busybox'), images.busybox);
    progress('starting containerd ...');
    await startProcess(info, 'containerd', async () => existsSync(l.containerdSocket), 30_000);
    progress(`starting kubelet ${cp.kubernetesVersion} as node ${name} ...`);
    await startProcess(info, 'kubelet', () => nodeReady(cp, name), options.readyTimeoutMs ?? 180_000);
    progress(`node ${name} Ready in ${Date.now() - started} ms (containerd ${bins.containerdVersion}, registry ${registryHost})`);
    return handleFor(info, cp);
  } catch (err) {
    await stopNode(dir).catch(() => {});
    throw err;
  }
}

/**
 * This machine's hostname when it resolves to a loopback address (the API server dials the
 * kubelet by it), else `localhost`.
 */
export async function defaultNodeName(): Promise<string> {
  const name = hostname().toLowerCase();
  const resolved = await lookup(name).catch(() => undefined);
  return resolved !== undefined && isLoopback(resolved.address) && checkNodeName(name) === undefined ? name : 'localhost';
}

/** Handle on a node started by another process (e.g. `virtops testenv up --kubelet`). */
export function attachNode(dir: string): KubeletNode {
  const info = readNode(dir);
  if (info === undefined) throw new Error(`${resolve(dir)}: no node.json; start a node with virtops testenv up --dir DIR --kubelet`);
  const cp = readControlPlane(info.controlPlaneDir);
  if (cp === undefined) throw new Error(`${info.controlPlaneDir}: the node's control plane has no testenv.json`);
  return handleFor(info, cp);
}

export function readNode(dir: string): NodeInfo | undefined {
  const l = nodeLayoutOf(resolve(dir));
  return existsSync(l.state) ? (JSON.parse(readFileSync(l.state, 'utf8')) as NodeInfo) : undefined;
}

/** Node processes of DIR that are alive. */
export function runningNodeProcesses(dir: string): NodeProcess[] {
  const abs = resolve(dir);
  return liveByPidFile(NODE_PROCESSES, nodeLayoutOf(abs).pidFile, markerOf(abs));
}

/**
 * Stops the node in DIR and undoes what it did to the host (see host-state.ts): the kubelet,
 * every container (processes in the node's cgroup), containerd and its shims, the registry;
 * then mounts under DIR, the cgroups, the bridge, iptables chains, host dirs it created, the
 * sysctls. Idempotent; works from the record alone (after a crash). Throws listing what it
 * could not undo.
 */
export async function stopNode(dir: string): Promise<void> {
  const abs = resolve(dir);
  const l = nodeLayoutOf(abs);
  const state = existsSync(l.hostState) ? (JSON.parse(readFileSync(l.hostState, 'utf8')) as HostState) : undefined;
  await stopProcess(l.pidFile('kubelet'), markerOf(abs), { graceMs: 10_000 });
  if (state !== undefined) await killAll(() => pidsInCgroup(state.cgroupRoot), 'containers');
  await stopProcess(l.pidFile('containerd'), markerOf(abs), { graceMs: 5_000 });
  await killAll(() => shimPids(l), 'containerd shims');
  await stopProcess(l.pidFile('registry'), markerOf(abs), { graceMs: 5_000 });
  const problems: string[] = [];
  const mounts = unmountUnder(abs);
  if (mounts.length > 0) problems.push(`still mounted: ${mounts.join(', ')}`);
  if (state !== undefined) {
    const cgroups = removeCgroups(state.cgroupRoot);
    if (cgroups.length > 0) problems.push(`cgroups left: ${cgroups.join(', ')}`);
    problems.push(...restoreHostState(state));
  }
  // What containerd and the kubelet kept (snapshots, pod dirs) goes; logs and configs stay.
  for (const p of [l.containerdRoot, l.containerdState, l.runcRoot, l.kubeletRoot, join(abs, 'cni', 'ipam'), l.registryData]) rmSync(p, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`stopNode ${abs}: ${problems.join('; ')}`);
  rmSync(l.hostState, { force: true });
  if (existsSync(HOST_NODE_MARKER) && readFileSync(HOST_NODE_MARKER, 'utf8').trim() === abs) rmSync(HOST_NODE_MARKER, { force: true });
  killedOnExit.delete(abs);
}

function handleFor(info: NodeInfo, cp: ControlPlaneInfo): KubeletNode {
  const l = nodeLayoutOf(info.dir);
  return {
    ...info,
    stop: async () => {
      await stopNode(info.dir);
      // Best effort: the API server may be gone already.
      await httpGet(`${cp.apiServerUrl}/api/v1/nodes/${info.name}`, { method: 'DELETE', ca: readFileSync(cp.caFile, 'utf8'), token: cp.token }).catch(() => undefined);
    },
    pushImage: async (layout, repo) => {
      const ref = `${info.registryHost}/${repo}:latest`;
      await pushLayout(layout, ref);
      return ref;
    },
    trustRegistry: (host) => {
      if (!/^[A-Za-z0-9.-]+:\d+$/.test(host)) throw new Error(`trustRegistry: "${host}" is not host:port, e.g. 10.89.0.1:5001`);
      mkdirSync(join(l.certsDir, host), { recursive: true });
      writeFileSync(join(l.certsDir, host, 'hosts.toml'), renderHostsToml(host));
    },
    restartKubelet: async (timeoutMs = 120_000) => {
      await stopProcess(l.pidFile('kubelet'), markerOf(info.dir), { graceMs: 10_000 });
      const since = Math.floor(Date.now() / 1000) * 1000;
      await startProcess(info, 'kubelet', () => nodeReady(cp, info.name, since), timeoutMs);
    },
    pids: () => {
      const out: Partial<Record<NodeProcess, number>> = {};
      for (const p of runningNodeProcesses(info.dir)) out[p] = readPid(l.pidFile(p));
      return out;
    },
  };
}

interface NodeArtifacts {
  readonly kubelet: string;
  readonly containerd: string;
  readonly containerdDir: string;
  readonly containerdVersion: string;
  readonly imagesDir: string;
  /** Image tag: a digest of the images' build key. */
  readonly imagesKey: string;
}

const executable = (p: string) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** kubelet + containerd (tools/kube/build.sh) and the pause/busybox images, built when missing. */
export async function ensureNodeArtifacts(binDir: string, progress: (line: string) => void = () => {}): Promise<NodeArtifacts> {
  const containerdVersion = readContainerdVersion();
  // A control plane run from a custom binDir (not <cache>/kube/<versions>) gets its kubelet
  // from there if it holds one, else from the default cache, as containerd and the images.
  let cache: string;
  let kubelet = join(binDir, 'kubelet');
  try {
    cache = cacheRootOf(binDir);
  } catch {
    cache = cacheRoot();
    if (!executable(kubelet)) kubelet = join(defaultBinDir(), 'kubelet');
  }
  const containerdDir = defaultContainerdDir(containerdVersion, { VIRTOPS_CACHE: cache });
  const containerd = join(containerdDir, 'containerd');
  if (![kubelet, containerd, join(containerdDir, 'containerd-shim-runc-v2')].every(executable)) {
    if (!goAvailable()) throw new Error(`${kubelet} or ${containerd} is missing and Go is not installed: install Go >= 1.26 and run bash tools/kube/build.sh`);
    await runBuildScript(join(TOOLS_KUBE_DIR, 'build.sh'), cache, progress);
  }
  const imagesDir = defaultNodeImagesDir({ VIRTOPS_CACHE: cache });
  if (!existsSync(join(imagesDir, 'key'))) await runBuildScript(join(REPO_ROOT, 'scripts', 'build-pause-image.sh'), cache, progress);
  const imagesKey = createHash('sha256').update(readFileSync(join(imagesDir, 'key'), 'utf8')).digest('hex').slice(0, 12);
  return { kubelet, containerd, containerdDir, containerdVersion, imagesDir, imagesKey };
}

async function pushLayout(layout: string, ref: string): Promise<void> {
  const r = spawnSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${ref}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skopeo copy ${layout} → ${ref} failed: ${r.stderr?.trim() ?? r.error?.message}`);
}

async function startProcess(info: NodeInfo, p: NodeProcess, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const l = nodeLayoutOf(info.dir);
  const { binary, args, env } = info.commands[p];
  const pid = spawnDetached({ binary, args, logFile: l.log(p), pidFile: l.pidFile(p), ...(env ? { env: { ...process.env, ...env } } : {}) });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isOurs(pid, markerOf(info.dir))) throw new Error(`${p} exited during startup; last log lines (${l.log(p)}):\n${tailOf(l.log(p))}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${p} not ready after ${timeoutMs} ms; last log lines (${l.log(p)}):\n${tailOf(l.log(p))}`);
    await sleep(250);
  }
}

/** The Node is Ready (and, with `since`, its Ready condition was posted at or after it). */
async function nodeReady(cp: ControlPlaneInfo, name: string, since?: number): Promise<boolean> {
  const res = await httpGet(`${cp.apiServerUrl}/api/v1/nodes/${name}`, { ca: readFileSync(cp.caFile, 'utf8'), token: cp.token });
  if (res?.status !== 200) return false;
  const node = JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string; lastHeartbeatTime?: string }[] } };
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
  if (!ready) return false;
  return since === undefined || (ready.lastHeartbeatTime !== undefined && Date.parse(ready.lastHeartbeatTime) >= since);
}

/** The v1 cgroup the node's Pods live under; cpuset needs cpus/mems before anything can join. */
function makeCgroupRoot(cgroupRoot: string): void {
  for (const h of cgroupHierarchies()) {
    const path = join(h, cgroupRoot);
    mkdirSync(path, { recursive: true });
    if (h.endsWith('/cpuset')) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(path, f), readFileSync(join(h, f), 'utf8'));
    }
  }
}

/** containerd-shim-runc-v2 processes of this node: their -address is the node's socket. */
function shimPids(l: NodeLayout): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(l.containerdSocket)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

/** SIGKILL until none is left (processes may fork meanwhile); throws after 15 s. */
async function killAll(list: () => number[], what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pids = list().filter((p) => p !== process.pid && isAlive(p));
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${what} survived SIGKILL: ${pids.join(', ')}`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(100);
  }
}

function absDir(dir: string): string {
  if (typeof dir !== 'string' || dir.trim() === '') throw new Error('dir: required; pass the node state directory');
  const abs = (isAbsolute(dir) ? dir : resolve(dir)).replace(/\/+$/, '');
  if (abs === '') throw new Error('dir: "/" is not allowed; pass a dedicated directory');
  mkdirSync(abs, { recursive: true });
  return abs;
}

// A test worker that dies without stop() leaves no kubelet behind: SIGKILL the processes and
// their containers at exit (or on a signal). The host state is then restored by the next startNode or
// `virtops testenv down` (the record stays in DIR and the host marker names DIR).
const killedOnExit = killOnExit((d) => {
  const l = nodeLayoutOf(d);
  const state = existsSync(l.hostState) ? (JSON.parse(readFileSync(l.hostState, 'utf8')) as HostState) : undefined;
  const pids = [...NODE_PROCESSES.map((p) => readPid(l.pidFile(p))).filter((p): p is number => p !== undefined && isOurs(p, markerOf(d))), ...shimPids(l), ...(state ? pidsInCgroup(state.cgroupRoot) : [])];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
