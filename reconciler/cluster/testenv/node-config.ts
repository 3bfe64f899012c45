import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * Configuration files of the testenv's real node (containerd + kubelet + CNI), rendered from
 * a layout and a few settings. Pure: no I/O; node.ts writes them.
 */

/** Where one node keeps everything it can keep private (all under its own directory). */
export function nodeLayoutOf(dir: string) {
  const containerd = join(dir, 'containerd');
  return {
    dir,
    /** Undo journal: what the node changed on the host, written before each change. */
    hostState: join(dir, 'host-state.json'),
    /** What a running node looks like (NodeInfo). */
    state: join(dir, 'node.json'),
    logs: join(dir, 'logs'),
    log: (p: NodeProcess) => join(dir, 'logs', `${p}.log`),
    pidFile: (p: NodeProcess) => join(dir, `${p}.pid`),
    containerdConfig: join(containerd, 'config.toml'),
    containerdRoot: join(containerd, 'root'),
    containerdState: join(containerd, 'state'),
    containerdSocket: join(containerd, 'containerd.sock'),
    certsDir: join(containerd, 'certs.d'),
    runcRoot: join(containerd, 'runc'),
    cniConfDir: join(dir, 'cni', 'net.d'),
    cniIpamDir: join(dir, 'cni', 'ipam'),
    kubeletRoot: join(dir, 'kubelet'),
    kubeletConfig: join(dir, 'kubelet-config.yaml'),
    kubeletKubeconfig: join(dir, 'kubelet.kubeconfig'),
    podLogs: join(dir, 'pod-logs'),
    volumePluginDir: join(dir, 'kubelet', 'volume-plugins'),
    registryConfig: join(dir, 'registry', 'config.yml'),
    registryData: join(dir, 'registry', 'data'),
  };
}
export type NodeLayout = ReturnType<typeof nodeLayoutOf>;

/** The node's processes, in start order (stopped in reverse). */
export const NODE_PROCESSES = ['registry', 'containerd', 'kubelet'] as const;
export type NodeProcess = (typeof NODE_PROCESSES)[number];

/** Where Debian's containernetworking-plugins and runc put their binaries. */
export const CNI_BIN_DIR = '/usr/lib/cni';
export const RUNC_BINARY = '/usr/sbin/runc';

const toml = (s: string) => `'${s.replace(/'/g, '')}'`;

/**
 * containerd v2 (config version 3): private root/state/socket/runc root under the node dir,
 * cgroupfs (cgroup v1 hosts without systemd), oom_score_adj restricted (these machines lack
 * CAP_SYS_RESOURCE: runc fails to raise it otherwise), the sandbox image pinned to our locally
 * built pause image, registries configured only through certs.d (plain HTTP for the node's
 * registry), network namespaces mounted under the state dir (not /var/run/netns), and the
 * plugins that would write to fixed host paths (/opt/containerd, /var/run/nri) disabled.
 */
export function renderContainerdConfig(l: NodeLayout, o: { sandboxImage: string }): string {
  const images = "plugins.'io.containerd.cri.v1.images'";
  const runtime = "plugins.'io.containerd.cri.v1.runtime'";
  return [
    '# Written by virtops testenv (reconciler/cluster/testenv/node-config.ts).',
    'version = 3',
    `root = ${toml(l.containerdRoot)}`,
    `state = ${toml(l.containerdState)}`,
    "disabled_plugins = ['io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri']",
    '',
    '[grpc]',
    `  address = ${toml(l.containerdSocket)}`,
    '[ttrpc]',
    `  address = ${toml(`${l.containerdSocket}.ttrpc`)}`,
    '',
    `[${images}]`,
    "  snapshotter = 'overlayfs'",
    `[${images}.pinned_images]`,
    `  sandbox = ${toml(o.sandboxImage)}`,
    `[${images}.registry]`,
    `  config_path = ${toml(l.certsDir)}`,
    '',
    `[${runtime}]`,
    '  restrict_oom_score_adj = true',
    '  netns_mounts_under_state_dir = true',
    '  cdi_spec_dirs = []',
    `[${runtime}.containerd]`,
    "  default_runtime_name = 'runc'",
    `[${runtime}.containerd.runtimes.runc]`,
    "  runtime_type = 'io.containerd.runc.v2'",
    `[${runtime}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    `  BinaryName = ${toml(RUNC_BINARY)}`,
    `  Root = ${toml(l.runcRoot)}`,
    `[${runtime}.cni]`,
    `  bin_dirs = [${toml(CNI_BIN_DIR)}]`,
    `  conf_dir = ${toml(l.cniConfDir)}`,
    '  max_conf_num = 1',
    '',
    "[plugins.'io.containerd.grpc.v1.cri']",
    "  stream_server_address = '127.0.0.1'",
    "  stream_server_port = '0'",
    '',
  ].join('\n');
}

/** certs.d/<host>/hosts.toml: pull from a plain-HTTP registry (the node's own, on loopback). */
export function renderHostsToml(registryHost: string): string {
  return [
    `server = "http://${registryHost}"`,
    '',
    `[host."http://${registryHost}"]`,
    '  capabilities = ["pull", "resolve"]',
    '',
  ].join('\n');
}

export interface KubeletSettings {
  readonly port: number;
  readonly healthzPort: number;
  /** cgroup (in every v1 hierarchy) that holds all of this node's Pods. */
  readonly cgroupRoot: string;
  readonly taints?: readonly { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
}

/**
 * KubeletConfiguration for a test node: cgroup v1 allowed (these hosts have no unified
 * hierarchy), cgroupfs driver, every port on loopback, and **anonymous auth + AlwaysAllow**
 * on the kubelet API: the testenv API server has no kubelet client certificate. That is a test
 * node's setting, never a real one. Pod logs, volume plugins and the root dir stay under DIR.
 */
export function renderKubeletConfig(l: NodeLayout, s: KubeletSettings): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: s.cgroupRoot,
    cgroupsPerQOS: true,
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    address: '127.0.0.1',
    port: s.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: s.healthzPort,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false }, x509: {} },
    authorization: { mode: 'AlwaysAllow' },
    podLogsDir: l.podLogs,
    volumePluginDir: l.volumePluginDir,
    failSwapOn: false,
    // Never evict test Pods for a busy shared disk; image GC off for the same reason.
    evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    resolvConf: '/etc/resolv.conf',
    registerWithTaints: s.taints?.map((t) => ({ key: t.key, ...(t.value !== undefined ? { value: t.value } : {}), effect: t.effect })) ?? [],
    serializeImagePulls: false,
    // Faster status for tests (defaults: 5 min report, 10 s update).
    nodeStatusReportFrequency: '10s',
    syncFrequency: '10s',
  });
}

/** Command line of the kubelet (everything else is in the config file). */
export function kubeletArgs(l: NodeLayout, o: { nodeName: string }): string[] {
  return [
    `--config=${l.kubeletConfig}`,
    `--kubeconfig=${l.kubeletKubeconfig}`,
    `--root-dir=${l.kubeletRoot}`,
    `--cert-dir=${join(l.kubeletRoot, 'pki')}`,
    // The Node's Hostname address; the API server dials it (it must resolve to loopback, where
    // the kubelet listens). No --node-ip: the kubelet refuses a loopback one.
    `--hostname-override=${o.nodeName}`,
    '--v=2',
  ];
}

export function containerdArgs(l: NodeLayout): string[] {
  return ['--config', l.containerdConfig, '--log-level', 'info'];
}

/** One network: a bridge (gateway, masquerade, host-local IPAM kept under DIR) + portmap. */
export function renderCniConflist(l: NodeLayout, o: { bridge: string; subnet: string }): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'virtops-testenv',
        plugins: [
          {
            type: 'bridge',
            bridge: o.bridge,
            isGateway: true,
            ipMasq: true,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: o.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: l.cniIpamDir },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

export function renderRegistryConfig(l: NodeLayout, host: string): string {
  return ['version: 0.1', 'log: { level: error }', 'storage:', `  filesystem: { rootdirectory: ${l.registryData} }`, '  delete: { enabled: true }', `http: { addr: "${host}" }`, ''].join('\n');
}

/** Node names the kubelet accepts (a DNS-1123 subdomain). */
export function checkNodeName(name: string): string | undefined {
  if (name.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
    return `name: "${name}" is not a valid Node name (lower-case letters, digits, '-' and '.'); pass name: e.g. "kubelet-node"`;
  }
  return undefined;
}
