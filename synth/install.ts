/**
 * Install manifests for the cluster-mode reconciler: namespace, service accounts,
 * least-privilege RBAC, the controller Deployment and the node agent DaemonSet.
 *
 * RBAC is written out verb by verb (no wildcards) from the calls reconciler/cluster/kube.ts
 * makes; namespaced things the code touches in one namespace are granted by a Role there, and
 * single named objects by `resourceNames` (RBAC cannot restrict `create` by name, so `create`
 * stays a separate, unnamed rule):
 * - controller (virt-controller's role + a Flux-style applier): reads/writes VMs and VMIs and
 *   their status, creates and deletes launcher Pods, records events; server-side applies
 *   virtops' CRDs (`patch` creates a missing object, so `create` too; `get` to wait for
 *   Established); in its own namespace, its leader-election Lease and the inventory
 *   ConfigMap of what it applied. Other kinds a repository puts in dist/ need their own rules
 *   (as Flux's kustomize-controller needs rights for what it applies).
 * - node agent (virt-handler's role): watches the VMIs and launcher Pods on its node (RBAC
 *   cannot scope by node; the agent lists with a `status.nodeName`/`spec.nodeName` field
 *   selector), updates VMI status and finalizers, marks its Node schedulable, records events;
 *   imports DataVolumes into its node's claims (DataVolumes, their status, the claim's PV and
 *   PVC) and takes snapshots/restores of the VMs whose claims it holds (both kinds and their
 *   status, the VMs read and, for StopTarget, annotated).
 * - node agent in process-runtime mode (`processRuntimeAgents`: a host without kubelet that
 *   registers itself as a Node, a virtual kubelet): also creates its Node, writes launcher
 *   Pod status, deletes a terminated Pod for good (grace 0, kubelet's last step) and renews its
 *   Lease in kube-node-lease. Off by default: with a real kubelet the agent never does these.
 * - controller also: DataVolumes (from git and dataVolumeTemplates), VirtualMachineSnapshots
 *   and VirtualMachineRestores (from git; restores hold their target VM).
 */
import { Chart, type ChartProps } from 'cdk8s';
import { createRequire } from 'node:module';
import type * as K8s from 'cdk8s-plus-33/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { GROUP } from '../api/kubevirt.js';
import { INSTANCETYPE_GROUP } from '../api/instancetype.js';
import { POOL_GROUP } from '../api/pool.js';
import { ALL_CRDS, DATAVOLUME_CRD, RESTORE_CRD, SNAPSHOT_CRD, SNAPSHOT_GROUP, crdName } from './crds.js';
import { virtopsImage } from './image.js';
import { DEFAULT_NODE_SOCKET_DIR } from './launcher-pod.js';

// cdk8s-plus' generated Kubernetes API constructs (KubeNamespace, KubeDeployment, ...) alone,
// required as CommonJS: its index also loads every L2 construct, and an ES import of the
// 3.4 MB module makes Node scan all of it for export names (~70 ms per synth either way,
// ~25 ms this way).
const k8s = createRequire(import.meta.url)('cdk8s-plus-33/lib/imports/k8s.js') as typeof K8s;

export const INSTALL_NAMESPACE = 'virtops-system';
export const CONTROLLER_NAME = 'virtops-controller';
export const AGENT_NAME = 'virtops-agent';

/**
 * malloc settings for the controller's and the agent's containers: long-lived, mostly idle
 * daemons, for which glibc would keep the heap freed after start-up and an arena per
 * allocating thread (5–8 MiB of RSS each, BENCHMARKS.md: agent RSS, controller RSS).
 */
export const DAEMON_GLIBC_TUNABLES = 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072';

/**
 * Node options for the controller's container: V8's young generation capped at 4 MiB
 * semi-spaces (8 MiB new space instead of 32). A burst of list and watch answers (a push of
 * 100 VMs) otherwise grows it to its full size for a while: the controller's RSS peaked at
 * ~105 MiB with 100 VMs against a steady 73 MiB, and at ~85 MiB with the cap, for ~2% more CPU
 * to converge (~15% at 1,000 VMs). The agent's peaks did not move with it, so it runs without.
 * BENCHMARKS.md: "V8's young generation". In the environment, not on a command line: `virtops`
 * is the image's entry point, and nothing the controller runs is Node with inherited env (the
 * synth verifier's sandbox clears it).
 */
export const CONTROLLER_NODE_OPTIONS = '--max-semi-space-size=4';

export interface InstallChartProps extends ChartProps {
  /** Image holding the `virtops` CLI (synth/image.ts). @default virtopsImage(): localhost:5000/virtops:<version> */
  readonly image?: string;
  /** @default 'virtops-system' */
  readonly installNamespace?: string;
  /**
   * Also grant the agent service account what `virtops agent --process-runtime` needs (hosts
   * without kubelet that register their own Node and run launcher Pods as processes).
   * @default false
   */
  readonly processRuntimeAgents?: boolean;
}

const partOf = { 'app.kubernetes.io/part-of': 'virtops' };
/** The controller's writable cache (its git clone); the rest of its filesystem is read-only. */
export const CONTROLLER_CACHE_PATH = '/var/cache/virtops';
/**
 * The ConfigMap (in the install namespace) that tells the controller where git is: key
 * `repo` (a git URL the controller Pod can reach: https://, ssh://, git://). Not shipped: a
 * re-apply of install.k8s.yaml must not overwrite it; until it exists the controller Pod waits
 * in CreateContainerConfigError, which names the ConfigMap.
 */
export const CONTROLLER_CONFIGMAP = 'virtops-config';
/** The node's launcher socket dir: synth's nodeSocketDir default = the agent's default --launcher-socket-dir. */
export const AGENT_LAUNCHER_SOCKET_DIR = DEFAULT_NODE_SOCKET_DIR;
/** The agent's default --state-dir (reconciler/agent/host-config.ts DEFAULT_STATE_DIR) and the dirs under it it writes. */
export const AGENT_STATE_DIR = '/var/lib/virtops';
export const AGENT_CLAIMS_DIR = `${AGENT_STATE_DIR}/pvcs`;
export const AGENT_SNAPSHOTS_DIR = `${AGENT_STATE_DIR}/snapshots`;
export const AGENT_IMAGES_DIR = `${AGENT_STATE_DIR}/images`;

/** The CRDs virtops ships (synth/crds.ts) and so applies; the controller may write only these. */
export const VIRTOPS_CRD_NAMES = ALL_CRDS.map(crdName);
/** Objects the controller keeps in its namespace (reconciler/cluster: leader.ts, apply.ts). */
export const CONTROLLER_LEASE_NAME = CONTROLLER_NAME;
export const INVENTORY_CONFIGMAP_NAME = 'virtops-inventory';
export const DASHBOARD_SECRET_NAME = 'virtops-dashboard';
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

const DATAVOLUME_GROUP = DATAVOLUME_CRD.group!;

export const CONTROLLER_RULES: K8s.PolicyRule[] = [
  { apiGroups: [GROUP], resources: ['virtualmachines', 'virtualmachineinstances'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [GROUP], resources: ['virtualmachines/status', 'virtualmachineinstances/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // The dashboard (--dashboard-listen): the VM page's events timeline.
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['get', 'list', 'watch'] },
  // Instancetypes and preferences: applied from git, read to expand VMs when they start.
  { apiGroups: [INSTANCETYPE_GROUP], resources: ['virtualmachineinstancetypes', 'virtualmachineclusterinstancetypes', 'virtualmachinepreferences', 'virtualmachineclusterpreferences'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  // VirtualMachinePools: applied from git; the pool controller creates/deletes their VMs and writes their status.
  { apiGroups: [POOL_GROUP], resources: ['virtualmachinepools'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [POOL_GROUP], resources: ['virtualmachinepools/status'], verbs: ['get', 'update', 'patch'] },
  // DataVolumes: applied from git, created from VMs' dataVolumeTemplates (reconciler/cluster/datavolumes.ts).
  { apiGroups: [DATAVOLUME_GROUP], resources: ['datavolumes'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  // Snapshots and restores: applied from git; restores are watched to hold their target VM (reconciler/cluster/snapshots.ts).
  { apiGroups: [SNAPSHOT_GROUP], resources: ['virtualmachinesnapshots', 'virtualmachinerestores'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  // The copies a VM expands from once started (KubeVirt's instancetype revisions).
  { apiGroups: ['apps'], resources: ['controllerrevisions'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], resourceNames: VIRTOPS_CRD_NAMES, verbs: ['get', 'patch'] },
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['create'] },
];

/** In the install namespace (a Role): leader election and the applied-objects inventory. */
export const CONTROLLER_NAMESPACE_RULES: K8s.PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [CONTROLLER_LEASE_NAME], verbs: ['get', 'update'] },
  // list + watch by name (a fieldSelector metadata.name): `virtops reconcile` requests arrive on it.
  { apiGroups: [''], resources: ['configmaps'], resourceNames: [INVENTORY_CONFIGMAP_NAME], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
  // The dashboard's login token (reconciler/cluster/dashboard.ts): created once, read at start, its URL annotated.
  { apiGroups: [''], resources: ['secrets'], resourceNames: [DASHBOARD_SECRET_NAME], verbs: ['get', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
];

/**
 * Every agent (beside a kubelet or process runtime): the VMIs and launcher Pods of its node,
 * its Node's label, events; DataVolume imports into the node's claims (take one by annotation,
 * write its status, publish the claim as a PVC bound to a local PV); snapshots and restores
 * of the VMs whose claims the node holds (take one by annotation, write its status; read the
 * VM, and ask it to stop for a StopTarget restore through the override annotation).
 */
export const AGENT_RULES: K8s.PolicyRule[] = [
  { apiGroups: [GROUP], resources: ['virtualmachineinstances'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [GROUP], resources: ['virtualmachineinstances/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [DATAVOLUME_GROUP], resources: ['datavolumes'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [DATAVOLUME_GROUP], resources: ['datavolumes/status'], verbs: ['get', 'update', 'patch'] },
  // list/watch (and PVC get): a restore's new claims, whose file and PV the agent removes once their PVC is deleted.
  { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['create', 'delete', 'list', 'watch'] },
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['create', 'get', 'list', 'watch'] },
  { apiGroups: [SNAPSHOT_GROUP], resources: ['virtualmachinesnapshots', 'virtualmachinerestores'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [SNAPSHOT_GROUP], resources: ['virtualmachinesnapshots/status', 'virtualmachinerestores/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [GROUP], resources: ['virtualmachines'], verbs: ['get', 'list', 'watch', 'patch'] },
  // The importer and the snapshot worker wait for their CRDs (a GET each, no failing watch).
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], resourceNames: [crdName(DATAVOLUME_CRD), crdName(SNAPSHOT_CRD), crdName(RESTORE_CRD)], verbs: ['get'] },
];

/**
 * Agents in process-runtime mode (`processRuntimeAgents`), cluster-wide: what a kubelet does
 * otherwise: create their Node, write launcher Pod status, delete a terminated Pod.
 */
export const PROCESS_RUNTIME_AGENT_RULES: K8s.PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['create'] },
  { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['delete'] },
];

/** Agents in process-runtime mode, in kube-node-lease (a Role): the node heartbeat Lease (named after each node). */
export const PROCESS_RUNTIME_NODE_LEASE_RULES: K8s.PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

export class InstallChart extends Chart {
  constructor(scope: Construct, id: string, props: InstallChartProps = {}) {
    super(scope, id, props);
    const ns = props.installNamespace ?? INSTALL_NAMESPACE;
    const image = props.image ?? virtopsImage();

    new k8s.KubeNamespace(this, 'namespace', { metadata: { name: ns, labels: partOf } });
    for (const name of [CONTROLLER_NAME, AGENT_NAME]) {
      new k8s.KubeServiceAccount(this, `${name}-sa`, { metadata: { name, namespace: ns, labels: partOf }, automountServiceAccountToken: true });
    }
    this.clusterRole(CONTROLLER_NAME, CONTROLLER_NAME, ns, CONTROLLER_RULES);
    this.role(CONTROLLER_NAME, CONTROLLER_NAME, ns, ns, CONTROLLER_NAMESPACE_RULES);
    this.clusterRole(AGENT_NAME, AGENT_NAME, ns, AGENT_RULES);
    if (props.processRuntimeAgents) {
      this.clusterRole(`${AGENT_NAME}-process-runtime`, AGENT_NAME, ns, PROCESS_RUNTIME_AGENT_RULES);
      this.role(`${AGENT_NAME}-node-lease`, AGENT_NAME, ns, NODE_LEASE_NAMESPACE, PROCESS_RUNTIME_NODE_LEASE_RULES);
    }
    this.controller(ns, image, props.processRuntimeAgents === true);
    this.agent(ns, image);
  }

  private clusterRole(name: string, serviceAccount: string, saNamespace: string, rules: K8s.PolicyRule[]): void {
    new k8s.KubeClusterRole(this, `${name}-role`, { metadata: { name, labels: partOf }, rules });
    new k8s.KubeClusterRoleBinding(this, `${name}-binding`, {
      metadata: { name, labels: partOf },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: saNamespace }],
    });
  }

  private role(name: string, serviceAccount: string, saNamespace: string, namespace: string, rules: K8s.PolicyRule[]): void {
    new k8s.KubeRole(this, `${name}-${namespace}-role`, { metadata: { name, namespace, labels: partOf }, rules });
    new k8s.KubeRoleBinding(this, `${name}-${namespace}-binding`, {
      metadata: { name, namespace, labels: partOf },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: saNamespace }],
    });
  }

  private controller(ns: string, image: string, processRuntimeAgents: boolean): void {
    const labels = { 'app.kubernetes.io/name': CONTROLLER_NAME, ...partOf };
    new k8s.KubeDeployment(this, CONTROLLER_NAME, {
      metadata: { name: CONTROLLER_NAME, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': CONTROLLER_NAME } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: CONTROLLER_NAME,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [{
              name: 'controller',
              image,
              command: ['virtops', 'controller'],
              // The root filesystem is read-only: the git clone goes to an emptyDir, which
              // also survives a container restart (no re-clone after a crash).
              // Real kubelet nodes: every launcher Pod runs its own libvirt daemon (QEMU in the
              // Pod's cgroup, its socket in the agent's dir), whatever dist/ was rendered with;
              // `virtops up` and process-runtime agents run dist/'s templates as they are.
              args: ['--repo', '$(VIRTOPS_REPO)', '--cache-dir', `${CONTROLLER_CACHE_PATH}/source`, ...(processRuntimeAgents ? [] : ['--launcher-libvirt-daemon', 'pod', '--launcher-socket-dir', AGENT_LAUNCHER_SOCKET_DIR])],
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'VIRTOPS_REPO', valueFrom: { configMapKeyRef: { name: CONTROLLER_CONFIGMAP, key: 'repo' } } },
                { name: 'GLIBC_TUNABLES', value: DAEMON_GLIBC_TUNABLES },
                { name: 'NODE_OPTIONS', value: CONTROLLER_NODE_OPTIONS },
              ],
              volumeMounts: [{ name: 'cache', mountPath: CONTROLLER_CACHE_PATH }],
              resources: {
                requests: { cpu: k8s.Quantity.fromString('50m'), memory: k8s.Quantity.fromString('96Mi') },
                limits: { memory: k8s.Quantity.fromString('256Mi') },
              },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            }],
            volumes: [{ name: 'cache', emptyDir: {} }],
          },
        },
      },
    });
  }

  private agent(ns: string, image: string): void {
    const labels = { 'app.kubernetes.io/name': AGENT_NAME, ...partOf };
    // Beside the kubelet the agent needs the launcher socket dir (launcher Pods publish their
    // sockets there), the host's pid namespace (hostPID: it finds launcher monitors in /proc),
    // and the node's claims and snapshot copies, at the same paths inside as on the host: a
    // claim's `local` PV names its host dir, which the kubelet bind-mounts into the launcher
    // Pod. QEMU runs in the launcher Pods, under their own libvirt daemons.
    const hostPaths: { name: string; path: string; type: string; propagation?: string }[] = [
      { name: 'launcher-sockets', path: AGENT_LAUNCHER_SOCKET_DIR, type: 'DirectoryOrCreate' },
      { name: 'claims', path: AGENT_CLAIMS_DIR, type: 'DirectoryOrCreate' },
      { name: 'snapshots', path: AGENT_SNAPSHOTS_DIR, type: 'DirectoryOrCreate' },
      // Registry DataVolume imports: the node's image cache (outside the container's own layer).
      { name: 'images', path: AGENT_IMAGES_DIR, type: 'DirectoryOrCreate' },
    ];
    new k8s.KubeDaemonSet(this, AGENT_NAME, {
      metadata: { name: AGENT_NAME, namespace: ns, labels },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': AGENT_NAME } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: AGENT_NAME,
            hostPid: true,
            priorityClassName: 'system-node-critical',
            tolerations: [{ key: 'CriticalAddonsOnly', operator: 'Exists' }],
            containers: [{
              name: 'agent',
              image,
              command: ['virtops', 'agent'],
              args: ['--node', '$(NODE_NAME)'],
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'GLIBC_TUNABLES', value: DAEMON_GLIBC_TUNABLES },
              ],
              resources: {
                requests: { cpu: k8s.Quantity.fromString('50m'), memory: k8s.Quantity.fromString('128Mi') },
                limits: { memory: k8s.Quantity.fromString('512Mi') },
              },
              // Root on the host: hands each launcher Pod its socket dir (chown), reads every
              // process's /proc entry (hostPID) and connects to sockets owned by the Pods' user.
              securityContext: { privileged: true },
              volumeMounts: hostPaths.map((h) => ({ name: h.name, mountPath: h.path, ...(h.propagation ? { mountPropagation: h.propagation } : {}) })),
            }],
            volumes: hostPaths.map((h) => ({ name: h.name, hostPath: { path: h.path, type: h.type } })),
          },
        },
      },
    });
  }
}
