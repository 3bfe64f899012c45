/**
 * The cluster mode's one door to the Kubernetes API. Every call the controller, the node
 * agent, the leader elector and the applier make goes through the `KubeClient` interface,
 * so that (a) the calls they make are listed in one place, next to the RBAC rules that must
 * allow them (synth/install.ts), and (b) tests can substitute an in-memory fake
 * (test/helpers/fake-kube.ts) for the API server.
 *
 * `HttpKubeClient` is the real one. Its requests are plain JSON over HTTPS (cli/kube-rest.ts,
 * `KubeRest.live`); @kubernetes/client-node supplies the kubeconfig (`KubeConfig`: files,
 * in-cluster service accounts, exec and auth-provider plugins, proxies), the watch stream
 * (`Watch`) and the informer cache (`ListWatch`), each imported from its own module. Not its
 * generated API classes and models: the package index loads all of them (~12 MiB of a daemon's
 * memory, BENCHMARKS.md), while virtops reads and writes manifests as the JSON the API server
 * speaks. The bundles keep those modules from pulling the generated code in
 * (scripts/build-bundles.mjs, `clientNodeSlim`). It counts every write per verb and resource
 * (the benchmark's "API writes per VM").
 */
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { Watch } from '@kubernetes/client-node/dist/watch.js';
import type { CoreV1Event, KubernetesListObject, KubernetesObject, V1Lease, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import type { Agent } from 'node:http';
import { KubeApiError, KubeRest, resourcePath, type ApiResource, type PatchType } from '../../cli/kube-rest.js';
import { EVENT_AGGREGATION_WINDOW_MS } from '../core/events.js';
import { ResilientInformer, type Informer, type InformerHandler, type InformerSpec } from './informer.js';

export type { Informer, InformerHandler, InformerSpec } from './informer.js';

export const FIELD_MANAGER = 'virtops';

export const KUBEVIRT_GROUP = 'kubevirt.io';
export const KUBEVIRT_VERSION = 'v1';

export type WriteVerb = 'apply' | 'create' | 'update' | 'patch' | 'patch-status' | 'delete';

export interface WriteRecord {
  verb: WriteVerb;
  /** `pods`, `virtualmachines/status`, ... */
  resource: string;
  namespace?: string;
  name: string;
}

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error(`--kubeconfig ${path ?? '(default)'}: no current cluster; pass a kubeconfig whose current-context names a cluster`);
  }
  return kc;
}

/**
 * How long one API request (not a watch) may take. Without a deadline a
 * request that never answers (seen across API server restarts: a connection to the old
 * server's port that nothing serves) would hold its reconcile, and with it that object,
 * for good. The API server gives up on its own after 60 s; normal requests take
 * milliseconds.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * One keep-alive agent per distinct connection setup, instead of the new https.Agent that
 * client-node makes for every request (KubeConfig.createAgent): without it every API call
 * opened a TLS connection of its own, a handshake per write (most of the controller's CPU
 * while 1,000 VMs start) and per-connection OpenSSL buffers that fragmented the malloc heap
 * (130–180 MiB of the controller's RSS at 1,000 VMs). Watches hold a socket each for their
 * duration; other calls reuse idle ones; a socket the server closed while idle is dropped
 * by the agent. The agent gets no socket timeout (client-node would pass the first caller's
 * `timeout`): each request has its own deadline (REQUEST_TIMEOUT_MS, the informers' watch
 * deadline).
 */
export function withSharedAgent(kc: KubeConfig): KubeConfig {
  type MakeAgent = (cluster: { server?: string; proxyUrl?: string } | null, options: Record<string, unknown>) => Agent;
  const target = kc as unknown as { createAgent: MakeAgent };
  const make = target.createAgent.bind(kc);
  const agents = new Map<string, Agent>();
  target.createAgent = (cluster, options) => {
    const { timeout: _perRequest, ...rest } = options;
    const h = createHash('sha256').update(`${cluster?.server ?? ''}\0${cluster?.proxyUrl ?? ''}\0`);
    for (const k of Object.keys(rest).sort()) {
      const v = rest[k];
      if (v === undefined) continue;
      h.update(k).update('\0');
      if (typeof v === 'string' || Buffer.isBuffer(v)) h.update(v);
      else h.update(JSON.stringify(v) ?? String(v));
      h.update('\0');
    }
    const key = h.digest('hex');
    let agent = agents.get(key);
    if (!agent) {
      agent = make(cluster, { ...rest, keepAlive: true });
      agents.set(key, agent);
    }
    return agent;
  };
  return kc;
}

/** An HTTP error from the API server (with `code` if given). */
export function isApiError(err: unknown, code?: number): boolean {
  const c = (err as { code?: unknown } | null)?.code;
  if (typeof c !== 'number') return false;
  return code === undefined || c === code;
}

export function errorMessage(err: unknown): string {
  if (err instanceof KubeApiError) return `HTTP ${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export type DeletePropagation = 'Background' | 'Foreground' | 'Orphan';

/** A reference to one object: what read() needs. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

/**
 * Every Kubernetes API call cluster mode makes. Contracts (the fake in
 * test/helpers/fake-kube.ts follows them):
 *
 * - `read`/`readLease`: undefined when absent (404); other errors throw.
 * - `create`/`createNode`/`createLease`: undefined on AlreadyExists (409).
 * - `updateLease`: undefined on a resourceVersion conflict (409).
 * - `delete`: 'absent' when there is nothing of that name (404) or, with `preconditionUid`,
 *   when the object of that name has another uid (409); the object may stay, terminating,
 *   while finalizers remain.
 * - `mergePatch`, `patchCustomStatus`, `patchPodStatus`, `patchNodeStatus`: throw an error
 *   with `code` 404 when the object is absent, 409 when a `metadata.resourceVersion` in the
 *   patch is not the current one.
 * - `event`: records an Event about `involved` (its failure is the caller's to ignore).
 * - `informer`: a cache of one kind (optionally filtered by label/field selector) that calls
 *   `handler` on add/update/delete; not started until `start()`.
 */
export interface KubeClient {
  /** Server-side apply with field manager `virtops`, forcing ownership of the fields git declares. */
  apply<T extends KubernetesObject>(obj: T): Promise<T>;
  read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined>;
  /** Deletes; absent is fine. `preconditionUid` makes sure a newer object of the same name is never hit. */
  delete(ref: KubernetesObject, opts?: { gracePeriodSeconds?: number; propagationPolicy?: DeletePropagation; preconditionUid?: string }): Promise<'deleted' | 'absent'>;
  /** Creates; on AlreadyExists returns undefined (callers read the existing object). */
  create<T extends KubernetesObject>(obj: T): Promise<T | undefined>;
  /** JSON merge patch of the main resource (metadata: finalizers, labels). */
  mergePatch<T extends KubernetesObject>(ref: KubernetesObject, patch: Record<string, unknown>): Promise<T>;
  /** JSON merge patch of the status subresource of a VM, VMI or VirtualMachinePool: `{ status }`. */
  patchCustomStatus(plural: 'virtualmachines' | 'virtualmachineinstances' | 'virtualmachinepools' | 'datavolumes' | 'virtualmachinesnapshots' | 'virtualmachinerestores', namespace: string, name: string, status: unknown): Promise<void>;
  patchPodStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<V1Pod>;
  /** Creates a Node; undefined if it exists. */
  createNode(node: V1Node): Promise<V1Node | undefined>;
  patchNodeStatus(name: string, status: Record<string, unknown>): Promise<void>;
  /** Deletes a Pod with grace 0, only if it still has `uid` (kubelet's last step). */
  deletePodNow(namespace: string, name: string, uid: string): Promise<void>;
  readLease(namespace: string, name: string): Promise<V1Lease | undefined>;
  /** Creates a lease; undefined if someone else created it first. */
  createLease(lease: V1Lease): Promise<V1Lease | undefined>;
  /** Replaces a lease at its resourceVersion; undefined on a conflict (someone else wrote it). */
  updateLease(lease: V1Lease): Promise<V1Lease | undefined>;
  event(involved: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string): Promise<void>;
  informer<T extends KubernetesObject>(spec: InformerSpec, handler: InformerHandler<T>, log: Logger): Informer<T>;
}

export class HttpKubeClient implements KubeClient {
  readonly rest: KubeRest;
  readonly watch: Watch;
  /** Every write, in order (bounded by `maxRecords`; the counters are not). */
  readonly writes: WriteRecord[] = [];
  readonly counts = new Map<string, number>();
  private readonly maxRecords: number;

  constructor(readonly kc: KubeConfig, opts: { maxRecords?: number; requestTimeoutMs?: number } = {}) {
    withSharedAgent(kc);
    this.rest = KubeRest.live(kc, { timeoutMs: opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, userAgent: 'virtops' });
    this.watch = new Watch(kc);
    this.maxRecords = opts.maxRecords ?? 100_000;
  }

  get totalWrites(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  private record(verb: WriteVerb, resource: string, name: string, namespace?: string): void {
    const key = `${verb} ${resource}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (this.writes.length < this.maxRecords) this.writes.push({ verb, resource, name, ...(namespace ? { namespace } : {}) });
  }

  private call<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, patch?: PatchType): Promise<T> {
    return this.rest.call<T>(method, path, body, patch);
  }

  // ---- paths -----------------------------------------------------------------------------

  /** The resource serving `kind` in `apiVersion` (KubeRest's API discovery); throws, naming the fix, when none does. */
  private async resourceOf(apiVersion: string, kind: string): Promise<ApiResource> {
    const r = await this.rest.resource(apiVersion, kind);
    if (!r) throw new Error(`the API server serves no kind ${kind} in ${apiVersion}; check the manifest's apiVersion and kind, or install its CRD`);
    return r;
  }

  /** The object's path (its collection's with `withName` false); a namespaced object without a namespace is in `default`. */
  private async objectPath(obj: Pick<KubernetesObject, 'apiVersion' | 'kind' | 'metadata'>, withName = true): Promise<string> {
    if (!obj.apiVersion || !obj.kind) throw new Error(`an object without apiVersion or kind (${JSON.stringify(obj.metadata?.name ?? '')}): every manifest needs both`);
    if (withName && !obj.metadata?.name) throw new Error(`a ${obj.kind} without metadata.name: every object needs a name`);
    const r = await this.resourceOf(obj.apiVersion, obj.kind);
    return resourcePath(obj.apiVersion, r, obj.metadata?.namespace || 'default', withName ? obj.metadata!.name : undefined);
  }

  // ---- generic objects -----------------------------------------------------------------

  /** Server-side apply with field manager `virtops`, forcing ownership of the fields git declares. */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    const path = await this.objectPath(obj);
    this.record('apply', resourceOf(obj), obj.metadata?.name ?? '', obj.metadata?.namespace);
    return this.call<T>('PATCH', `${path}?fieldManager=${FIELD_MANAGER}&force=true`, obj, 'apply');
  }

  async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await this.call<T>('GET', await this.objectPath(ref));
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Objects of one kind, optionally in one namespace and by selector (what informers list). */
  async list<T extends KubernetesObject>(apiVersion: string, kind: string, opts: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {}): Promise<KubernetesListObject<T>> {
    const path = resourcePath(apiVersion, await this.resourceOf(apiVersion, kind), opts.namespace);
    const query = new URLSearchParams();
    if (opts.labelSelector) query.set('labelSelector', opts.labelSelector);
    if (opts.fieldSelector) query.set('fieldSelector', opts.fieldSelector);
    const q = query.toString();
    return this.call<KubernetesListObject<T>>('GET', q ? `${path}?${q}` : path);
  }

  /** Deletes; absent is fine. `preconditionUid` makes sure a newer object of the same name is never hit. */
  async delete(ref: KubernetesObject, opts: { gracePeriodSeconds?: number; propagationPolicy?: DeletePropagation; preconditionUid?: string } = {}): Promise<'deleted' | 'absent'> {
    const path = await this.objectPath(ref);
    this.record('delete', resourceOf(ref), ref.metadata?.name ?? '', ref.metadata?.namespace);
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      ...(opts.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: opts.gracePeriodSeconds } : {}),
      ...(opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : {}),
      ...(opts.preconditionUid ? { preconditions: { uid: opts.preconditionUid } } : {}),
    };
    try {
      await this.call('DELETE', path, body);
      return 'deleted';
    } catch (err) {
      // 409 on a uid precondition: the object of that name is a newer one; ours is gone.
      if (isApiError(err, 404) || (opts.preconditionUid && isApiError(err, 409))) return 'absent';
      throw err;
    }
  }

  /** Creates; on AlreadyExists returns undefined (callers read the existing object). */
  async create<T extends KubernetesObject>(obj: T): Promise<T | undefined> {
    const path = await this.objectPath(obj, false);
    this.record('create', resourceOf(obj), obj.metadata?.name ?? '', obj.metadata?.namespace);
    try {
      return await this.call<T>('POST', `${path}?fieldManager=${FIELD_MANAGER}`, obj);
    } catch (err) {
      if (isApiError(err, 409)) return undefined;
      throw err;
    }
  }

  /** JSON merge patch of the main resource (metadata: finalizers, labels). */
  async mergePatch<T extends KubernetesObject>(ref: KubernetesObject, patch: Record<string, unknown>): Promise<T> {
    const path = await this.objectPath(ref);
    this.record('patch', resourceOf(ref), ref.metadata?.name ?? '', ref.metadata?.namespace);
    return this.call<T>('PATCH', `${path}?fieldManager=${FIELD_MANAGER}`, patch, 'merge');
  }

  // ---- status subresources ---------------------------------------------------------------

  async patchCustomStatus(plural: 'virtualmachines' | 'virtualmachineinstances' | 'virtualmachinepools' | 'datavolumes' | 'virtualmachinesnapshots' | 'virtualmachinerestores', namespace: string, name: string, status: unknown): Promise<void> {
    this.record('patch-status', `${plural}/status`, name, namespace);
    // Pools are pool.kubevirt.io/v1beta1 (reconciler/cluster/pool-controller.ts).
    // DataVolumes are cdi.kubevirt.io/v1beta1 (reconciler/cluster/datavolumes.ts).
    // Snapshots and restores are snapshot.kubevirt.io/v1beta1 (reconciler/cluster/snapshots.ts).
    const [group, version] = plural === 'virtualmachinepools' ? ['pool.kubevirt.io', 'v1beta1']
      : plural === 'datavolumes' ? ['cdi.kubevirt.io', 'v1beta1']
      : plural === 'virtualmachinesnapshots' || plural === 'virtualmachinerestores' ? ['snapshot.kubevirt.io', 'v1beta1']
      : [KUBEVIRT_GROUP, KUBEVIRT_VERSION];
    await this.call('PATCH', `/apis/${group}/${version}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}/status?fieldManager=${FIELD_MANAGER}`, { status }, 'merge');
  }

  async patchPodStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<V1Pod> {
    this.record('patch-status', 'pods/status', name, namespace);
    return this.call<V1Pod>('PATCH', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/status?fieldManager=${FIELD_MANAGER}`, { status }, 'merge');
  }

  async createNode(node: V1Node): Promise<V1Node | undefined> {
    return this.create(node as KubernetesObject) as Promise<V1Node | undefined>;
  }

  async patchNodeStatus(name: string, status: Record<string, unknown>): Promise<void> {
    this.record('patch-status', 'nodes/status', name);
    await this.call('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}/status?fieldManager=${FIELD_MANAGER}`, { status }, 'merge');
  }

  async deletePodNow(namespace: string, name: string, uid: string): Promise<void> {
    await this.delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace } }, { gracePeriodSeconds: 0, preconditionUid: uid });
  }

  // ---- leases ----------------------------------------------------------------------------

  async readLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    try {
      return await this.call<V1Lease>('GET', leasePath(namespace, name));
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Creates a lease; undefined if someone else created it first. */
  async createLease(lease: V1Lease): Promise<V1Lease | undefined> {
    const body = withMicroTimes(lease);
    this.record('create', 'leases', lease.metadata?.name ?? '', lease.metadata?.namespace);
    try {
      return await this.call<V1Lease>('POST', `${leasePath(lease.metadata!.namespace!)}?fieldManager=${FIELD_MANAGER}`, body);
    } catch (err) {
      if (isApiError(err, 409)) return undefined;
      throw err;
    }
  }

  /** Replaces a lease at its resourceVersion; undefined on a conflict (someone else wrote it). */
  async updateLease(lease: V1Lease): Promise<V1Lease | undefined> {
    const body = withMicroTimes(lease);
    this.record('update', 'leases', lease.metadata?.name ?? '', lease.metadata?.namespace);
    try {
      return await this.call<V1Lease>('PUT', `${leasePath(lease.metadata!.namespace!, lease.metadata!.name!)}?fieldManager=${FIELD_MANAGER}`, body);
    } catch (err) {
      if (isApiError(err, 409)) return undefined;
      throw err;
    }
  }

  // ---- events ----------------------------------------------------------------------------

  /** The events this client wrote lately, by what makes them the same (for counting repeats). */
  private readonly recentEvents = new Map<string, { event: CoreV1Event; at: number }>();

  /**
   * Records an event; the same one (object, type, reason, message) again within 10 minutes is
   * one more `count` and a new `lastTimestamp` on the existing Event, as client-go's event
   * correlator does, so a repeating condition is one Event, not one per occurrence.
   */
  async event(involved: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string): Promise<void> {
    const ns = involved.metadata?.namespace ?? 'default';
    const now = new Date();
    const key = [ns, involved.kind, involved.metadata?.uid ?? involved.metadata?.name, type, reason, message].join('\0');
    const prev = this.recentEvents.get(key);
    const events = `/api/v1/namespaces/${encodeURIComponent(ns)}/events`;
    if (prev && now.getTime() - prev.at < EVENT_AGGREGATION_WINDOW_MS && prev.event.metadata?.name) {
      this.record('update', 'events', reason, ns);
      try {
        const event = await this.call<CoreV1Event>('PUT', `${events}/${encodeURIComponent(prev.event.metadata.name)}`, { ...prev.event, count: (prev.event.count ?? 1) + 1, lastTimestamp: now });
        this.rememberEvent(key, event, now.getTime());
        return;
      } catch {
        // Gone (events expire) or changed meanwhile: record a new one.
      }
    }
    this.record('create', 'events', reason, ns);
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${involved.metadata?.name ?? 'virtops'}.`, namespace: ns },
      involvedObject: {
        apiVersion: involved.apiVersion,
        kind: involved.kind,
        name: involved.metadata?.name,
        namespace: ns,
        uid: involved.metadata?.uid,
        resourceVersion: involved.metadata?.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component },
      reportingComponent: component,
      reportingInstance: component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const created = await this.call<CoreV1Event>('POST', events, body);
    this.rememberEvent(key, created, now.getTime());
  }

  private rememberEvent(key: string, event: CoreV1Event, at: number): void {
    this.recentEvents.delete(key); // re-inserted last: the map stays in least-recently-used order
    this.recentEvents.set(key, { event, at });
    if (this.recentEvents.size > 1000) this.recentEvents.delete(this.recentEvents.keys().next().value!);
  }

  // ---- informers -------------------------------------------------------------------------

  /** A list+watch cache that restarts with backoff after errors (informer.ts). */
  informer<T extends KubernetesObject>(spec: InformerSpec, handler: InformerHandler<T>, log: Logger): ResilientInformer<T> {
    return new ResilientInformer<T>(this, spec, handler, log);
  }
}

function leasePath(namespace: string, name?: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

/** A MicroTime (RFC 3339 with microseconds): the API server rejects lease times without them. */
function microTime(t: Date | string | number): string {
  return new Date(t).toISOString().replace(/Z$/, '000Z');
}

/** The lease with its times as MicroTimes. */
function withMicroTimes(lease: V1Lease): V1Lease {
  const spec = lease.spec;
  if (!spec) return lease;
  const micro = (t: Date | undefined) => (t === undefined ? undefined : (microTime(t) as unknown as Date));
  return {
    ...lease,
    spec: {
      ...spec,
      ...(spec.acquireTime ? { acquireTime: micro(spec.acquireTime) } : {}),
      ...(spec.renewTime ? { renewTime: micro(spec.renewTime) } : {}),
    },
  };
}

/** Lower-case plural resource name for counting (good enough for the kinds virtops writes). */
export function resourceOf(obj: Pick<KubernetesObject, 'kind'>): string {
  const kind = (obj.kind ?? 'unknown').toLowerCase();
  if (kind.endsWith('s')) return `${kind}es`;
  if (kind.endsWith('y')) return `${kind.slice(0, -1)}ies`;
  return `${kind}s`;
}
