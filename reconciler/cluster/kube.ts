/**
 * The cluster mode's one door to the Kubernetes API. Every call the controller, the node
 * agent, the leader elector and the applier make goes through the `KubeClient` interface,
 * so that (a) the calls they make are listed in one place, next to the RBAC rules that must
 * allow them (synth/install.ts), and (b) tests can substitute an in-memory fake
 * (test/helpers/fake-kube.ts) for the API server.
 *
 * `HttpKubeClient` is the real one: thin wrappers over @kubernetes/client-node 1.4
 * (`KubernetesObjectApi` for generic CRUD and server-side apply, the typed APIs for status
 * subresources and leases, `ResilientInformer` for informers). It counts every write per
 * verb and resource (the benchmark's "API writes per VM").
 */
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  V1MicroTime,
  Watch,
  setHeaderOptions,
  type CoreV1Event,
  type KubernetesObject,
  type V1Lease,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';

// The wrapper client-node's KubernetesObjectApi serializes with; not re-exported by the
// package index (see passThrough below).
import { ObjectSerializer as KubeObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import type { Agent } from 'node:http';
import { EVENT_AGGREGATION_WINDOW_MS } from '../core/events.js';
import { ResilientInformer, type Informer, type InformerHandler, type InformerSpec } from './informer.js';

export type { Informer, InformerHandler, InformerSpec } from './informer.js';

export const FIELD_MANAGER = 'virtops';

/**
 * client-node serializes objects of kinds it has models for (CRDs, Pods, ...) through those
 * models, reading TypeScript property names: a manifest from git, which uses JSON names,
 * loses every field whose two names differ (`x-kubernetes-int-or-string`, `$ref`, ...).
 * Server-side apply must send git's manifest as it is, so kinds virtops applies or creates
 * from manifests are registered as pass-through (reads of them are plain JSON as well).
 */
const passThroughKinds = new Set<string>();
export function passThrough(apiVersion: string, kind: string): void {
  const key = `${apiVersion}/${kind}`;
  if (passThroughKinds.has(key)) return;
  passThroughKinds.add(key);
  const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
  KubeObjectSerializer.registerModel({ group, version, kind }, { serialize: (d: unknown) => d, deserialize: (d: unknown) => d });
}
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
 * How long one API request (not a watch) may take. client-node sets no timeout, and a
 * request that never answers (seen across API server restarts: a connection to the old
 * server's port that nothing serves) would hold its reconcile, and with it that object,
 * for good. The API server gives up on its own after 60 s; normal requests take
 * milliseconds.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Gives every request made through `kc`'s API clients a deadline (client-node calls the
 * kubeconfig's applySecurityAuthentication for each one; watches do not go through it).
 */
export function withRequestTimeout(kc: KubeConfig, ms: number): KubeConfig {
  const apply = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (context) => {
    await apply(context);
    if (!context.getSignal()) context.setSignal(AbortSignal.timeout(ms));
  };
  return kc;
}

/**
 * One keep-alive agent per distinct connection setup, instead of the new https.Agent that
 * client-node makes for every request (KubeConfig.createAgent): without it every API call
 * opened a TLS connection of its own, a handshake per write (most of the controller's CPU
 * while 1,000 VMs start) and per-connection OpenSSL buffers that fragmented the malloc heap
 * (130–180 MiB of the controller's RSS at 1,000 VMs). Watches hold a socket each for their
 * duration; other calls reuse idle ones; a socket the server closed while idle is dropped
 * by the agent. The agent gets no socket timeout (client-node would pass the first caller's
 * `timeout`): each request has its own deadline (withRequestTimeout, the informers' watch
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
  if (err instanceof ApiException) {
    const body = err.body as { message?: string } | string | undefined;
    const msg = typeof body === 'string' ? safeMessage(body) : body?.message;
    return `HTTP ${err.code}: ${msg ?? err.message}`;
  }
  if (err instanceof Error && err.name === 'AbortError') return `the API server did not answer within ${REQUEST_TIMEOUT_MS / 1000}s (request given up; it is retried)`;
  return err instanceof Error ? err.message : String(err);
}

function safeMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body;
  }
}

const mergePatch = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

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
  readonly objects: KubernetesObjectApi;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly watch: Watch;
  /** Every write, in order (bounded by `maxRecords`; the counters are not). */
  readonly writes: WriteRecord[] = [];
  readonly counts = new Map<string, number>();
  private readonly maxRecords: number;

  constructor(readonly kc: KubeConfig, opts: { maxRecords?: number; requestTimeoutMs?: number } = {}) {
    withRequestTimeout(kc, opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
    withSharedAgent(kc);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
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

  // ---- generic objects -----------------------------------------------------------------

  /** Server-side apply with field manager `virtops`, forcing ownership of the fields git declares. */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    passThrough(obj.apiVersion ?? '', obj.kind ?? '');
    this.record('apply', resourceOf(obj), obj.metadata?.name ?? '', obj.metadata?.namespace);
    return this.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return (await this.objects.read(ref as KubernetesObject & { metadata: { name: string } })) as T;
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Deletes; absent is fine. `preconditionUid` makes sure a newer object of the same name is never hit. */
  async delete(ref: KubernetesObject, opts: { gracePeriodSeconds?: number; propagationPolicy?: DeletePropagation; preconditionUid?: string } = {}): Promise<'deleted' | 'absent'> {
    this.record('delete', resourceOf(ref), ref.metadata?.name ?? '', ref.metadata?.namespace);
    try {
      await this.objects.delete(
        ref,
        undefined,
        undefined,
        opts.gracePeriodSeconds,
        undefined,
        opts.propagationPolicy,
        opts.preconditionUid ? { preconditions: { uid: opts.preconditionUid } } : undefined,
      );
      return 'deleted';
    } catch (err) {
      // 409 on a uid precondition: the object of that name is a newer one; ours is gone.
      if (isApiError(err, 404) || (opts.preconditionUid && isApiError(err, 409))) return 'absent';
      throw err;
    }
  }

  /** Creates; on AlreadyExists returns undefined (callers read the existing object). */
  async create<T extends KubernetesObject>(obj: T): Promise<T | undefined> {
    passThrough(obj.apiVersion ?? '', obj.kind ?? '');
    this.record('create', resourceOf(obj), obj.metadata?.name ?? '', obj.metadata?.namespace);
    try {
      return await this.objects.create(obj, undefined, undefined, FIELD_MANAGER);
    } catch (err) {
      if (isApiError(err, 409)) return undefined;
      throw err;
    }
  }

  /** JSON merge patch of the main resource (metadata: finalizers, labels). */
  async mergePatch<T extends KubernetesObject>(ref: KubernetesObject, patch: Record<string, unknown>): Promise<T> {
    this.record('patch', resourceOf(ref), ref.metadata?.name ?? '', ref.metadata?.namespace);
    const body = { apiVersion: ref.apiVersion, kind: ref.kind, ...patch, metadata: { name: ref.metadata?.name, namespace: ref.metadata?.namespace, ...(patch['metadata'] as object | undefined) } };
    return (await this.objects.patch(body as KubernetesObject, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch)) as T;
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
    await this.custom.patchNamespacedCustomObjectStatus(
      { group, version, namespace, plural, name, body: { status }, fieldManager: FIELD_MANAGER },
      mergePatch(),
    );
  }

  async patchPodStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<V1Pod> {
    this.record('patch-status', 'pods/status', name, namespace);
    return this.core.patchNamespacedPodStatus({ namespace, name, body: { status }, fieldManager: FIELD_MANAGER }, mergePatch());
  }

  async createNode(node: V1Node): Promise<V1Node | undefined> {
    return this.create(node as KubernetesObject) as Promise<V1Node | undefined>;
  }

  async patchNodeStatus(name: string, status: Record<string, unknown>): Promise<void> {
    this.record('patch-status', 'nodes/status', name);
    await this.core.patchNodeStatus({ name, body: { status }, fieldManager: FIELD_MANAGER }, mergePatch());
  }

  async deletePodNow(namespace: string, name: string, uid: string): Promise<void> {
    await this.delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace } }, { gracePeriodSeconds: 0, preconditionUid: uid });
  }

  // ---- leases ----------------------------------------------------------------------------

  async readLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    try {
      return await this.coordination.readNamespacedLease({ namespace, name });
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Creates a lease; undefined if someone else created it first. */
  async createLease(lease: V1Lease): Promise<V1Lease | undefined> {
    lease = withMicroTimes(lease);
    this.record('create', 'leases', lease.metadata?.name ?? '', lease.metadata?.namespace);
    try {
      return await this.coordination.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease, fieldManager: FIELD_MANAGER });
    } catch (err) {
      if (isApiError(err, 409)) return undefined;
      throw err;
    }
  }

  /** Replaces a lease at its resourceVersion; undefined on a conflict (someone else wrote it). */
  async updateLease(lease: V1Lease): Promise<V1Lease | undefined> {
    lease = withMicroTimes(lease);
    this.record('update', 'leases', lease.metadata?.name ?? '', lease.metadata?.namespace);
    try {
      return await this.coordination.replaceNamespacedLease({ namespace: lease.metadata!.namespace!, name: lease.metadata!.name!, body: lease, fieldManager: FIELD_MANAGER });
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
    if (prev && now.getTime() - prev.at < EVENT_AGGREGATION_WINDOW_MS && prev.event.metadata?.name) {
      this.record('update', 'events', reason, ns);
      try {
        const event = await this.core.replaceNamespacedEvent({ name: prev.event.metadata.name, namespace: ns, body: { ...prev.event, count: (prev.event.count ?? 1) + 1, lastTimestamp: now } });
        this.rememberEvent(key, event, now.getTime());
        return;
      } catch {
        // Gone (events expire) or changed meanwhile: record a new one.
      }
    }
    this.record('create', 'events', reason, ns);
    const created = await this.core.createNamespacedEvent({
      namespace: ns,
      body: {
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
      },
    });
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

/** Lease times are MicroTime: the API server rejects millisecond timestamps there. */
function withMicroTimes(lease: V1Lease): V1Lease {
  const spec = lease.spec;
  if (!spec) return lease;
  const micro = (t: Date | undefined) => (t === undefined ? undefined : new V1MicroTime(new Date(t).getTime()));
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
