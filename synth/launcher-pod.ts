/**
 * Renders the launcher Pod of a VirtualMachine: the Pod that holds one VMI's resources and
 * runs its launcher, laid out the way KubeVirt's virt-controller lays out virt-launcher Pods
 * (name, labels, init containers, `compute` first, the shared emptyDirs and their mount
 * paths), with virtops' own launcher monitor as the `compute` command.
 *
 * The `compute` command is `virtops launcher-monitor` with flags built by launcher/flags.ts
 * (`buildLauncherArgs`, the one owner of the launcher command-line contract). What synth
 * chooses: the QEMU start deadline (240s, fixed: no jitter), the VMI name, namespace and
 * `$(VMI_UID)` (see below), KubeVirt's directories (PATHS), a grace period of the VMI's
 * plus 15 s, no hook sidecars, and the emulation mode.
 *
 * The VMI uid does not exist at synth time (the API server or the local store assigns it when
 * the VM starts). To keep dist/ stable, the Pod carries the placeholder label
 * `kubevirt.io/created-by: <VMI_UID_PLACEHOLDER>`; whoever creates the Pod from the VMI (the
 * controller, or the node agent in standalone mode) sets that label to the real uid. The
 * `VMI_UID` env var reads the label through the downward API, and kubelet expands `$(VMI_UID)`
 * in args; without a kubelet, `launcherArgv()` does the same expansion.
 *
 * The Pods in dist/ are *templates*: virtops' controller instantiates one per VMI (owned by
 * it, real uid) and never applies them as they are. A GitOps tool pointed at dist/ would
 * apply every object there, so each template carries `TEMPLATE_ANNOTATIONS`, which the tools
 * people run honour as "do not apply":
 * - `config.kubernetes.io/local-config: "true"`: kustomize (and kpt) drop such objects from
 *   their build output; Flux's kustomize-controller builds every path with kustomize
 *   (generating a kustomization.yaml when there is none), so Flux never applies them.
 * - `argocd.argoproj.io/hook: Skip`: Argo CD neither applies, diffs, prunes nor health-checks
 *   the object. (`compare-options: IgnoreExtraneous` would not help: it is for objects that
 *   are in the cluster but not in git.)
 * The controller strips both from the Pods it creates (reconciler/cluster/instances.ts).
 */
import { launcherGraceSeconds, launcherPodGraceSeconds, vmiGraceSeconds } from '../api/grace.js';
import type * as api from '../api/kubevirt.js';
import { expandVm, referencesInstancetype, resolverFor } from '../api/expand.js';
import { computeOverhead, guestMemoryBytes, vcpuCount, type Emulation, type OverheadBreakdown } from './overhead.js';
import type { Container, EnvVar, PodManifest, PodVolume, ResourceList, VolumeMount } from './pod-types.js';
import { formatBytes, parseQuantity } from './quantity.js';
import { buildLauncherArgs, launcherFlag, LAUNCHER_MONITOR_COMMAND, setLauncherFlag, type LauncherConfig, type LibvirtDaemon } from '../launcher/flags.js';
import { virtopsImage } from './image.js';
import { NODE_SOCKET_ENV } from '../launcher/monitor/node-socket.js';
import { declaredPodPorts } from '../launcher/convert/interfaces.js';

export const VMI_UID_PLACEHOLDER = 'vmi-uid-unassigned';
export const LABEL_APP = 'kubevirt.io';
export const LABEL_CREATED_BY = 'kubevirt.io/created-by';
export const LABEL_VM_NAME = 'vm.kubevirt.io/name';
export const ANNOTATION_DOMAIN = 'kubevirt.io/domain';
export const ANNOTATION_DEFAULT_CONTAINER = 'kubectl.kubernetes.io/default-container';
export const ANNOTATION_MEMORY_OVERHEAD = 'virtops.io/memory-overhead';
/** Marks a launcher Pod in dist/ as a template that GitOps tools must not apply (see above). */
export const TEMPLATE_ANNOTATIONS: Readonly<Record<string, string>> = {
  'config.kubernetes.io/local-config': 'true',
  'argocd.argoproj.io/hook': 'Skip',
};

/** Directories inside the compute container (the same paths KubeVirt uses). */
export const PATHS = {
  private: '/var/run/kubevirt-private',
  share: '/var/run/kubevirt',
  ephemeralDisks: '/var/run/kubevirt-ephemeral-disks',
  containerDisks: '/var/run/kubevirt/container-disks',
  libvirtRuntime: '/var/run/libvirt',
  sockets: '/var/run/kubevirt/sockets',
  hotplugDisks: '/var/run/kubevirt/hotplug-disks',
  /** Where volume containers expose container disks (same emptyDir as containerDisks). */
  containerDiskData: '/var/run/kubevirt-ephemeral-disks/container-disk-data',
  /** Filesystem PVCs and host disks are mounted under here, one directory per volume. */
  vmiDisks: '/var/run/kubevirt-private/vmi-disks',
  binShare: '/init/usr/bin',
} as const;

/** The launcher Pod's user and group (QEMU's, in the Pod; KubeVirt's `qemu` user). */
export const LAUNCHER_USER = 107;

export const DEFAULT_QEMU_TIMEOUT_SECONDS = 240;
/** KubeVirt's default CPU request for a VMI without one. */
export const DEFAULT_CPU_REQUEST = '100m';

export interface LauncherPodOptions {
  /**
   * Image of the `compute` and `container-disk-binary` containers: one image carries the
   * `virtops` CLI for the controller, the node agent and launchers (synth/image.ts).
   * @default virtopsImage(): localhost:5000/virtops:<version>
   */
  readonly launcherImage?: string;
  /** Real VMI uid, when rendering at run time. @default VMI_UID_PLACEHOLDER */
  readonly uid?: string;
  /** @default 'auto' */
  readonly emulation?: Emulation;
  /** @default 240 */
  readonly qemuTimeoutSeconds?: number;
  /**
   * Where the guest's libvirt daemon runs. `external` (default): the launcher connects to the
   * node's (qemu:///system), as the process-runtime agent runs it. `pod`: the compute
   * container runs its own session libvirtd (started by the launcher monitor), so QEMU lives
   * in the Pod's cgroup, as under a real kubelet (launcher/monitor/libvirt-daemon.ts).
   * @default 'external'
   */
  readonly libvirtDaemon?: LibvirtDaemon;
  /**
   * With `libvirtDaemon: 'pod'` (a real kubelet runs the Pod): the node directory (hostPath)
   * under which each launcher Pod gets `<pod uid>/` (the compute container's
   * NODE_SOCKET_MOUNT, through `subPathExpr`), where the launcher monitor publishes the
   * launcher's command socket for the node agent, as virt-handler finds virt-launcher through
   * its share dir. The node agent's `--launcher-socket-dir` must name the same directory.
   * @default DEFAULT_NODE_SOCKET_DIR
   */
  readonly nodeSocketDir?: string;
}

/** Where launcher Pods publish their command sockets on a kubelet node (see nodeSocketDir). */
export const DEFAULT_NODE_SOCKET_DIR = '/var/lib/virtops/launchers';
/** The compute container's view of its own `<nodeSocketDir>/<pod uid>/`. */
export const NODE_SOCKET_MOUNT = '/var/run/virtops/node';
export { NODE_SOCKET_ENV, NODE_SOCKET_NAME } from '../launcher/monitor/node-socket.js';

/** The session daemon's socket in the compute container (`libvirt-runtime` emptyDir = $XDG_RUNTIME_DIR/libvirt). */
export const POD_LIBVIRT_URI = `qemu+unix:///session?socket=${PATHS.libvirtRuntime}/libvirt-sock`;

const LAUNCHER_POD_PREFIX = 'virt-launcher-';
/** A Pod name is used as a DNS label (hostname, the kubelet's): KubeVirt keeps launcher Pod names within 63 characters. */
const MAX_POD_NAME = 63;

/**
 * `virt-launcher-<vm>`, plus `-<suffix>` for a Pod made for one VMI, cut to 63 characters
 * the way KubeVirt's generateName is: the VM name is shortened (and loses a trailing `-` or
 * `.`, which may not end a DNS label), the suffix is kept whole.
 */
export function launcherPodName(vmName: string, suffix?: string): string {
  const tail = suffix ? `-${suffix}` : '';
  const room = MAX_POD_NAME - LAUNCHER_POD_PREFIX.length - tail.length;
  const vm = vmName.length > room ? vmName.slice(0, room).replace(/[-.]+$/, '') : vmName;
  return `${LAUNCHER_POD_PREFIX}${vm}${tail}`;
}

/** The emptyDir volumes every launcher Pod has, in KubeVirt's order. */
export const LAUNCHER_EMPTY_DIRS = [
  'private', 'public', 'sockets', 'virt-bin-share-dir', 'libvirt-runtime', 'ephemeral-disks', 'container-disks', 'hotplug-disks',
] as const;

/**
 * `instancetypes`: the instancetype/preference manifests the VM may refer to (the app's). A
 * VM sized by one is rendered expanded, so the Pod requests the instancetype's memory and
 * vCPUs; one it cannot expand against them (an object only the cluster has) is rendered as
 * is, and the cluster controller sizes each Pod from its expanded VMI anyway.
 */
export function renderLauncherPod(unexpanded: api.VirtualMachine, opts: LauncherPodOptions = {}, instancetypes: readonly unknown[] = []): PodManifest {
  const expansion = referencesInstancetype(unexpanded) && instancetypes.length ? expandVm(unexpanded, resolverFor(instancetypes)) : undefined;
  const vm = expansion && !('errors' in expansion) ? expansion.vm : unexpanded;
  const name = vm.metadata.name;
  if (!name) throw new Error('metadata.name: a VirtualMachine needs a name to render its launcher Pod; set metadata.name');
  const namespace = vm.metadata.namespace ?? 'default';
  const spec = vm.spec.template.spec;
  const image = opts.launcherImage ?? virtopsImage();
  const vmiGrace = vmiGraceSeconds(spec);
  const overhead = computeOverhead(spec, { emulation: opts.emulation });
  const containerDisks = (spec.volumes ?? []).filter((v) => v.containerDisk);
  const passthrough = (spec.volumes ?? []).flatMap((v) => podVolumeFor(v));
  const templateMeta = vm.spec.template.metadata ?? {};

  const pod: PodManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: launcherPodName(name),
      ...(vm.metadata.namespace ? { namespace: vm.metadata.namespace } : {}),
      labels: {
        ...(templateMeta.labels ?? {}),
        [LABEL_APP]: 'virt-launcher',
        [LABEL_CREATED_BY]: opts.uid ?? VMI_UID_PLACEHOLDER,
        [LABEL_VM_NAME]: name,
      },
      annotations: {
        ...(templateMeta.annotations ?? {}),
        [ANNOTATION_DOMAIN]: name,
        [ANNOTATION_DEFAULT_CONTAINER]: 'compute',
        [ANNOTATION_MEMORY_OVERHEAD]: formatOverhead(overhead),
        ...TEMPLATE_ANNOTATIONS,
      },
    },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: launcherPodGraceSeconds(spec),
      automountServiceAccountToken: false,
      ...(spec.hostname ? { hostname: spec.hostname } : {}),
      ...(spec.subdomain ? { subdomain: spec.subdomain } : {}),
      ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
      ...(spec.schedulerName ? { schedulerName: spec.schedulerName } : {}),
      // KubeVirt only schedules onto nodes its node agent has marked schedulable.
      nodeSelector: { ...(spec.nodeSelector ?? {}), 'kubevirt.io/schedulable': 'true' },
      ...(spec.tolerations ? { tolerations: structuredClone(spec.tolerations) } : {}),
      ...(spec.affinity ? { affinity: structuredClone(spec.affinity) } : {}),
      securityContext: {
        runAsUser: LAUNCHER_USER, runAsGroup: LAUNCHER_USER, fsGroup: LAUNCHER_USER, runAsNonRoot: true,
        // QEMU (in the Pod's libvirt daemon, as user 107, no capabilities) binds the declared
        // ports at the Pod IP: ports below 1024 need this namespaced, kubelet-safe sysctl.
        ...(opts.libvirtDaemon === 'pod' && declaredPodPorts(spec).some((p) => p.port < 1024) ? { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] } : {}),
      },
      initContainers: [
        containerDiskBinary(image),
        ...containerDisks.map((v) => volumeInitContainer(v)),
      ],
      containers: [
        compute(vm, { image, namespace, vmiGrace, overhead, opts, extraMounts: passthrough.map((p) => p.mount) }),
        ...containerDisks.map((v, i) => volumeContainer(v, i)),
      ],
      volumes: [
        ...LAUNCHER_EMPTY_DIRS.map((n): PodVolume => ({ name: n, emptyDir: {} })),
        ...(opts.libvirtDaemon === 'pod' ? [{ name: 'node-sockets', hostPath: { path: opts.nodeSocketDir ?? DEFAULT_NODE_SOCKET_DIR, type: 'DirectoryOrCreate' } }] : []),
        ...passthrough.map((p) => p.volume),
      ],
    },
  };
  const pullSecrets = [...new Set(containerDisks.flatMap((v) => v.containerDisk?.imagePullSecret ?? []))];
  if (pullSecrets.length) pod.spec.imagePullSecrets = pullSecrets.map((s) => ({ name: s }));
  return pod;
}

/**
 * `pod` (a launcher Pod, template or instance) made to run its libvirt daemon `daemon`, the
 * same as `renderLauncherPod(vm, { libvirtDaemon: daemon, nodeSocketDir })` would have
 * written it (compute args, env, the node socket mount and volume, the low-ports sysctl):
 * the cluster controller's `--launcher-libvirt-daemon` applies it to the templates in git,
 * so a cluster of real kubelet nodes runs `pod` whatever dist/ was rendered with, and
 * `virtops up` and the process-runtime agent keep running dist/ as it is (`external`).
 * Everything else of the Pod stays as git has it. `spec`: the VMI's (its declared ports).
 */
export function withLibvirtDaemon(pod: PodManifest, spec: api.VirtualMachineInstanceSpec, daemon: LibvirtDaemon, nodeSocketDir: string = DEFAULT_NODE_SOCKET_DIR): PodManifest {
  const out = structuredClone(pod);
  const compute = out.spec.containers.find((c) => c.name === 'compute');
  if (!compute) throw new Error(`${pod.metadata.name}: spec.containers has no 'compute' container; re-run virtops synth`);
  const podFlags = Object.entries(podLauncherFlags()) as [keyof LauncherConfig, string][];
  let args = compute.args ?? [];
  for (const [field, value] of podFlags) args = daemon === 'pod' ? setLauncherFlag(args, field, value).args : withoutLauncherFlag(args, field);
  compute.args = args;
  const podEnv = new Set(['POD_UID', NODE_SOCKET_ENV]);
  compute.env = (compute.env ?? []).filter((e) => !podEnv.has(e.name));
  const mounts = (compute.volumeMounts ?? []).filter((m) => m.name !== 'node-sockets');
  const volumes = (out.spec.volumes ?? []).filter((v) => v.name !== 'node-sockets');
  const sc = out.spec.securityContext ?? {};
  const sysctls = ((sc['sysctls'] as { name: string; value: string }[] | undefined) ?? []).filter((x) => x.name !== 'net.ipv4.ip_unprivileged_port_start');
  if (daemon === 'pod') {
    compute.env.push({ name: 'POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } }, { name: NODE_SOCKET_ENV, value: NODE_SOCKET_MOUNT });
    // Where renderLauncherPod puts them: after the fixed mounts/emptyDirs, before the passthrough ones.
    const afterMount = mounts.findIndex((m) => m.name === 'hotplug-disks') + 1;
    mounts.splice(afterMount > 0 ? afterMount : mounts.length, 0, { name: 'node-sockets', mountPath: NODE_SOCKET_MOUNT, subPathExpr: '$(POD_UID)' });
    const lastEmptyDir = Math.max(...LAUNCHER_EMPTY_DIRS.map((n) => volumes.findIndex((v) => v.name === n)));
    volumes.splice(lastEmptyDir >= 0 ? lastEmptyDir + 1 : volumes.length, 0, { name: 'node-sockets', hostPath: { path: nodeSocketDir, type: 'DirectoryOrCreate' } });
    if (declaredPodPorts(spec).some((p) => p.port < 1024)) sysctls.push({ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' });
  }
  compute.volumeMounts = mounts;
  out.spec.volumes = volumes;
  const rest = Object.fromEntries(Object.entries(sc).filter(([k]) => k !== 'sysctls'));
  if (out.spec.securityContext || sysctls.length) out.spec.securityContext = { ...rest, ...(sysctls.length ? { sysctls } : {}) };
  return out;
}

/**
 * The launcher flags of a Pod a real kubelet runs (`libvirtDaemon: 'pod'`), in table order:
 * the in-Pod libvirt's socket, the launcher's image cache in the Pod's private emptyDir, and
 * claims found where the Pod mounts them (`PATHS.vmiDisks/<volume>/disk.img`, see
 * podVolumeFor) instead of a node directory.
 */
function podLauncherFlags(): Pick<LauncherConfig, 'libvirtUri' | 'libvirtDaemon' | 'imageStore' | 'vmiDisksDir'> {
  return { libvirtUri: POD_LIBVIRT_URI, libvirtDaemon: 'pod', imageStore: `${PATHS.private}/images`, vmiDisksDir: PATHS.vmiDisks };
}

/** `args` without `field`'s flag (both `--f v` and `--f=v`). */
function withoutLauncherFlag(args: readonly string[], field: keyof LauncherConfig): string[] {
  const flag = launcherFlag(field);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) {
      i++;
      continue;
    }
    if (!args[i]!.startsWith(`${flag}=`)) out.push(args[i]!);
  }
  return out;
}

/** The breakdown as a compact JSON annotation, values as quantities (`{"total":"266Mi",...}`). */
export function formatOverhead(o: OverheadBreakdown): string {
  const entries = Object.entries(o).filter(([, v]) => v > 0).map(([k, v]) => [k, formatBytes(v)]);
  return JSON.stringify(Object.fromEntries(entries));
}

/**
 * The compute container's argv with `$(VAR)` references expanded the way kubelet does,
 * for running a launcher without a kubelet (standalone node agent).
 */
export function launcherArgv(pod: PodManifest, env: Record<string, string>): string[] {
  const compute = pod.spec.containers.find((c) => c.name === 'compute');
  if (!compute) throw new Error(`${pod.metadata.name}: spec.containers has no 'compute' container; re-run virtops synth`);
  const expand = (s: string): string => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, k: string) => env[k] ?? m);
  return [...compute.command, ...(compute.args ?? [])].map(expand);
}

// ---- containers ---------------------------------------------------------------------

const XDG_ENV: EnvVar[] = [
  { name: 'XDG_CACHE_HOME', value: PATHS.private },
  { name: 'XDG_CONFIG_HOME', value: PATHS.private },
  { name: 'XDG_RUNTIME_DIR', value: '/var/run' },
];

const CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  runAsNonRoot: true,
  runAsUser: LAUNCHER_USER,
};

function containerDiskBinary(image: string): Container {
  return {
    name: 'container-disk-binary',
    image,
    command: ['/usr/bin/cp', '/usr/bin/container-disk', `${PATHS.binShare}/container-disk`],
    env: XDG_ENV,
    resources: { requests: { cpu: '10m', memory: '1M' }, limits: { cpu: '100m', memory: '40M' } },
    securityContext: CONTAINER_SECURITY,
    volumeMounts: [{ name: 'virt-bin-share-dir', mountPath: PATHS.binShare }],
  };
}

const VOLUME_CONTAINER_RESOURCES = {
  requests: { cpu: '1m', memory: '1M', 'ephemeral-storage': '50M' },
  limits: { cpu: '10m', memory: '40M' },
};

function volumeMounts(): VolumeMount[] {
  return [
    { name: 'container-disks', mountPath: PATHS.containerDiskData },
    { name: 'virt-bin-share-dir', mountPath: '/usr/bin' },
  ];
}

function volumeInitContainer(v: api.Volume): Container {
  const cd = v.containerDisk!;
  return {
    name: `volume${v.name}-init`,
    image: cd.image,
    ...(cd.imagePullPolicy ? { imagePullPolicy: cd.imagePullPolicy } : {}),
    // Starting the image once makes the runtime pull it and creates the mount point.
    command: ['/usr/bin/container-disk', '--no-op'],
    resources: VOLUME_CONTAINER_RESOURCES,
    securityContext: CONTAINER_SECURITY,
    volumeMounts: volumeMounts(),
  };
}

function volumeContainer(v: api.Volume, index: number): Container {
  const cd = v.containerDisk!;
  return {
    name: `volume${v.name}`,
    image: cd.image,
    ...(cd.imagePullPolicy ? { imagePullPolicy: cd.imagePullPolicy } : {}),
    // Holds the image's filesystem open and announces it on a socket named after the disk.
    command: ['/usr/bin/container-disk', '--copy-path', `${PATHS.containerDiskData}/disk_${index}`],
    resources: VOLUME_CONTAINER_RESOURCES,
    securityContext: CONTAINER_SECURITY,
    volumeMounts: volumeMounts(),
  };
}

interface ComputeInput {
  image: string;
  namespace: string;
  vmiGrace: number;
  overhead: OverheadBreakdown;
  opts: LauncherPodOptions;
  extraMounts: VolumeMount[];
}

function compute(vm: api.VirtualMachine, c: ComputeInput): Container {
  const spec = vm.spec.template.spec;
  return {
    name: 'compute',
    image: c.image,
    command: ['virtops', LAUNCHER_MONITOR_COMMAND],
    args: buildLauncherArgs({
      qemuTimeoutMs: (c.opts.qemuTimeoutSeconds ?? DEFAULT_QEMU_TIMEOUT_SECONDS) * 1000,
      name: vm.metadata.name!,
      uid: '$(VMI_UID)',
      namespace: c.namespace,
      kubevirtShareDir: PATHS.share,
      ephemeralDiskDir: PATHS.ephemeralDisks,
      containerDiskDir: PATHS.containerDisks,
      gracePeriodSeconds: launcherGraceSeconds({ terminationGracePeriodSeconds: c.vmiGrace }),
      hookSidecars: 0,
      emulation: c.opts.emulation ?? 'auto',
      ...(c.opts.libvirtDaemon === 'pod' ? podLauncherFlags() : {}),
    }),
    env: [
      ...XDG_ENV,
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      { name: 'VMI_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: `metadata.labels['${LABEL_CREATED_BY}']` } } },
      // Beside a real kubelet: this Pod's own directory on the node, for the node agent.
      ...(c.opts.libvirtDaemon === 'pod'
        ? [{ name: 'POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } }, { name: NODE_SOCKET_ENV, value: NODE_SOCKET_MOUNT }]
        : []),
    ],
    resources: computeResources(spec, c.overhead),
    securityContext: { ...CONTAINER_SECURITY, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } },
    volumeMounts: [
      { name: 'private', mountPath: PATHS.private },
      { name: 'public', mountPath: PATHS.share },
      { name: 'ephemeral-disks', mountPath: PATHS.ephemeralDisks },
      { name: 'container-disks', mountPath: PATHS.containerDisks, mountPropagation: 'HostToContainer' },
      { name: 'libvirt-runtime', mountPath: PATHS.libvirtRuntime },
      { name: 'sockets', mountPath: PATHS.sockets },
      { name: 'hotplug-disks', mountPath: PATHS.hotplugDisks, mountPropagation: 'HostToContainer' },
      ...(c.opts.libvirtDaemon === 'pod' ? [{ name: 'node-sockets', mountPath: NODE_SOCKET_MOUNT, subPathExpr: '$(POD_UID)' }] : []),
      ...c.extraMounts,
    ],
  };
}

/**
 * KubeVirt's rules: memory request = VMI request (else guest RAM) + overhead (unless
 * overcommitGuestOverhead); memory limit = VMI limit + overhead when a limit is set; CPU
 * request from the VMI (default 100m), CPU limit only when the VMI sets one. Dedicated CPUs
 * make the Pod Guaranteed: CPU request = limit = vCPUs, memory limit = request.
 */
export function computeResources(spec: api.VirtualMachineInstanceSpec, overhead: OverheadBreakdown): { requests: ResourceList; limits?: ResourceList } {
  const res = spec.domain.resources ?? {};
  const reqMem = res.requests?.memory !== undefined ? parseQuantity(res.requests.memory) : guestMemoryBytes(spec);
  const requests: ResourceList = {
    cpu: res.requests?.cpu ?? DEFAULT_CPU_REQUEST,
    memory: formatBytes(reqMem + (res.overcommitGuestOverhead ? 0 : overhead.total)),
    'ephemeral-storage': '50M',
  };
  const limits: ResourceList = {};
  if (res.limits?.cpu !== undefined) limits.cpu = res.limits.cpu;
  if (res.limits?.memory !== undefined) limits.memory = formatBytes(parseQuantity(res.limits.memory) + overhead.total);
  if (spec.domain.cpu?.dedicatedCpuPlacement) {
    const vcpus = String(vcpuCount(spec));
    requests.cpu = vcpus;
    limits.cpu = vcpus;
    limits.memory = formatBytes(reqMem + overhead.total);
    requests.memory = limits.memory;
  }
  return Object.keys(limits).length ? { requests, limits } : { requests };
}

// ---- pass-through volumes -----------------------------------------------------------

interface Passthrough {
  volume: PodVolume;
  mount: VolumeMount;
}

/**
 * Volumes that need a Pod volume besides the emptyDirs: filesystem PVCs (also behind
 * `ephemeral` and `dataVolume`), host disks (their directory), secrets and config maps.
 * Hot-pluggable PVCs are attached later, not at Pod creation, as in KubeVirt.
 */
function podVolumeFor(v: api.Volume): Passthrough[] {
  const mount = (sub: string, readOnly?: boolean): VolumeMount => ({
    name: v.name,
    mountPath: `${sub}/${v.name}`,
    ...(readOnly ? { readOnly: true } : {}),
  });
  if (v.persistentVolumeClaim && !v.persistentVolumeClaim.hotpluggable) {
    const { claimName, readOnly } = v.persistentVolumeClaim;
    return [{ volume: { name: v.name, persistentVolumeClaim: { claimName, ...(readOnly ? { readOnly } : {}) } }, mount: mount(PATHS.vmiDisks, readOnly) }];
  }
  if (v.ephemeral) {
    // The PVC is the read-only backing image; writes go to an overlay in ephemeral-disks.
    const { claimName } = v.ephemeral.persistentVolumeClaim;
    return [{ volume: { name: v.name, persistentVolumeClaim: { claimName, readOnly: true } }, mount: mount(PATHS.vmiDisks, true) }];
  }
  if (v.dataVolume && !v.dataVolume.hotpluggable) {
    return [{ volume: { name: v.name, persistentVolumeClaim: { claimName: v.dataVolume.name } }, mount: mount(PATHS.vmiDisks) }];
  }
  if (v.hostDisk) {
    const dir = v.hostDisk.path.replace(/\/[^/]*$/, '') || '/';
    const type = v.hostDisk.type === 'DiskOrCreate' ? 'DirectoryOrCreate' : 'Directory';
    return [{ volume: { name: v.name, hostPath: { path: dir, type } }, mount: mount(PATHS.vmiDisks) }];
  }
  if (v.secret) {
    return [{ volume: { name: v.name, secret: { ...v.secret.secretName !== undefined ? { secretName: v.secret.secretName } : {}, ...v.secret.optional !== undefined ? { optional: v.secret.optional } : {} } }, mount: mount(`${PATHS.private}/secret-disks`, true) }];
  }
  if (v.configMap) {
    return [{ volume: { name: v.name, configMap: { ...v.configMap.name !== undefined ? { name: v.configMap.name } : {}, ...v.configMap.optional !== undefined ? { optional: v.configMap.optional } : {} } }, mount: mount(`${PATHS.private}/config-map-disks`, true) }];
  }
  return [];
}
