/**
 * Wiring for `virtops agent`: flags → validated config → the node agent and its helpers
 * (DataVolume imports, snapshots, the console endpoint). Apart from run.ts so the agent
 * process loads none of the controller's modules (git, apply, the VM controller, schema
 * validation: ~2 MiB of heap).
 */
import { mkdir, statfs } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { VirtualMachineInstance } from '../../api/kubevirt.js';
import { ImageStore } from '../../launcher/volumes/image-store.js';
import { DEFAULT_NODE_SOCKET_DIR, LAUNCHER_USER } from '../../synth/launcher-pod.js';
import { NodeAgent, type AgentOptions } from '../agent/agent.js';
import { durationFlag } from '../agent/duration-flag.js';
import { baseEnv, hostFlags, podsDir, validateHostFlags, type HostEmulation } from '../agent/host-config.js';
import { LibvirtDomains } from '../standalone/libvirt-domains.js';
import { ClusterAgent } from './agent.js';
import { startConsoleServer, type ConsoleServer } from './console-server.js';
import { DataVolumeImporter } from './datavolumes.js';
import { HttpKubeClient, type KubeClient, loadKubeConfig } from './kube.js';
import { KubeletLaunchers, MAX_SOCKET_DIR_BYTES } from './kubelet-launchers.js';
import { SnapshotAgent } from './snapshots.js';

export const CLI_BIN = fileURLToPath(new URL('../../cli/bin.js', import.meta.url));

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

// ---- flags ---------------------------------------------------------------------------------

export interface RawAgentFlags {
  node?: string;
  kubeconfig?: string;
  processRuntime?: boolean;
  stateDir?: string;
  emulation?: string;
  libvirtUri?: string;
  insecureRegistry?: string[];
  interval?: string;
  /** The console endpoint (kubelet-style; process runtime only): all three files turn it on. */
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  clientCaFile?: string;
  address?: string;
  port?: string;
  nodeIp?: string;
  /** Beside a kubelet: the launcher socket directory (synth's nodeSocketDir). */
  launcherSocketDir?: string;
}

/** The console server of a process-runtime agent (see console-server.ts). */
export interface AgentConsoleConfig {
  tlsCertFile: string;
  tlsKeyFile: string;
  clientCaFile: string;
  address: string;
  port: number;
  /** The Node's InternalIP: where the API server connects (it refuses loopback addresses). */
  nodeIp: string;
}

/** A global unicast IPv4 address of this host (the API server proxies to no other kind). */
export function defaultNodeIp(ifaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string | undefined {
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.')) return a.address;
  }
  return undefined;
}

export interface AgentConfig {
  node: string;
  kubeconfig?: string;
  processRuntime: boolean;
  stateDir: string;
  emulation: HostEmulation;
  libvirtUri: string;
  insecureRegistries: string[];
  intervalMs: number;
  console?: AgentConsoleConfig;
  /** Beside a kubelet (no process runtime): where launcher Pods publish their sockets; default DEFAULT_NODE_SOCKET_DIR. */
  launcherSocketDir?: string;
}

function validateConsoleFlags(raw: RawAgentFlags, errors: string[]): AgentConsoleConfig | undefined {
  const files = { '--tls-cert-file': raw.tlsCertFile, '--tls-private-key-file': raw.tlsPrivateKeyFile, '--client-ca-file': raw.clientCaFile };
  const given = Object.entries(files).filter(([, v]) => v);
  if (given.length === 0) return undefined;
  if (given.length < 3) {
    errors.push(`the console endpoint needs all of ${Object.keys(files).join(', ')}; missing ${Object.entries(files).filter(([, v]) => !v).map(([k]) => k).join(', ')}`);
    return undefined;
  }
  if (raw.processRuntime !== true) errors.push('--tls-cert-file/--client-ca-file (the console endpoint) need --process-runtime: with a kubelet, the Node\'s port is the kubelet\'s');
  const port = Number(raw.port ?? '10250');
  if (!Number.isInteger(port) || port < 0 || port > 65535) errors.push(`--port "${raw.port}" is not a port number (0-65535; 0 picks a free one)`);
  const nodeIp = raw.nodeIp ?? defaultNodeIp();
  if (!nodeIp) errors.push('--node-ip is required: this host has no non-loopback IPv4 address, and the API server proxies to no loopback address');
  else if (!isIPv4(nodeIp) || nodeIp.startsWith('127.') || nodeIp.startsWith('169.254.') || nodeIp === '0.0.0.0') errors.push(`--node-ip "${nodeIp}" must be a non-loopback, non-link-local IPv4 address the API server can reach`);
  return { tlsCertFile: raw.tlsCertFile!, tlsKeyFile: raw.tlsPrivateKeyFile!, clientCaFile: raw.clientCaFile!, address: raw.address ?? '0.0.0.0', port, nodeIp: nodeIp ?? '' };
}

export function validateAgentFlags(raw: RawAgentFlags): { ok: true; config: AgentConfig } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (!raw.node) errors.push('--node is required: the name of this node (a DNS subdomain, e.g. the host name)');
  else if (!DNS_SUBDOMAIN.test(raw.node)) errors.push(`--node "${raw.node}" is not a valid node name: use lower-case letters, digits, '-' and '.'`);
  const host = validateHostFlags(raw, errors);
  const intervalMs = durationFlag(raw.interval ?? '1m', '--interval', errors, { min: 200 });
  const consoleConfig = validateConsoleFlags(raw, errors);
  const launcherSocketDir = raw.launcherSocketDir ?? DEFAULT_NODE_SOCKET_DIR;
  if (raw.launcherSocketDir !== undefined && raw.processRuntime === true) errors.push('--launcher-socket-dir is for the agent beside a kubelet: drop it with --process-runtime (launchers then live under --state-dir)');
  if (!isAbsolute(launcherSocketDir)) errors.push(`--launcher-socket-dir "${launcherSocketDir}" is not an absolute path: pass the directory synth's nodeSocketDir names (default ${DEFAULT_NODE_SOCKET_DIR})`);
  else if (Buffer.byteLength(launcherSocketDir.replace(/\/+$/, '')) > MAX_SOCKET_DIR_BYTES) errors.push(`--launcher-socket-dir "${launcherSocketDir}" is over ${MAX_SOCKET_DIR_BYTES} bytes: the sockets under it (<dir>/<pod uid>/launcher-sock) would pass the 107-byte unix socket limit; use a shorter path (and the same in synth's nodeSocketDir)`);
  if (errors.length || !host || intervalMs === undefined) return { ok: false, errors };
  return {
    ok: true,
    config: {
      node: raw.node!, ...(raw.kubeconfig ? { kubeconfig: raw.kubeconfig } : {}), processRuntime: raw.processRuntime === true,
      ...host, intervalMs, ...(consoleConfig ? { console: consoleConfig } : {}), launcherSocketDir: launcherSocketDir.replace(/(.)\/+$/, '$1'),
    },
  };
}

// ---- agent ---------------------------------------------------------------------------------

export interface AgentHandle {
  client: KubeClient;
  agent: ClusterAgent;
  /** The console endpoint, when configured. */
  console?: ConsoleServer;
  stop(): Promise<void>;
}

export async function runAgent(
  config: AgentConfig,
  log: Logger,
  opts: {
    client?: KubeClient;
    capacity?: { cpus?: number; memoryBytes?: number; pods?: number; ephemeralStorageBytes?: number };
    /** reconciler/agent's launcher runtime (default: one process per launcher, as the Pod says). */
    launcherRuntime?: AgentOptions['runtime'];
  } = {},
): Promise<AgentHandle> {
  const client = opts.client ?? new HttpKubeClient(loadKubeConfig(config.kubeconfig));
  const domains = new LibvirtDomains(config.libvirtUri);
  // Beside a kubelet: the kubelet runs the launchers; they are found through the socket dir.
  const kubelet = config.processRuntime ? undefined : new KubeletLaunchers(config.launcherSocketDir ?? DEFAULT_NODE_SOCKET_DIR, log.child({ component: 'launchers' }));
  const runtime = kubelet ?? new NodeAgent({
    podsDir: podsDir(config.stateDir),
    virtopsCommand: [process.execPath, CLI_BIN],
    hostFlags: hostFlags(config),
    baseEnv: baseEnv(),
    janitor: domains,
    log: log.child({ component: 'runtime' }),
    ...(opts.launcherRuntime ? { runtime: opts.launcherRuntime } : {}),
  });
  // The filesystem the launcher Pods' emptyDirs live on is this node's ephemeral storage.
  await mkdir(config.stateDir, { recursive: true });
  const fs = await statfs(config.stateDir);
  const agent = new ClusterAgent(client, {
    nodeName: config.node, processRuntime: config.processRuntime, runtime, log: log.child({ component: 'agent', node: config.node }), ...(kubelet ? { sockets: kubelet } : {}),
    resyncMs: config.intervalMs, capacity: { ephemeralStorageBytes: fs.blocks * fs.bsize, ...(opts.capacity ?? {}) },
  });
  await agent.start();
  // DataVolumes are imported into this node's claims, `<state-dir>/pvcs/<ns>/<claim>/` (datavolumes.ts):
  // the launcher reads them there (process runtime, --pvc-dir), or the kubelet bind-mounts that
  // dir (the claim's `local` PV) into the launcher Pod, where QEMU runs as the Pod's group.
  const importer = new DataVolumeImporter(client, {
    nodeName: config.node, pvcDir: join(config.stateDir, 'pvcs'), log: log.child({ component: 'datavolumes' }), probeMs: Math.max(config.intervalMs, 2000),
    imageStore: new ImageStore({ dir: join(config.stateDir, 'images'), insecureRegistries: config.insecureRegistries }),
    claimsInUse: () => claimsOnNode(agent.vmis.list() as unknown as VirtualMachineInstance[], config.node),
    ...(kubelet ? { claimGroup: LAUNCHER_USER } : {}),
  });
  importer.start();
  // Snapshots and restores of the VMs whose claims this node holds (snapshots.ts). Beside a
  // kubelet a running domain is under its launcher Pod's own libvirt daemon: reached there.
  const snapshots = new SnapshotAgent(client, {
    nodeName: config.node, stateDir: config.stateDir, pvcDir: join(config.stateDir, 'pvcs'), libvirtUri: config.libvirtUri,
    log: log.child({ component: 'snapshots' }), probeMs: Math.max(config.intervalMs, 2000),
    vmis: () => agent.vmis.list() as unknown as VirtualMachineInstance[],
    claimsInUse: () => claimsOnNode(agent.vmis.list() as unknown as VirtualMachineInstance[], config.node),
    ...(kubelet ? { claimGroup: LAUNCHER_USER } : {}),
    ...(kubelet ? { launcherPodDaemon: (vmi: VirtualMachineInstance) => kubelet.podDaemon(vmi.metadata.uid ?? '', agent.launcherPod(vmi.metadata.uid ?? '')) } : {}),
  });
  snapshots.start();
  let consoleServer: ConsoleServer | undefined;
  const c = config.console;
  if (c) {
    consoleServer = await startConsoleServer({
      address: c.address, port: c.port, tlsCertFile: c.tlsCertFile, tlsKeyFile: c.tlsKeyFile, clientCaFile: c.clientCaFile,
      lookup: (ns, name) => agent.consoleSocket(ns, name), log: log.child({ component: 'console' }),
    });
    // Where the API server's nodes/<node>/proxy connects: InternalIP only (a Hostname address
    // would be preferred and would have to resolve), and the kubelet port.
    await client.patchNodeStatus(config.node, { addresses: [{ type: 'InternalIP', address: c.nodeIp }], daemonEndpoints: { kubeletEndpoint: { Port: consoleServer.port } } });
  }
  log.info({ node: config.node, processRuntime: config.processRuntime, stateDir: config.stateDir, libvirtUri: config.libvirtUri, consolePort: consoleServer?.port }, 'virtops agent started');
  return {
    client, agent, ...(consoleServer ? { console: consoleServer } : {}),
    stop: async () => {
      await consoleServer?.close();
      await importer.stop();
      await snapshots.stop();
      await agent.stop();
      await domains.close();
    },
  };
}

/** `ns/claim` of each claim a VMI on `node` uses (pure). */
export function claimsOnNode(vmis: readonly VirtualMachineInstance[], node: string): Set<string> {
  const out = new Set<string>();
  for (const vmi of vmis) {
    if (vmi.status?.nodeName !== node) continue;
    for (const v of vmi.spec.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name ?? v.ephemeral?.persistentVolumeClaim?.claimName;
      if (claim) out.add(`${vmi.metadata.namespace ?? 'default'}/${claim}`);
    }
  }
  return out;
}
