/**
 * `VmAccess` over a Kubernetes API server where `virtops controller` and agents run. Every
 * request carries the user's kubeconfig credentials, so the API server authenticates and
 * authorizes each command (RBAC), the console included (`nodes/<node>/proxy`).
 */
import type { VirtualMachine, VirtualMachineInstance } from '../api/kubevirt.js';
import { OVERRIDE_ANNOTATION, serializeOverride } from '../reconciler/core/overrides.js';
import type { ImperativeAction } from '../reconciler/core/types.js';
import { parseVmName } from '../reconciler/standalone/client.js';
import { CONSOLE_PROTOCOL, RECONCILE_HANDLED_KEY, RECONCILE_REQUESTED_ANNOTATION, consolePath } from '../reconciler/cluster/requests.js';
import { formatClusterDescribe, formatVmRows, formatVmiRows, type KubeEvent } from './cluster-format.js';
import { KubeApiError, KubeRest } from './kube-rest.js';
import type { ConsoleStream, Described, DiffView, Listing, VmAccess, VmResource } from './vm-access.js';

const INVENTORY = 'virtops-inventory';
const KV = '/apis/kubevirt.io/v1';

interface List<T> {
  items: T[];
}
interface LauncherPod {
  metadata?: { name?: string; deletionTimestamp?: string };
  status?: { phase?: string; containerStatuses?: { name: string; containerID?: string }[] };
}
interface ConfigMap {
  metadata: { annotations?: Record<string, string> };
  data?: Record<string, string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ClusterAccess implements VmAccess {
  readonly mode = 'cluster' as const;
  private constructor(readonly kube: KubeRest, private readonly controllerNamespace: string) {}

  static async connect(paths: string[], opts: { context?: string; controllerNamespace: string }): Promise<ClusterAccess> {
    return new ClusterAccess(await KubeRest.connect(paths, opts.context ? { context: opts.context } : {}), opts.controllerNamespace);
  }

  /** Over a client that already holds its credentials (the controller's own, for its dashboard). */
  static fromRest(kube: KubeRest, controllerNamespace: string): ClusterAccess {
    return new ClusterAccess(kube, controllerNamespace);
  }

  private ns(namespace: string | undefined): string {
    return namespace ?? this.kube.target.namespace;
  }

  private vmPath(ns: string, name: string, plural = 'virtualmachines'): string {
    return `${KV}/namespaces/${encodeURIComponent(ns)}/${plural}/${encodeURIComponent(name)}`;
  }

  private async readVm(namespace: string | undefined, name: string): Promise<VirtualMachine> {
    const [ns, n] = parseVmName(name, this.ns(namespace));
    const vm = await this.kube.get<VirtualMachine>(this.vmPath(ns, n)).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.code === 404 && /the server could not find the requested resource/.test(err.message)) {
        throw new Error('the cluster has no kubevirt.io/v1 VirtualMachine kind: no virtops controller has applied its CRDs yet');
      }
      throw err;
    });
    if (!vm) throw new Error(`VirtualMachine ${ns}/${n} not found (context ${this.kube.target.context}); see virtops get vms${namespace ? ` -n ${ns}` : ' -A'}`);
    return vm;
  }

  /** The controller's inventory ConfigMap; undefined when absent or not readable by this user. */
  private async inventory(): Promise<ConfigMap | undefined> {
    return this.kube.get<ConfigMap>(`/api/v1/namespaces/${this.controllerNamespace}/configmaps/${INVENTORY}`).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.code === 403) return undefined;
      throw err;
    });
  }

  async list(resource: VmResource, scope: { namespace?: string; all: boolean }): Promise<Listing> {
    const plural = resource === 'vms' ? 'virtualmachines' : 'virtualmachineinstances';
    const ns = this.ns(scope.namespace);
    const path = scope.all ? `${KV}/${plural}` : `${KV}/namespaces/${encodeURIComponent(ns)}/${plural}`;
    const list = await this.kube.call<List<VirtualMachine | VirtualMachineInstance>>('GET', path).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.code === 404) throw new Error(`the cluster has no kubevirt.io/v1 ${plural}: no virtops controller has applied its CRDs yet (context ${this.kube.target.context})`);
      throw err;
    });
    // Code-unit order, as the API server lists (etcd key order); localeCompare's first call
    // loads ICU's collator (~25 ms of `get`), and Kubernetes names are lowercase ASCII anyway.
    const key = (o: VirtualMachine | VirtualMachineInstance) => `${o.metadata.namespace}/${o.metadata.name}`;
    const items = [...list.items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    const what = resource === 'vms' ? 'VirtualMachines' : 'VirtualMachineInstances';
    return {
      data: { apiVersion: 'v1', kind: 'List', items },
      empty: scope.all ? `No ${what} found.` : `No ${what} found in ${ns} namespace.`,
      table: ({ wide, now }) => {
        if (!items.length) return undefined;
        const o = { wide, now, allNamespaces: scope.all };
        return resource === 'vms' ? formatVmRows(items as VirtualMachine[], o) : formatVmiRows(items as VirtualMachineInstance[], o);
      },
    };
  }

  async describe(namespace: string | undefined, name: string): Promise<Described> {
    const vm = await this.readVm(namespace, name);
    const ns = vm.metadata.namespace ?? 'default';
    const n = vm.metadata.name ?? '';
    const [vmi, events, inv] = await Promise.all([
      this.kube.get<VirtualMachineInstance>(this.vmPath(ns, n, 'virtualmachineinstances')),
      this.kube.call<List<KubeEvent>>('GET', `/api/v1/namespaces/${ns}/events?fieldSelector=${encodeURIComponent(`involvedObject.uid=${vm.metadata.uid}`)}`).then((l) => l.items, () => []),
      this.inventory().catch(() => undefined),
    ]);
    const uid = vmi?.metadata.uid;
    const pod = uid
      ? (await this.kube.call<List<{ metadata?: { name?: string }; status?: { phase?: string } }>>('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(`kubevirt.io/created-by=${uid}`)}`).catch(() => ({ items: [] }))).items[0]
      : undefined;
    const details = { vm, ...(vmi ? { vmi } : {}), ...(pod ? { pod } : {}), events, ...(inv?.data?.['revision'] ? { revision: inv.data['revision'] } : {}) };
    return { data: details, text: (now) => formatClusterDescribe(details, now) };
  }

  async act(namespace: string | undefined, name: string, action: ImperativeAction): Promise<string> {
    const vm = await this.readVm(namespace, name);
    const revision = (await this.inventory().catch(() => undefined))?.data?.['revision'] || 'unknown';
    const value = serializeOverride({ action, at: Date.now(), revision });
    const ns = vm.metadata.namespace ?? 'default';
    // Guarded by the uid: a VM deleted and re-created meanwhile is not the one the user meant.
    await this.kube.call('PATCH', `${this.vmPath(ns, vm.metadata.name ?? '')}?fieldManager=virtops-cli`, { metadata: { uid: vm.metadata.uid, annotations: { [OVERRIDE_ANNOTATION]: value } } }, 'merge');
    return `virtualmachine ${ns}/${vm.metadata.name}: ${action} requested (annotation ${OVERRIDE_ANNOTATION}; the next commit changing this VM clears it)`;
  }

  async diff(opts: { path: string }): Promise<DiffView> {
    const { clusterDiff } = await import('./cluster-diff.js');
    return clusterDiff(this.kube, { distDir: opts.path, controllerNamespace: this.controllerNamespace });
  }

  async reconcile(opts: { timeoutMs: number }): Promise<string> {
    const path = `/api/v1/namespaces/${this.controllerNamespace}/configmaps/${INVENTORY}`;
    const requestedAt = new Date().toISOString();
    try {
      await this.kube.call('PATCH', `${path}?fieldManager=virtops-cli`, { metadata: { annotations: { [RECONCILE_REQUESTED_ANNOTATION]: requestedAt } } }, 'merge');
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) {
        throw new Error(`ConfigMap ${this.controllerNamespace}/${INVENTORY} not found: no virtops controller has applied a revision there yet (pass --controller-namespace if it runs elsewhere)`);
      }
      throw err;
    }
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const cm = await this.kube.get<ConfigMap>(path);
      if (cm?.data?.[RECONCILE_HANDLED_KEY] === requestedAt) {
        return `reconciliation finished: applied revision ${cm.data['revision']?.slice(0, 12) || '(none)'}${cm.data['health'] ? `, ${cm.data['health']}` : ''}`;
      }
      if (Date.now() > deadline) throw new Error(`the controller did not handle the reconcile request within ${opts.timeoutMs / 1000}s (is virtops controller running and leading in ${this.controllerNamespace}?); the request stays and is handled when it is`);
      await sleep(200);
    }
  }

  /** The VMI's launcher Pod (by the created-by label); undefined when none or when this user may not list Pods. */
  private async launcherPod(ns: string, vmiUid: string | undefined): Promise<LauncherPod | undefined> {
    if (!vmiUid) return undefined;
    const sel = encodeURIComponent(`kubevirt.io/created-by=${vmiUid}`);
    const list = await this.kube.call<List<LauncherPod>>('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods?labelSelector=${sel}`).catch(() => ({ items: [] as LauncherPod[] }));
    return list.items.find((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running') ?? list.items[0];
  }

  async console(namespace: string | undefined, name: string): Promise<ConsoleStream> {
    const [ns, n] = parseVmName(name, this.ns(namespace));
    const vmi = await this.kube.get<VirtualMachineInstance>(this.vmPath(ns, n, 'virtualmachineinstances'));
    if (!vmi) throw new Error(`VM ${ns}/${n} has no VirtualMachineInstance: it is not running (virtops start ${n} -n ${ns})`);
    const node = vmi.status?.nodeName;
    if (!node || vmi.status?.phase !== 'Running') throw new Error(`VMI ${ns}/${n} is ${vmi.status?.phase ?? 'Pending'}${node ? ` on node ${node}` : ''}: the console is there once it is Running (see virtops describe vm ${n} -n ${ns})`);
    // Beside a real kubelet: pods/exec on the compute container (cli/pod-console.ts says why).
    const pod = await this.launcherPod(ns, vmi.metadata.uid);
    if (pod) {
      const { podExec, relayCommand, runsUnderKubelet, ExecRefused, podSerialLog, POD_SERIAL_SOCKET } = await import('./pod-console.js');
      if (runsUnderKubelet(pod)) {
        const podName = pod.metadata?.name ?? '';
        const socket = await podExec(this.kube, { namespace: ns, pod: podName, container: 'compute', command: relayCommand(POD_SERIAL_SOCKET, podSerialLog(ns, n)) }).catch((err: unknown) => {
          // Still an ExecRefused(403): callers (the cluster dashboard) tell a refusal by its code.
          if (err instanceof ExecRefused && err.code === 403) throw new ExecRefused(403, `${err.message} (the console needs RBAC "create" on pods/exec in namespace ${ns})`);
          throw err;
        });
        return { socket, label: `${ns}/${n} in Pod ${podName} on node ${node}` };
      }
    }
    const { socket, head } = await this.kube.upgrade(`/api/v1/nodes/${encodeURIComponent(node)}/proxy${consolePath(ns, n)}`, CONSOLE_PROTOCOL).catch((err: unknown) => {
      // Still a KubeApiError: callers (the cluster dashboard) tell a refusal by its code.
      if (err instanceof KubeApiError && err.code === 403) throw new KubeApiError(403, `${err.message} (the console needs RBAC "get" on nodes/proxy for node ${node})`, err.reason);
      throw err;
    });
    return { socket, head, label: `${ns}/${n} on node ${node}` };
  }
}
