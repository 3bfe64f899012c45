/**
 * FakeKubeClient: an in-memory stand-in for the Kubernetes API server behind cluster mode's
 * `KubeClient` interface (reconciler/cluster/kube.ts), for unit tests of the VM controller,
 * the node agent, the leader elector and the applier. It is a test double, not a server:
 * what it models is listed here, and anything else is not modelled.
 *
 * Objects are stored by apiVersion/kind/namespace/name. Like the API server it:
 * - sets `uid` (deterministic per fake), `resourceVersion` (one global counter),
 *   `creationTimestamp` (from `now`, whole seconds), `generation` (1 for objects with a
 *   `spec`; +1 when anything outside metadata and status changes) and `generateName`;
 *   a namespaced object without a namespace lands in `default`;
 * - ignores `status` on create/apply/merge-patch of the main resource (every kind is
 *   treated as having a status subresource; a created Pod gets `status.phase: Pending`),
 *   except that a Node's create keeps its status (the API server's node strategy allows
 *   it: a kubelet registers with capacity and conditions); status is written through
 *   patchCustomStatus/patchPodStatus/patchNodeStatus;
 * - skips no-op writes: an update that changes nothing keeps the resourceVersion and
 *   emits no watch event;
 * - prunes `null`s from kubevirt.io objects (structural-schema pruning), and applies JSON
 *   merge patches (RFC 7386: objects merged, arrays replaced, null removes);
 * - delete: 404 → 'absent'; a `preconditionUid` that is not the object's → 'absent';
 *   finalizers keep the object, with `deletionTimestamp` set, until the last one is removed
 *   by a patch; a Pod bound to a node (`spec.nodeName`) deleted with a grace period > 0
 *   stays terminating until it is deleted with grace 0 (the kubelet's job);
 * - garbage collection: synchronous. When an object is really removed, each object whose
 *   ownerReferences name its uid is deleted (Background and Foreground are both treated as
 *   Background; the dependent's own finalizers and grace period apply) unless another of
 *   its owners still exists, in which case only the dangling reference is dropped; with
 *   propagationPolicy Orphan the reference is dropped from every dependent.
 *
 * Not modelled: server-side apply field ownership (apply deep-merges the manifest into the
 * object: fields removed from a manifest stay), admission and validation (namespaces need
 * not exist, names are not checked, a terminating object accepts new finalizers), the
 * `foregroundDeletion` finalizer, RBAC, watch bookmarks and 410s, resource quotas, the
 * scheduler and kubelets (tests play them with `modify`), Event objects (events are kept in
 * `events`, not as objects).
 *
 * Informers (`informer()`) are in memory and fed by the fake's writes: `start()` lists
 * (once synced it delivers `add` for each match), then every change is delivered
 * synchronously, in order, at the end of the client call (or test helper) that made it,
 * as add/update/delete after label/field selector filtering (an object that stops matching
 * is delivered as `delete`). So a handler may run inside a client call the code under test
 * is making; deliveries triggered from inside a handler are queued, never nested. As the
 * real informer, each listed or watched object goes through the spec's `transform` (default
 * stripForCache) before it is cached: code under test sees only what its cache keeps.
 *
 * Test controls:
 * - `failNext(verb, resource, err?, { times, name, after })`: the next matching call
 *   throws `err` (default: an HTTP 500); with `after: true` the write happens first and the
 *   error is thrown afterwards (a lost response). Verbs are the write verbs plus `read` and
 *   `list` (an informer's list: start keeps retrying every `informerRetryMs`).
 * - `pauseWatches(kind?)` / `resumeWatches(kind?)`: hold watch events (all kinds, or one)
 *   so informer caches go stale, then deliver what was held, in order.
 * - `seed`, `modify`, `remove`, `get`, `list`: act as another component (the scheduler, a
 *   kubelet, a user) without being counted in `writes`.
 * - `writes`/`counts`/`totalWrites` mirror HttpKubeClient's write log; `events` records
 *   every event() call.
 */
import { createHash } from 'node:crypto';
import { KubeConfig, type KubernetesObject, type V1Lease, type V1Node, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  resourceOf,
  type DeletePropagation,
  type Informer,
  type InformerHandler,
  type InformerSpec,
  type KubeClient,
  type ObjectRef,
  type WriteRecord,
  type WriteVerb,
} from '../../reconciler/cluster/kube.js';
import { stripForCache } from '../../reconciler/cluster/informer.js';

export type FakeVerb = WriteVerb | 'read' | 'list';

/** An API error as HttpKubeClient's callers see one: `code` is the HTTP status. */
export class FakeApiError extends Error {
  constructor(readonly code: number, message: string) {
    super(`HTTP ${code}: ${message}`);
    this.name = 'FakeApiError';
  }
}

export function apiError(code: number, message = `injected HTTP ${code}`): FakeApiError {
  return new FakeApiError(code, message);
}

export interface RecordedEvent {
  involved: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  component: string;
  /** `now()` when recorded. */
  at: number;
}

/** The metadata the fake reads and writes. */
interface Meta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
}

/** A stored object. */
export interface FakeObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  [field: string]: unknown;
}

interface FailureRule {
  verb: FakeVerb | '*';
  resource: string;
  name?: string;
  times: number;
  after: boolean;
  err: unknown;
}

/** Kinds without a namespace (enough for what cluster mode touches). */
const CLUSTER_SCOPED = new Set(['Node', 'Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass', 'PriorityClass', 'APIService']);

type Change = { old: FakeObject | undefined; cur: FakeObject | undefined };

export interface FakeKubeClientOptions {
  /** The clock for creation and deletion timestamps and event times. Default Date.now. */
  now?: () => number;
  /** How long an informer whose list failed waits before listing again. Default 5 ms. */
  informerRetryMs?: number;
  /** false: no garbage collector (as when kube-controller-manager's lags or is down). Default true. */
  garbageCollector?: boolean;
}

export class FakeKubeClient implements KubeClient {
  /** Every write through the KubeClient interface, in order (test helpers are not counted). */
  readonly writes: WriteRecord[] = [];
  readonly counts = new Map<string, number>();
  readonly events: RecordedEvent[] = [];
  readonly now: () => number;
  private readonly informerRetryMs: number;
  private readonly garbageCollector: boolean;
  private readonly store = new Map<string, FakeObject>();
  private readonly informers = new Set<FakeInformer<KubernetesObject>>();
  private readonly failures: FailureRule[] = [];
  private readonly pending: Change[] = [];
  private delivering = false;
  private pausedAll = false;
  private readonly pausedKinds = new Set<string>();
  private rv = 0;
  private seq = 0;

  constructor(opts: FakeKubeClientOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.informerRetryMs = opts.informerRetryMs ?? 5;
    this.garbageCollector = opts.garbageCollector ?? true;
  }

  get totalWrites(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  /** Writes since `mark` (a `writes.length` taken before), optionally only of `verb resource`. */
  writesSince(mark: number, filter?: { verb?: WriteVerb; resource?: string; name?: string }): WriteRecord[] {
    return this.writes.slice(mark).filter((w) => (!filter?.verb || w.verb === filter.verb) && (!filter?.resource || w.resource === filter.resource) && (!filter?.name || w.name === filter.name));
  }

  // ---- test controls ------------------------------------------------------------------------

  /**
   * The next `times` (default 1) calls matching verb and resource (`pods`,
   * `virtualmachines/status`, `leases`, `events`, or `*`) and, if given, object name throw
   * `err` (default HTTP 500). `after: true`: the write is made, then the error thrown.
   */
  failNext(verb: FakeVerb | '*', resource: string, err: unknown = apiError(500, `injected failure of ${verb} ${resource}`), opts: { times?: number; name?: string; after?: boolean } = {}): void {
    this.failures.push({ verb, resource, err, times: opts.times ?? 1, after: opts.after ?? false, ...(opts.name !== undefined ? { name: opts.name } : {}) });
  }

  /** Drops every failure still pending from failNext (the outage is over). */
  clearFailures(): void {
    this.failures.length = 0;
  }

  /** Holds watch events (of one kind, or all) until resumeWatches: informer caches go stale. */
  pauseWatches(kind?: string): void {
    if (kind) this.pausedKinds.add(kind);
    else this.pausedAll = true;
  }

  /** Delivers what was held, in order. */
  resumeWatches(kind?: string): void {
    if (kind) this.pausedKinds.delete(kind);
    else {
      this.pausedAll = false;
      this.pausedKinds.clear();
    }
    for (const inf of this.informers) inf.release();
    this.flush();
  }

  isPaused(kind: string): boolean {
    return this.pausedAll || this.pausedKinds.has(kind);
  }

  /** Creates an object as another component would (status kept as given); throws if it exists. */
  seed<T = FakeObject>(obj: object): T {
    const o = structuredClone(obj) as FakeObject;
    const key = this.keyOf(o.apiVersion, o.kind, o.metadata?.name ?? '', o.metadata?.namespace);
    if (o.metadata?.name && this.store.has(key)) throw new Error(`seed: ${key} exists`);
    const stored = this.insert(o, { keepStatus: true });
    this.flush();
    return clone(stored) as T;
  }

  /** Changes an object as another component would (any field, status included). */
  modify<T = FakeObject>(apiVersion: string, kind: string, name: string, namespace: string | undefined, change: (obj: T) => void): T {
    const cur = this.mustGet(apiVersion, kind, name, namespace);
    const next = clone(cur);
    change(next as unknown as T);
    const out = this.replace(cur, next);
    this.flush();
    return clone(out) as unknown as T;
  }

  /** Deletes as another component would (the same rules as delete(), not counted). */
  remove(apiVersion: string, kind: string, name: string, namespace?: string, opts: { gracePeriodSeconds?: number; propagationPolicy?: DeletePropagation } = {}): 'deleted' | 'absent' {
    const cur = this.lookup(apiVersion, kind, name, namespace);
    const r = cur ? this.deleteObject(cur, opts) : 'absent';
    this.flush();
    return r;
  }

  get<T = FakeObject>(apiVersion: string, kind: string, name: string, namespace?: string): T | undefined {
    const o = this.lookup(apiVersion, kind, name, namespace);
    return o ? (clone(o) as unknown as T) : undefined;
  }

  list<T = FakeObject>(apiVersion: string, kind: string, namespace?: string): T[] {
    const out: T[] = [];
    for (const o of this.store.values()) {
      if (o.apiVersion === apiVersion && o.kind === kind && (namespace === undefined || o.metadata.namespace === namespace)) out.push(clone(o) as unknown as T);
    }
    return out;
  }

  // ---- KubeClient: generic objects ---------------------------------------------------------

  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    const o = obj as unknown as FakeObject;
    this.record('apply', resourceOf(o), o.metadata?.name ?? '', o.metadata?.namespace);
    return this.guarded('apply', resourceOf(o), o.metadata?.name, () => {
      const cur = this.lookup(o.apiVersion, o.kind, o.metadata?.name ?? '', o.metadata?.namespace);
      if (!cur) return clone(this.insert(structuredClone(o), { keepStatus: false }));
      const next = clone(cur);
      const { status: _ignored, metadata, ...rest } = structuredClone(o);
      deepMerge(next, rest);
      next.metadata.labels = { ...(next.metadata.labels ?? {}), ...(metadata?.labels ?? {}) };
      next.metadata.annotations = { ...(next.metadata.annotations ?? {}), ...(metadata?.annotations ?? {}) };
      if (metadata?.finalizers) next.metadata.finalizers = [...new Set([...(next.metadata.finalizers ?? []), ...metadata.finalizers])];
      if (metadata?.ownerReferences) next.metadata.ownerReferences = metadata.ownerReferences;
      if (Object.keys(next.metadata.labels).length === 0) delete next.metadata.labels;
      if (Object.keys(next.metadata.annotations).length === 0) delete next.metadata.annotations;
      return clone(this.replace(cur, next));
    }) as unknown as T;
  }

  async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    const resource = resourceOf(ref);
    return this.guarded('read', resource, ref.metadata.name, () => {
      const o = this.lookup(ref.apiVersion, ref.kind, ref.metadata.name, ref.metadata.namespace);
      return o ? clone(o) : undefined;
    }) as unknown as T | undefined;
  }

  async delete(ref: KubernetesObject, opts: { gracePeriodSeconds?: number; propagationPolicy?: DeletePropagation; preconditionUid?: string } = {}): Promise<'deleted' | 'absent'> {
    const name = ref.metadata?.name ?? '';
    const resource = resourceOf(ref);
    this.record('delete', resource, name, ref.metadata?.namespace);
    return this.guarded('delete', resource, name, () => {
      const cur = this.lookup(ref.apiVersion ?? '', ref.kind ?? '', name, ref.metadata?.namespace);
      if (!cur) return 'absent';
      // HttpKubeClient maps the 409 of a failed uid precondition to 'absent' as well.
      if (opts.preconditionUid && cur.metadata.uid !== opts.preconditionUid) return 'absent';
      return this.deleteObject(cur, opts);
    });
  }

  async create<T extends KubernetesObject>(obj: T): Promise<T | undefined> {
    const o = obj as unknown as FakeObject;
    const resource = resourceOf(o);
    this.record('create', resource, o.metadata?.name ?? '', o.metadata?.namespace);
    return this.guarded('create', resource, o.metadata?.name, () => {
      if (o.metadata?.name && this.lookup(o.apiVersion, o.kind, o.metadata.name, o.metadata.namespace)) return undefined; // AlreadyExists
      // Nodes may carry their status on create (kubelet's registration); other kinds may not.
      return clone(this.insert(structuredClone(o), { keepStatus: o.apiVersion === 'v1' && o.kind === 'Node' }));
    }) as unknown as T | undefined;
  }

  async mergePatch<T extends KubernetesObject>(ref: KubernetesObject, patch: Record<string, unknown>): Promise<T> {
    const name = ref.metadata?.name ?? '';
    const resource = resourceOf(ref);
    this.record('patch', resource, name, ref.metadata?.namespace);
    return this.guarded('patch', resource, name, () => {
      const cur = this.lookup(ref.apiVersion ?? '', ref.kind ?? '', name, ref.metadata?.namespace);
      if (!cur) throw apiError(404, `${resource} "${name}" not found`);
      const p = structuredClone(patch) as Record<string, unknown> & { metadata?: Record<string, unknown> };
      delete p['status'];
      delete p['apiVersion'];
      delete p['kind'];
      if (p.metadata) {
        const wantRv = p.metadata['resourceVersion'];
        if (wantRv !== undefined && wantRv !== cur.metadata.resourceVersion) throw apiError(409, `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified`);
        for (const k of ['resourceVersion', 'uid', 'name', 'namespace', 'creationTimestamp', 'generation', 'deletionTimestamp', 'deletionGracePeriodSeconds']) delete p.metadata[k];
      }
      const next = mergePatchValue(clone(cur), p) as FakeObject;
      return clone(this.replace(cur, next));
    }) as unknown as T;
  }

  // ---- KubeClient: status subresources -------------------------------------------------------

  async patchCustomStatus(plural: 'virtualmachines' | 'virtualmachineinstances' | 'virtualmachinepools', namespace: string, name: string, status: unknown): Promise<void> {
    const [apiVersion, kind] = plural === 'virtualmachines' ? ['kubevirt.io/v1', 'VirtualMachine']
      : plural === 'virtualmachinepools' ? ['pool.kubevirt.io/v1beta1', 'VirtualMachinePool'] : ['kubevirt.io/v1', 'VirtualMachineInstance'];
    this.record('patch-status', `${plural}/status`, name, namespace);
    this.guarded('patch-status', `${plural}/status`, name, () => {
      this.patchStatus(apiVersion, kind, name, namespace, status);
    });
  }

  async patchPodStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<V1Pod> {
    this.record('patch-status', 'pods/status', name, namespace);
    return this.guarded('patch-status', 'pods/status', name, () => clone(this.patchStatus('v1', 'Pod', name, namespace, status))) as unknown as V1Pod;
  }

  async createNode(node: V1Node): Promise<V1Node | undefined> {
    return this.create({ apiVersion: 'v1', kind: 'Node', ...node } as KubernetesObject) as Promise<V1Node | undefined>;
  }

  async patchNodeStatus(name: string, status: Record<string, unknown>): Promise<void> {
    this.record('patch-status', 'nodes/status', name);
    this.guarded('patch-status', 'nodes/status', name, () => {
      this.patchStatus('v1', 'Node', name, undefined, status);
    });
  }

  async deletePodNow(namespace: string, name: string, uid: string): Promise<void> {
    await this.delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace } }, { gracePeriodSeconds: 0, preconditionUid: uid });
  }

  // ---- KubeClient: leases ---------------------------------------------------------------------

  async readLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    return this.read<KubernetesObject>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace } }) as Promise<V1Lease | undefined>;
  }

  async createLease(lease: V1Lease): Promise<V1Lease | undefined> {
    return this.create({ ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' } as KubernetesObject) as Promise<V1Lease | undefined>;
  }

  async updateLease(lease: V1Lease): Promise<V1Lease | undefined> {
    const name = lease.metadata?.name ?? '';
    const namespace = lease.metadata?.namespace;
    this.record('update', 'leases', name, namespace);
    return this.guarded('update', 'leases', name, () => {
      const cur = this.lookup('coordination.k8s.io/v1', 'Lease', name, namespace);
      if (!cur) throw apiError(404, `leases "${name}" not found`);
      const rv = lease.metadata?.resourceVersion;
      if (rv !== undefined && rv !== cur.metadata.resourceVersion) return undefined; // conflict
      const next = structuredClone({ ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' }) as unknown as FakeObject;
      next.metadata = { ...next.metadata, uid: cur.metadata.uid!, creationTimestamp: cur.metadata.creationTimestamp!, name, namespace: cur.metadata.namespace! };
      return clone(this.replace(cur, next));
    }) as unknown as V1Lease | undefined;
  }

  // ---- KubeClient: events -----------------------------------------------------------------------

  async event(involved: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string): Promise<void> {
    const ns = involved.metadata?.namespace ?? 'default';
    this.record('create', 'events', reason, ns);
    this.guarded('create', 'events', reason, () => {
      this.events.push({
        involved: { apiVersion: involved.apiVersion, kind: involved.kind, name: involved.metadata?.name, namespace: ns, uid: involved.metadata?.uid },
        type,
        reason,
        message: message.slice(0, 1024),
        component,
        at: this.now(),
      });
    });
  }

  // ---- KubeClient: informers ---------------------------------------------------------------------

  informer<T extends KubernetesObject>(spec: InformerSpec, handler: InformerHandler<T>, _log: Logger): Informer<T> {
    const inf = new FakeInformer<T>(this, spec, handler, this.informerRetryMs);
    this.informers.add(inf as unknown as FakeInformer<KubernetesObject>);
    return inf;
  }

  /** @internal FakeInformer's list. */
  listFor(spec: InformerSpec): FakeObject[] {
    const rule = this.takeFailure('list', resourceOf(spec), undefined);
    if (rule) throw rule.err;
    const sel = selectorOf(spec);
    return [...this.store.values()].filter((o) => o.apiVersion === spec.apiVersion && o.kind === spec.kind && sel(o)).map(clone);
  }

  // ---- the store ------------------------------------------------------------------------------------

  private record(verb: WriteVerb, resource: string, name: string, namespace?: string): void {
    const key = `${verb} ${resource}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.writes.push({ verb, resource, name, ...(namespace ? { namespace } : {}) });
  }

  /** Runs one API call: injected failures (before or after the write), then deliveries. */
  private guarded<R>(verb: FakeVerb, resource: string, name: string | undefined, fn: () => R): R {
    const rule = this.takeFailure(verb, resource, name);
    if (rule && !rule.after) throw rule.err;
    try {
      const r = fn();
      if (rule) throw rule.err;
      return r;
    } finally {
      this.flush();
    }
  }

  private takeFailure(verb: FakeVerb, resource: string, name: string | undefined): FailureRule | undefined {
    const i = this.failures.findIndex((f) => (f.verb === '*' || f.verb === verb) && (f.resource === '*' || f.resource === resource) && (f.name === undefined || f.name === name));
    if (i < 0) return undefined;
    const rule = this.failures[i]!;
    if (--rule.times <= 0) this.failures.splice(i, 1);
    return rule;
  }

  private keyOf(apiVersion: string, kind: string, name: string, namespace: string | undefined): string {
    return `${apiVersion}/${kind}/${this.namespaceOf(kind, namespace) ?? ''}/${name}`;
  }

  private namespaceOf(kind: string, namespace: string | undefined): string | undefined {
    return CLUSTER_SCOPED.has(kind) ? undefined : (namespace ?? 'default');
  }

  private lookup(apiVersion: string, kind: string, name: string, namespace: string | undefined): FakeObject | undefined {
    return this.store.get(this.keyOf(apiVersion, kind, name, namespace));
  }

  private mustGet(apiVersion: string, kind: string, name: string, namespace: string | undefined): FakeObject {
    const o = this.lookup(apiVersion, kind, name, namespace);
    if (!o) throw apiError(404, `${resourceOf({ kind })} "${name}" not found`);
    return o;
  }

  private nextRv(): string {
    return String(++this.rv);
  }

  private timestamp(ms = this.now()): string {
    return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  }

  /** A deterministic uuid whose leading characters differ from one object to the next. */
  private newUid(): string {
    const h = createHash('sha1').update(`fake-kube-uid-${++this.seq}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }

  private insert(o: FakeObject, opts: { keepStatus: boolean }): FakeObject {
    o.metadata = { ...(o.metadata ?? {}) };
    const m = o.metadata;
    if (!m.name) {
      if (!m.generateName) throw apiError(422, `${o.kind}: metadata.name or generateName is required`);
      m.name = `${m.generateName}${createHash('sha1').update(`name-${++this.seq}`).digest('hex').slice(0, 5)}`;
    }
    const ns = this.namespaceOf(o.kind, m.namespace);
    if (ns === undefined) delete m.namespace;
    else m.namespace = ns;
    m.uid = this.newUid();
    m.creationTimestamp = this.timestamp();
    m.resourceVersion = this.nextRv();
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if ('spec' in o) m.generation = 1;
    else delete m.generation;
    if (!opts.keepStatus) {
      delete o['status'];
      if (o.kind === 'Pod' && o.apiVersion === 'v1') o['status'] = { phase: 'Pending' };
    }
    const stored = normalise(o);
    this.store.set(this.keyOf(o.apiVersion, o.kind, m.name, m.namespace), stored);
    this.emit(undefined, stored);
    return stored;
  }

  /**
   * Stores `next` in place of `cur` as an update: identity kept, generation bumped when the
   * non-metadata, non-status content changed, resourceVersion bumped unless nothing changed;
   * a terminating object whose last finalizer went is removed.
   */
  private replace(cur: FakeObject, next: FakeObject): FakeObject {
    next.apiVersion = cur.apiVersion;
    next.kind = cur.kind;
    next.metadata = {
      ...next.metadata,
      name: cur.metadata.name!,
      uid: cur.metadata.uid!,
      creationTimestamp: cur.metadata.creationTimestamp!,
      resourceVersion: cur.metadata.resourceVersion!,
      ...(cur.metadata.namespace !== undefined ? { namespace: cur.metadata.namespace } : {}),
      ...(cur.metadata.generation !== undefined ? { generation: cur.metadata.generation } : {}),
    };
    if (cur.metadata.deletionTimestamp && !next.metadata.deletionTimestamp) {
      next.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
      if (cur.metadata.deletionGracePeriodSeconds !== undefined) next.metadata.deletionGracePeriodSeconds = cur.metadata.deletionGracePeriodSeconds;
    }
    if (next.metadata.finalizers?.length === 0) delete next.metadata.finalizers;
    next = normalise(next);
    if (stableJson(next) === stableJson(cur)) return cur;
    if (cur.metadata.generation !== undefined && stableJson(content(next)) !== stableJson(content(cur))) next.metadata.generation = cur.metadata.generation + 1;
    next.metadata.resourceVersion = this.nextRv();
    this.store.set(this.keyOf(next.apiVersion, next.kind, next.metadata.name!, next.metadata.namespace), next);
    this.emit(cur, next);
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length && !this.awaitsKubelet(next)) this.removeNow(next, 'Background');
    return next;
  }

  private patchStatus(apiVersion: string, kind: string, name: string, namespace: string | undefined, status: unknown): FakeObject {
    const cur = this.mustGet(apiVersion, kind, name, namespace);
    const next = clone(cur);
    const merged = mergePatchValue({ status: next['status'] }, { status: structuredClone(status) }) as { status?: unknown };
    if (merged.status === undefined) delete next['status'];
    else next['status'] = merged.status;
    return this.replace(cur, next);
  }

  /** A Pod on a node that is being deleted gracefully waits for its kubelet (grace 0 delete). */
  private awaitsKubelet(o: FakeObject): boolean {
    return o.kind === 'Pod' && o.apiVersion === 'v1' && !!(o['spec'] as { nodeName?: string } | undefined)?.nodeName && (o.metadata.deletionGracePeriodSeconds ?? 0) > 0;
  }

  private deleteObject(cur: FakeObject, opts: { gracePeriodSeconds?: number; propagationPolicy?: DeletePropagation }): 'deleted' {
    const isBoundPod = cur.kind === 'Pod' && cur.apiVersion === 'v1' && !!(cur['spec'] as { nodeName?: string } | undefined)?.nodeName;
    const specGrace = (cur['spec'] as { terminationGracePeriodSeconds?: number } | undefined)?.terminationGracePeriodSeconds;
    const grace = isBoundPod ? (opts.gracePeriodSeconds ?? cur.metadata.deletionGracePeriodSeconds ?? specGrace ?? 30) : 0;
    const finalizers = cur.metadata.finalizers ?? [];
    if (finalizers.length > 0 || grace > 0) {
      const next = clone(cur);
      // A second delete may shorten the grace period, never lengthen it.
      const already = cur.metadata.deletionGracePeriodSeconds;
      const g = already !== undefined ? Math.min(already, grace) : grace;
      next.metadata.deletionTimestamp = cur.metadata.deletionTimestamp ?? this.timestamp(this.now() + g * 1000);
      if (isBoundPod) next.metadata.deletionGracePeriodSeconds = g;
      if (finalizers.length > 0 || g > 0) {
        this.replaceTerminating(cur, next);
        return 'deleted';
      }
    }
    this.removeNow(cur, opts.propagationPolicy ?? 'Background');
    return 'deleted';
  }

  /** replace() for a delete that leaves the object terminating (no finalizer check). */
  private replaceTerminating(cur: FakeObject, next: FakeObject): void {
    if (stableJson(next) === stableJson(cur)) return;
    next.metadata.resourceVersion = this.nextRv();
    this.store.set(this.keyOf(next.apiVersion, next.kind, next.metadata.name!, next.metadata.namespace), next);
    this.emit(cur, next);
  }

  private removeNow(obj: FakeObject, policy: DeletePropagation): void {
    const key = this.keyOf(obj.apiVersion, obj.kind, obj.metadata.name!, obj.metadata.namespace);
    const stored = this.store.get(key);
    if (!stored || stored.metadata.uid !== obj.metadata.uid) return;
    this.store.delete(key);
    this.emit(stored, undefined);
    if (this.garbageCollector) this.collectGarbage(stored.metadata.uid!, policy);
  }

  /** The garbage collector, synchronously: dependents of a removed owner. */
  private collectGarbage(ownerUid: string, policy: DeletePropagation): void {
    const liveUids = new Set([...this.store.values()].map((o) => o.metadata.uid));
    for (const dep of [...this.store.values()]) {
      const refs = dep.metadata.ownerReferences ?? [];
      if (!refs.some((r) => r.uid === ownerUid)) continue;
      const current = this.lookup(dep.apiVersion, dep.kind, dep.metadata.name!, dep.metadata.namespace);
      if (!current || current.metadata.uid !== dep.metadata.uid) continue;
      const others = refs.filter((r) => r.uid !== ownerUid);
      if (policy === 'Orphan' || others.some((r) => liveUids.has(r.uid))) {
        const next = clone(current);
        next.metadata.ownerReferences = others;
        if (others.length === 0) delete next.metadata.ownerReferences;
        this.replace(current, next);
      } else {
        this.deleteObject(current, { propagationPolicy: 'Background' });
      }
    }
  }

  // ---- watch delivery ---------------------------------------------------------------------------------

  private emit(old: FakeObject | undefined, cur: FakeObject | undefined): void {
    this.pending.push({ old: old && clone(old), cur: cur && clone(cur) });
  }

  /** Delivers queued changes to the informers, in order; never nested. */
  private flush(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (this.pending.length > 0) {
        const change = this.pending.shift()!;
        for (const inf of [...this.informers]) inf.offer(change);
      }
    } finally {
      this.delivering = false;
    }
  }

  /** @internal */
  forget(inf: FakeInformer<KubernetesObject>): void {
    this.informers.delete(inf);
  }
}

/** An informer over the fake's store: see the file comment. */
export class FakeInformer<T extends KubernetesObject> implements Informer<T> {
  private readonly cache = new Map<string, T>();
  private readonly held: Change[] = [];
  private readonly matches: (o: FakeObject) => boolean;
  private readonly transform: (o: KubernetesObject) => KubernetesObject;
  private started = false;
  private stopped = false;
  private synced = false;
  /** Listed, initial adds not yet delivered. */
  private listing = false;
  private readonly syncWaiters: (() => void)[] = [];
  private retry: NodeJS.Timeout | undefined;
  /** Failed lists (for tests). */
  listFailures = 0;

  constructor(
    private readonly fake: FakeKubeClient,
    readonly spec: InformerSpec,
    private readonly handler: InformerHandler<T>,
    private readonly retryMs: number,
  ) {
    this.matches = selectorOf(spec);
    this.transform = spec.transform ?? stripForCache;
  }

  start(): Promise<void> {
    if (!this.started && !this.stopped) {
      this.started = true;
      this.relist();
    }
    return this.hasSynced();
  }

  hasSynced(): Promise<void> {
    if ((this.synced && !this.listing) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): readonly T[] {
    return [...this.cache.values()].filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.fake.forget(this as unknown as FakeInformer<KubernetesObject>);
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** @internal A change from the fake's store. */
  offer(change: Change): void {
    if (!this.synced || this.stopped) return;
    const kindOf = change.cur ?? change.old!;
    if (kindOf.apiVersion !== this.spec.apiVersion || kindOf.kind !== this.spec.kind) return;
    if (this.listing || this.fake.isPaused(this.spec.kind) || this.held.length > 0) {
      this.held.push(change);
      this.release();
      return;
    }
    this.apply(change);
  }

  /** @internal Delivers held changes once watches resume. */
  release(): void {
    if (this.listing || this.fake.isPaused(this.spec.kind)) return;
    while (this.held.length > 0 && !this.stopped) this.apply(this.held.shift()!);
  }

  private apply({ old, cur }: Change): void {
    const ref = (cur ?? old)!;
    const key = `${ref.metadata.namespace ?? ''}/${ref.metadata.name}`;
    const had = this.cache.get(key);
    if (cur && this.matches(cur)) {
      const obj = this.transform(clone(cur) as unknown as KubernetesObject) as T;
      this.cache.set(key, obj);
      this.handler(had ? 'update' : 'add', obj);
    } else if (had) {
      this.cache.delete(key);
      this.handler('delete', (cur ? this.transform(clone(cur) as unknown as KubernetesObject) : had) as T);
    }
  }

  /**
   * Lists into the cache at once, and delivers the listed objects as `add` a microtask later
   * (watch events meanwhile are held, then delivered in order): informers started together
   * (the controller starts three in one go) all have their caches filled before any of
   * their handlers runs, as when their lists return close together.
   */
  private relist(): void {
    if (this.stopped) return;
    let items: FakeObject[];
    try {
      items = this.fake.listFor(this.spec);
    } catch {
      this.listFailures++;
      this.retry = setTimeout(() => this.relist(), this.retryMs);
      this.retry.unref();
      return;
    }
    this.cache.clear();
    for (const o of items) this.cache.set(`${o.metadata.namespace ?? ''}/${o.metadata.name}`, this.transform(o as unknown as KubernetesObject) as T);
    this.listing = true;
    this.synced = true;
    const listed = [...this.cache.values()];
    queueMicrotask(() => {
      this.listing = false;
      if (this.stopped) return;
      for (const o of listed) this.handler('add', o);
      this.release();
      for (const w of this.syncWaiters.splice(0)) w();
    });
  }
}

// ---- selectors ------------------------------------------------------------------------------------

/** A matcher for an informer's label and field selectors. */
export function selectorOf(spec: Pick<InformerSpec, 'labelSelector' | 'fieldSelector'>): (o: FakeObject) => boolean {
  const labels = spec.labelSelector ? parseLabelSelector(spec.labelSelector) : [];
  const fields = spec.fieldSelector ? parseFieldSelector(spec.fieldSelector) : [];
  return (o) => labels.every((m) => m(o.metadata?.labels ?? {})) && fields.every((m) => m(o));
}

/** Equality- and set-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`. */
export function parseLabelSelector(selector: string): ((labels: Record<string, string>) => boolean)[] {
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else cur += ch;
  }
  terms.push(cur);
  return terms
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((t) => {
      let m: RegExpMatchArray | null;
      if ((m = t.match(/^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
        const [, key, op, list] = m as unknown as [string, string, string, string];
        const values = new Set(list.split(',').map((v) => v.trim()));
        return op === 'in' ? (l: Record<string, string>) => key in l && values.has(l[key]!) : (l: Record<string, string>) => !(key in l) || !values.has(l[key]!);
      }
      if ((m = t.match(/^([^\s!=]+)\s*!=\s*(\S*)$/))) {
        const [, key, value] = m as unknown as [string, string, string];
        return (l: Record<string, string>) => l[key] !== value;
      }
      if ((m = t.match(/^([^\s!=]+)\s*==?\s*(\S*)$/))) {
        const [, key, value] = m as unknown as [string, string, string];
        return (l: Record<string, string>) => l[key] === value;
      }
      if ((m = t.match(/^!\s*(\S+)$/))) {
        const key = m[1]!;
        return (l: Record<string, string>) => !(key in l);
      }
      if (/^\S+$/.test(t)) return (l: Record<string, string>) => t in l;
      throw new Error(`fake-kube: unsupported label selector term ${JSON.stringify(t)}`);
    });
}

/** Field selectors: `path=v`, `path==v`, `path!=v`, comma-separated (a missing field is ""). */
export function parseFieldSelector(selector: string): ((o: FakeObject) => boolean)[] {
  return selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((t) => {
      const m = t.match(/^([\w.]+)\s*(!=|==|=)\s*(.*)$/);
      if (!m) throw new Error(`fake-kube: unsupported field selector term ${JSON.stringify(t)}`);
      const [, path, op, value] = m as unknown as [string, string, string, string];
      const read = (o: FakeObject): string => {
        let v: unknown = o;
        for (const p of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
        return v === undefined || v === null ? '' : String(v);
      };
      return op === '!=' ? (o: FakeObject) => read(o) !== value : (o: FakeObject) => read(o) === value;
    });
}

// ---- JSON helpers -----------------------------------------------------------------------------------

function clone<T>(o: T): T {
  return structuredClone(o);
}

/** RFC 7386 JSON merge patch: objects merge, null removes, anything else replaces. */
export function mergePatchValue(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch) || patch instanceof Date) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) && !(target instanceof Date) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else if (v !== undefined) out[k] = mergePatchValue(out[k], v);
  }
  return out;
}

/** Apply's approximation: objects merged recursively, arrays and scalars replaced. */
function deepMerge(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    const t = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && t && typeof t === 'object' && !Array.isArray(t) && !(t instanceof Date)) {
      deepMerge(t as Record<string, unknown>, v as Record<string, unknown>);
    } else if (v !== undefined) target[k] = v;
  }
}

/** What `generation` tracks: everything but metadata and status. */
function content(o: FakeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

/** kubevirt.io objects lose their nulls (structural-schema pruning); others are stored as given. */
function normalise(o: FakeObject): FakeObject {
  if (!o.apiVersion.startsWith('kubevirt.io/')) return o;
  return withoutNullsDeep(o) as FakeObject;
}

function withoutNullsDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNullsDeep);
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = withoutNullsDeep(x);
    return out;
  }
  return v;
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Date)) {
      return Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return x;
  });
}

/** A kubeconfig for a plain-HTTP test server on 127.0.0.1:`port`, no credentials. */
export function localKubeConfig(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}
