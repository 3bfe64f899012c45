/**
 * The web dashboard in cluster mode: `virtops controller --dashboard-listen HOST:PORT`.
 * The routes are the single host's (reconciler/standalone/dashboard-server.ts); this file
 * is their data over the API server, as the controller sees it:
 *
 * - VMs, VMIs and launcher Pods from informers of their own (a change of any marks that
 *   VM dirty in the live feed), the inventory ConfigMap (the applied revision and its
 *   health), the git source's refused commits (in-process: the controller reads git).
 * - The VM page and the buttons go through `ClusterAccess` (cli/cluster-access.ts), the
 *   code `virtops describe|stop … --kubeconfig` runs: one implementation per verb. The
 *   controller's own credentials make the calls (its service account needs the RBAC
 *   `virtops stop` would need: patch on VMs; events list; nodes/proxy for the console).
 * - The console: the same path as `virtops console --kubeconfig`, the process-runtime
 *   agent's console endpoint through `nodes/<node>/proxy`. When that fails (no such
 *   endpoint, no RBAC) the page says why (the WebSocket's close reason).
 *
 * Login: no new unauthenticated door. The controller keeps a random token in Secret
 * `virtops-dashboard` (key `token`) of its namespace, created on first start; whoever may
 * read that Secret (RBAC) may sign in: `virtops dashboard --kubeconfig F` prints the login
 * link (`URL/login#token=…`, the URL from the Secret's annotation `virtops.io/dashboard-url`).
 * After that it is the single host's flow: session cookie, CSRF header, Origin check.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualMachine, VirtualMachineInstance } from '../../api/kubevirt.js';
import type { ClusterAccess } from '../../cli/cluster-access.js';
import type { KubeEvent } from '../../cli/cluster-format.js';
import { OVERRIDE_ANNOTATION, parseOverride } from '../core/overrides.js';
import type { VmView } from '../standalone/backend.js';
import { dashboardRow } from '../standalone/events-stream.js';
import { commitLookup, createDashboardServer, dashboardAssetsDir, specSummary, startDashboardListener, type ConsoleTarget, type DashboardData } from '../standalone/dashboard-server.js';
import { INVENTORY_CONFIGMAP } from './apply.js';
import { ANNOTATION_REVISION } from './instances.js';
import type { Informer, KubeClient } from './kube.js';

export const DASHBOARD_SECRET = 'virtops-dashboard';
export const DASHBOARD_URL_ANNOTATION = 'virtops.io/dashboard-url';
const LABEL_CREATED_BY = 'kubevirt.io/created-by';
const LABEL_VM_NAME = 'vm.kubevirt.io/name';

interface Pod extends KubernetesObject {
  status?: { phase?: string; podIP?: string; hostIP?: string };
}
interface ConfigMap extends KubernetesObject {
  data?: Record<string, string>;
}
interface Secret extends KubernetesObject {
  data?: Record<string, string>;
}

/** `HOST:PORT` (IPv6 in brackets) → its parts, or the error naming the flag and the fix. Pure. */
export function parseDashboardListen(raw: string): { host: string; port: number } | { error: string } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) return { error: `--dashboard-listen "${raw}" is not HOST:PORT (e.g. 127.0.0.1:8687, [::1]:8687, 0.0.0.0:8687; port 0 picks a free one)` };
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * The VM as the dashboard shows it (the single host's VmView shape), from the API server's
 * VM, its VMI and launcher Pod. Pure. `instance` names the Pod and node; the fields a single
 * host fills from its pod dir (pid, logs) stay empty.
 */
export function clusterVmView(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, pod: Pod | undefined, events: KubeEvent[] = []): VmView {
  const ns = vm.metadata.namespace ?? 'default';
  const name = vm.metadata.name ?? '';
  const ov = vm.metadata.annotations?.[OVERRIDE_ANNOTATION];
  const override = ov ? parseOverride(ov) : undefined;
  const st = (vm.status ?? {}) as Record<string, unknown>;
  const reported = (vmi?.status as { interfaces?: { ipAddress?: string; name?: string }[] } | undefined)?.interfaces;
  // The IP column without a guest agent: the launcher Pod's IP, which a masquerade-bound VM
  // is reached at (set where a kubelet + CNI runs the Pod; process-runtime agents set none).
  const interfaces = reported?.some((i) => i.ipAddress) ? reported : pod?.status?.podIP ? [{ name: 'pod', ipAddress: pod.status.podIP }] : reported;
  const failure = (vm.status?.conditions ?? []).find((c) => c.type === 'Failure' && c.status === 'True');
  return {
    namespace: ns,
    name,
    firstSeen: vm.metadata.creationTimestamp ? new Date(vm.metadata.creationTimestamp as unknown as string).toISOString() : new Date(0).toISOString(),
    ...(pod?.metadata?.annotations?.[ANNOTATION_REVISION] ? { revision: pod.metadata.annotations[ANNOTATION_REVISION] } : {}),
    status: { ...st, ...(vm.spec?.runStrategy ? { runStrategy: vm.spec.runStrategy } : {}), ...(interfaces ? { interfaces } : {}) } as VmView['status'],
    ...(override?.ok ? { override: override.override } : {}),
    ...(failure ? { failure: { reason: failure.reason ?? 'Failure', message: failure.message ?? '' } } : {}),
    inGit: true,
    ...(vmi
      ? {
          instance: {
            uid: vmi.metadata.uid ?? '',
            createdAt: vmi.metadata.creationTimestamp ? new Date(vmi.metadata.creationTimestamp as unknown as string).toISOString() : '',
            domain: `${ns}_${name}`,
            socket: '',
            console: '',
            serialLog: '',
            launcherLog: '',
            podDir: '',
            ...({ node: vmi.status?.nodeName ?? '', pod: pod?.metadata?.name ?? '', podPhase: pod?.status?.phase ?? '' } as object),
          } as NonNullable<VmView['instance']>,
        }
      : {}),
    events: events.map((e) => ({
      type: e.type ?? 'Normal',
      reason: e.reason ?? '',
      message: e.message ?? '',
      time: e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? undefined,
      ...(e.firstTimestamp ? { firstTime: e.firstTimestamp } : {}),
      ...(e.count ? { count: e.count } : {}),
    })) as unknown as VmView['events'],
  };
}

/** The login token: Secret virtops-dashboard of the controller's namespace, created with a random one if absent. */
export async function ensureDashboardToken(client: KubeClient, namespace: string): Promise<string> {
  const ref = { apiVersion: 'v1', kind: 'Secret', metadata: { name: DASHBOARD_SECRET, namespace } };
  for (let attempt = 0; attempt < 3; attempt++) {
    const s = await client.read<Secret>(ref);
    const token = s?.data?.['token'] ? Buffer.from(s.data['token'], 'base64').toString('utf8') : undefined;
    if (s && token) return token;
    if (s) throw new Error(`Secret ${namespace}/${DASHBOARD_SECRET} has no data.token: delete it and the controller creates a new one`);
    const fresh = randomBytes(32).toString('base64url');
    const made = await client.create<Secret>({ ...ref, type: 'Opaque', metadata: { ...ref.metadata, labels: { 'app.kubernetes.io/part-of': 'virtops' } }, data: { token: Buffer.from(fresh).toString('base64') } } as Secret);
    if (made) return fresh;
    // Another replica created it first: read theirs.
  }
  throw new Error(`could not create or read Secret ${namespace}/${DASHBOARD_SECRET}`);
}

/** Where the dashboard is, for `virtops dashboard` (an annotation on the Secret). */
export async function recordDashboardUrl(client: KubeClient, namespace: string, url: string): Promise<void> {
  await client.mergePatch({ apiVersion: 'v1', kind: 'Secret', metadata: { name: DASHBOARD_SECRET, namespace } }, { metadata: { annotations: { [DASHBOARD_URL_ANNOTATION]: url } } });
}

export interface ClusterDashboardOptions {
  client: KubeClient;
  access: ClusterAccess;
  /** The controller's namespace (inventory ConfigMap, the login Secret). */
  namespace: string;
  /** The git source: `revision` (sha, when seen) and `refused` ({ sha, errors }). */
  source: EventEmitter;
  /** Where commit messages are read (git dir args). */
  gitDirs: () => string[][];
  log: Logger;
}

/** The dashboard's data over the API server (see the file comment). */
export function clusterData(opts: ClusterDashboardOptions): DashboardData & { start(): Promise<void>; stop(): Promise<void> } {
  const { client, access, log } = opts;
  const changes = new EventEmitter();
  const seenAt = new Map<string, number>();
  let refused: { sha: string; errors: string[]; at: number } | undefined;
  const commit = commitLookup(opts.gitDirs);
  const markVm = (ns: string | undefined, name: string | undefined): void => void (name && changes.emit('vm', ns ?? 'default', name));

  const vms: Informer<VirtualMachine & KubernetesObject> = client.informer(
    { path: '/apis/kubevirt.io/v1/virtualmachines', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine' },
    (_t, o) => markVm(o.metadata?.namespace, o.metadata?.name),
    log.child({ informer: 'dashboard-vms' }),
  );
  const vmis: Informer<VirtualMachineInstance & KubernetesObject> = client.informer(
    { path: '/apis/kubevirt.io/v1/virtualmachineinstances', apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance' },
    (_t, o) => markVm(o.metadata?.namespace, o.metadata?.name),
    log.child({ informer: 'dashboard-vmis' }),
  );
  const pods: Informer<Pod> = client.informer(
    { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', labelSelector: 'kubevirt.io=virt-launcher' },
    (_t, o) => markVm(o.metadata?.namespace, o.metadata?.labels?.[LABEL_VM_NAME]),
    log.child({ informer: 'dashboard-pods' }),
  );
  const inventory: Informer<ConfigMap> = client.informer(
    { path: `/api/v1/namespaces/${opts.namespace}/configmaps`, apiVersion: 'v1', kind: 'ConfigMap', namespace: opts.namespace, fieldSelector: `metadata.name=${INVENTORY_CONFIGMAP}` },
    () => void changes.emit('applied'),
    log.child({ informer: 'dashboard-inventory' }),
  );
  const onRevision = (r: { sha: string }): void => {
    if (!seenAt.has(r.sha)) seenAt.set(r.sha, Date.now());
    changes.emit('applied');
  };
  const onRefused = (r: { sha: string; errors: string[] }): void => {
    refused = { sha: r.sha, errors: r.errors, at: Date.now() };
    changes.emit('applied');
  };

  const podOf = (vmi: VirtualMachineInstance | undefined): Pod | undefined => {
    const uid = vmi?.metadata.uid;
    return uid ? pods.list(vmi.metadata.namespace).find((p) => p.metadata?.labels?.[LABEL_CREATED_BY] === uid) : undefined;
  };
  const view = (vm: VirtualMachine): VmView => {
    const vmi = vmis.get(vm.metadata.name ?? '', vm.metadata.namespace);
    return clusterVmView(vm, vmi, podOf(vmi));
  };
  const appliedSha = (): string | undefined => inventory.get(INVENTORY_CONFIGMAP, opts.namespace)?.data?.['revision'] || undefined;
  const statusCounts = (): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const vm of vms.list()) {
      const s = dashboardRow(view(vm)).status;
      counts[s] = (counts[s] ?? 0) + 1;
    }
    return counts;
  };

  return {
    changes,
    tokenHint: `run "virtops dashboard --kubeconfig <file> --controller-namespace ${opts.namespace}" for the login link (it reads Secret ${opts.namespace}/${DASHBOARD_SECRET})`,
    list: () => vms.list().map(view),
    get: (ns, name) => {
      const vm = vms.get(name, ns);
      return vm ? view(vm) : undefined;
    },
    get appliedRevision() {
      const sha = appliedSha();
      return { ...(sha ? { sha } : {}), ...(sha && seenAt.has(sha) ? { seenAt: seenAt.get(sha)! } : {}) };
    },
    statusCounts,
    async summary() {
      const cm = inventory.get(INVENTORY_CONFIGMAP, opts.namespace);
      const sha = appliedSha();
      const counts = statusCounts();
      // A refusal older than the applied revision's arrival is history: the overview shows the live one.
      const r = refused && !(sha && refused.sha === sha) ? refused : undefined;
      return {
        revision: sha ?? null,
        appliedAt: null,
        health: cm?.data?.['health'] ?? null,
        commit: await commit(sha),
        refused: r ? { ...r, at: new Date(r.at).toISOString(), commit: await commit(r.sha) } : null,
        sourceError: null,
        counts,
        total: Object.values(counts).reduce((x, y) => x + y, 0),
      };
    },
    async vmDetail(ns, name) {
      const vm = vms.get(name, ns);
      if (!vm) return undefined;
      const v = view(vm);
      const sha = appliedSha();
      const seen = sha && v.revision === sha && seenAt.has(sha) ? { sha, seenAt: new Date(seenAt.get(sha)!).toISOString(), commit: await commit(sha) } : null;
      return { spec: specSummary(vm as unknown as Parameters<typeof specSummary>[0]) ?? null, files: [], revisionSeen: seen };
    },
    async diff() {
      const sha = appliedSha();
      return {
        ...(sha ? { applied: sha } : {}),
        entries: [],
        note: 'cluster mode: the controller applies each good revision as soon as git has it; for a dry run of a checkout against the cluster, run virtops diff --kubeconfig <file> in it',
      };
    },
    async vmView(ns, name) {
      // The describe of `virtops describe vm --kubeconfig`: VM, VMI, launcher Pod, events.
      const d = (await access.describe(ns, name).catch((err: unknown) => {
        if (/not found/.test((err as Error).message)) return undefined;
        throw err;
      }))?.data as { vm: VirtualMachine; vmi?: VirtualMachineInstance; pod?: Pod; events: KubeEvent[] } | undefined;
      if (!d) return undefined;
      return { ...clusterVmView(d.vm, d.vmi, d.pod ?? podOf(d.vmi), d.events), appliedRevision: appliedSha() ?? null };
    },
    async act(ns, name, action) {
      const line = await access.act(ns, name, action);
      log.info({ vm: `${ns}/${name}`, action }, 'dashboard: override requested');
      const v = (await this.vmView!(ns, name)) as VmView | undefined;
      return { ...(v ?? {}), message: line };
    },
    async console(ns, name): Promise<ConsoleTarget | { error: string }> {
      const vmi = vmis.get(name, ns);
      if (!vmi) return { error: `VM ${ns}/${name} has no VirtualMachineInstance: it is not running (press Start)` };
      if (vmi.status?.phase !== 'Running' || !vmi.status.nodeName) return { error: `VMI ${ns}/${name} is ${vmi.status?.phase ?? 'Pending'}: the console is there once it is Running` };
      return {
        key: `${ns}/${name}/${vmi.metadata.uid ?? ''}`,
        tail: async () => Buffer.alloc(0),
        // `virtops console --kubeconfig`'s path: the agent's endpoint through nodes/<node>/proxy.
        connect: async () => {
          const c = await access.console(ns, name).catch((err: unknown) => {
            // The close reason holds ~120 bytes: the fix first. ClusterAccess ends a refusal
            // (code 403, nodes/proxy or pods/exec) with "(the console needs <RBAC>)".
            const message = (err as Error).message;
            const needs = (err as { code?: number }).code === 403 ? /\(the console needs ([^)]*)\)$/.exec(message)?.[1] : undefined;
            throw new Error(needs ? `the controller needs ${needs}` : message);
          });
          return { socket: c.socket, ...(c.head ? { head: c.head } : {}) };
        },
      };
    },
    async start() {
      opts.source.on('revision', onRevision);
      opts.source.on('refused', onRefused);
      // Not awaited: before the first revision the cluster may have no VM CRDs yet (the informers
      // retry until it does); the page shows an empty list meanwhile.
      for (const i of [vms, vmis, pods, inventory]) void i.start().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'dashboard informer failed to start'));
    },
    async stop() {
      opts.source.off('revision', onRevision);
      opts.source.off('refused', onRefused);
      await Promise.all([vms.stop(), vmis.stop(), pods.stop(), inventory.stop()]);
    },
  };
}

export interface ClusterDashboard {
  /** e.g. http://127.0.0.1:8687 */
  url: string;
  stop(): Promise<void>;
}

/** Starts the dashboard listener of the controller (`--dashboard-listen`). */
export async function startClusterDashboard(opts: ClusterDashboardOptions & { listen: { host: string; port: number } }): Promise<ClusterDashboard> {
  const assetsDir = await dashboardAssetsDir((m) => opts.log.warn(m));
  if (!assetsDir) throw new Error('--dashboard-listen: the dashboard assets are missing and cannot be built here (node scripts/build-bundles.mjs dashboard)');
  const token = await ensureDashboardToken(opts.client, opts.namespace);
  const data = clusterData(opts);
  await data.start();
  const dash = await createDashboardServer({ data, token, log: opts.log, assetsDir });
  const listener = await startDashboardListener(opts.listen, dash, { token, tokenHint: data.tokenHint, log: opts.log }).catch(async (err: unknown) => {
    dash.close();
    await data.stop();
    throw new Error(`--dashboard-listen ${opts.listen.host}:${opts.listen.port}: ${(err as Error).message}`);
  });
  const host = opts.listen.host === '0.0.0.0' || opts.listen.host === '::' ? '127.0.0.1' : opts.listen.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${listener.port}`;
  await recordDashboardUrl(opts.client, opts.namespace, url).catch((err: unknown) => opts.log.warn({ err: (err as Error).message }, 'dashboard: recording its URL on the Secret failed (virtops dashboard then needs --url)'));
  opts.log.info({ dashboard: url, secret: `${opts.namespace}/${DASHBOARD_SECRET}` }, 'dashboard: virtops dashboard --kubeconfig <file> prints the login link');
  return {
    url,
    stop: async () => {
      await listener.close();
      dash.close();
      await data.stop();
    },
  };
}

/**
 * The dashboard of a running controller (`virtops controller --dashboard-listen`): its API
 * client and credentials, its namespace and its git source.
 */
export async function startControllerDashboard(
  handle: { client: KubeClient; source: EventEmitter },
  config: { kubeconfig?: string; namespace: string; repo: string },
  listen: { host: string; port: number },
  log: Logger,
): Promise<ClusterDashboard> {
  const [{ KubeRest: Rest }, { ClusterAccess }, { HttpKubeClient, loadKubeConfig }] = await Promise.all([import('../../cli/kube-rest.js'), import('../../cli/cluster-access.js'), import('./kube.js')]);
  const kc = handle.client instanceof HttpKubeClient ? handle.client.kc : loadKubeConfig(config.kubeconfig);
  const access = ClusterAccess.fromRest(Rest.live(kc), config.namespace);
  return startClusterDashboard({
    client: handle.client, access, namespace: config.namespace, source: handle.source, log, listen,
    // The commit's message: from the repository when it is a local path, else from the source's clone.
    gitDirs: () => [...(existsSync(config.repo) ? [['--git-dir', config.repo], ['-C', config.repo]] : [])],
  });
}
