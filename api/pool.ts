/**
 * `pool.kubevirt.io/v1beta1` VirtualMachinePool: its types (written from KubeVirt's OpenAPI,
 * v1beta1.VirtualMachinePool*), the rules its webhook would check beyond the schema, and the
 * one pure expansion both modes call (single host: the revision's pools become VMs as if they
 * were in git; cluster: reconciler/cluster/pool-controller.ts creates and deletes them).
 *
 *   const r = expandPool(pool, { owned: [{ name: 'web-0' }], taken: new Set(['web-1']) });
 *   r.vms     // every VM the pool wants now, rendered from the template
 *   r.create  // names to add (the lowest free indices, skipping names other VMs hold)
 *   r.remove  // names to delete on scale-in
 *
 * Facts taken over from KubeVirt (pkg/virt-controller/watch/pool, v1beta1 API):
 * - VMs are named `<pool>-<index>`; a scale-out takes the lowest indices whose name no VM in
 *   the namespace has (owned or not);
 * - each VM gets the template's labels and annotations, the template's spec and an owner
 *   reference to the pool (controller, blockOwnerDeletion);
 * - per-VM names: dataVolumeTemplates get `-<index>` (and the volumes using them follow);
 *   with nameGeneration.appendIndexToSecretRefs, secret volumes and cloud-init secretRefs
 *   (user and network data) get `-<index>`; with appendIndexToConfigMapRefs, configMap volumes;
 * - scale-in picks by scaleInStrategy.proactive.selectionPolicy.sortPolicy (AscendingOrder,
 *   DescendingOrder, Newest, Oldest, Random; default Random). KubeVirt shuffles for Random;
 *   virtops makes that draw deterministic (highest index first, as DescendingOrder) so one
 *   commit yields the same VMs in both modes and on every pass.
 * - status: replicas (VMs the pool owns), readyReplicas (of those, Ready), labelSelector (the
 *   selector in its canonical string form, for the scale subresource).
 */
import { createHash } from 'node:crypto';
import type { ObjectMeta, OwnerReference, VirtualMachine, VirtualMachineSpec, Volume } from './kubevirt.js';

export const POOL_GROUP = 'pool.kubevirt.io';
export const POOL_API_VERSION = 'pool.kubevirt.io/v1beta1';
export const POOL_KIND = 'VirtualMachinePool';

type Loose = Record<string, unknown>;

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type PoolSortPolicy = 'AscendingOrder' | 'DescendingOrder' | 'Newest' | 'Oldest' | 'Random';
export const POOL_SORT_POLICIES: readonly PoolSortPolicy[] = ['AscendingOrder', 'DescendingOrder', 'Newest', 'Oldest', 'Random'];

export interface VirtualMachinePoolNameGeneration {
  appendIndexToConfigMapRefs?: boolean;
  appendIndexToSecretRefs?: boolean;
}

export interface VirtualMachinePoolSelectionPolicy {
  sortPolicy?: PoolSortPolicy;
  selectors?: Loose;
}

export interface VirtualMachinePoolScaleInStrategy {
  proactive?: { selectionPolicy?: VirtualMachinePoolSelectionPolicy; statePreservation?: string };
  opportunistic?: { statePreservation?: string };
  unmanaged?: Loose;
}

export interface VirtualMachinePoolSpec {
  /** Desired VMs; KubeVirt's default is 1. */
  replicas?: number;
  selector: LabelSelector;
  virtualMachineTemplate: { metadata?: ObjectMeta; spec: VirtualMachineSpec };
  nameGeneration?: VirtualMachinePoolNameGeneration;
  /** No scaling while paused. */
  paused?: boolean;
  maxUnavailable?: number | string;
  scaleInStrategy?: VirtualMachinePoolScaleInStrategy;
  updateStrategy?: { proactive?: { selectionPolicy?: VirtualMachinePoolSelectionPolicy }; opportunistic?: Loose; unmanaged?: Loose };
  autohealing?: Loose;
}

export interface VirtualMachinePoolCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
}

export interface VirtualMachinePoolStatus {
  replicas?: number;
  readyReplicas?: number;
  labelSelector?: string;
  conditions?: VirtualMachinePoolCondition[];
}

export interface VirtualMachinePool {
  apiVersion: typeof POOL_API_VERSION;
  kind: typeof POOL_KIND;
  metadata: ObjectMeta;
  spec: VirtualMachinePoolSpec;
  status?: VirtualMachinePoolStatus;
}

/** True for a pool.kubevirt.io VirtualMachinePool (any version: the validator checks it). */
export function isPool(o: unknown): o is VirtualMachinePool {
  if (typeof o !== 'object' || o === null) return false;
  const { apiVersion, kind } = o as { apiVersion?: unknown; kind?: unknown };
  return typeof apiVersion === 'string' && apiVersion.startsWith(`${POOL_GROUP}/`) && kind === POOL_KIND;
}

// ---- selectors --------------------------------------------------------------------------

/** Kubernetes label-selector semantics: every matchLabels pair and every expression hold. */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> = {}): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In': if (!has || !values.includes(labels[e.key]!)) return false; break;
      case 'NotIn': if (has && values.includes(labels[e.key]!)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

/** The selector as `labels.Selector.String()` writes it: requirements sorted by key, `a=b,c in (x,y),!d`. */
export function selectorString(selector: LabelSelector): string {
  const reqs: { key: string; text: string }[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) reqs.push({ key: k, text: `${k}=${v}` });
  for (const e of selector.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(',');
    const text = e.operator === 'In' ? `${e.key} in (${values})`
      : e.operator === 'NotIn' ? `${e.key} notin (${values})`
        : e.operator === 'Exists' ? e.key : `!${e.key}`;
    reqs.push({ key: e.key, text });
  }
  return reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((r) => r.text).join(',');
}

// ---- rules beyond the schema --------------------------------------------------------------

export interface PoolIssue {
  /** JSON pointer into the pool manifest. */
  path: string;
  message: string;
  fix?: string;
}

/** Longest VM name virtops runs (api/validate.ts: the launcher Pod's label value). */
const MAX_VM_NAME = 63;

/**
 * What KubeVirt's pool webhook refuses (the selector must select the template) and what
 * virtops does not do (refused by name instead of ignored). The template's VM rules are
 * checked by the caller on a sample VM (poolVm(pool, 0)).
 */
export function checkPoolRules(pool: VirtualMachinePool): PoolIssue[] {
  const issues: PoolIssue[] = [];
  const spec = pool.spec;
  const selector = spec.selector ?? {};
  const templateLabels = spec.virtualMachineTemplate?.metadata?.labels ?? {};
  if (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0) {
    issues.push({ path: '/spec/selector', message: 'an empty selector would select every VM in the namespace', fix: 'set spec.selector.matchLabels to labels of spec.virtualMachineTemplate.metadata.labels, e.g. app: <pool name>' });
  } else if (!selectorMatches(selector, templateLabels)) {
    issues.push({
      path: '/spec/selector',
      message: `selector '${selectorString(selector)}' does not match the template's labels (spec.virtualMachineTemplate.metadata.labels: ${JSON.stringify(templateLabels)}), so the pool would never see the VMs it creates`,
      fix: 'make spec.selector.matchLabels a subset of spec.virtualMachineTemplate.metadata.labels',
    });
  }
  const replicas = spec.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 0) issues.push({ path: '/spec/replicas', message: `must be a whole number of 0 or more, got ${JSON.stringify(spec.replicas)}`, fix: 'set replicas to e.g. 3' });
  const name = pool.metadata?.name ?? '';
  const longest = `${name}-${Math.max(0, replicas - 1)}`;
  if (name && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    issues.push({ path: '/metadata/name', message: `'${name}' is not a valid pool name: its VMs' names '${name}-<n>' must be DNS labels`, fix: 'use lowercase letters, digits and -, starting and ending with a letter or digit (no dots)' });
  } else if (name && longest.length > MAX_VM_NAME) {
    issues.push({ path: '/metadata/name', message: `the pool's VMs would be named up to '${longest}' (${longest.length} characters); a VM name has at most ${MAX_VM_NAME}`, fix: `shorten the pool name to at most ${MAX_VM_NAME - 1 - String(Math.max(0, replicas - 1)).length} characters` });
  }
  const sort = spec.scaleInStrategy?.proactive?.selectionPolicy?.sortPolicy;
  if (sort !== undefined && !(POOL_SORT_POLICIES as readonly unknown[]).includes(sort)) {
    issues.push({ path: '/spec/scaleInStrategy/proactive/selectionPolicy/sortPolicy', message: `must be one of ${POOL_SORT_POLICIES.join(', ')}, got ${JSON.stringify(sort)}` });
  }
  const unsupported: [string, unknown, string][] = [
    ['/spec/scaleInStrategy/opportunistic', spec.scaleInStrategy?.opportunistic, 'remove it: virtops scales in proactively (the default)'],
    ['/spec/scaleInStrategy/unmanaged', spec.scaleInStrategy?.unmanaged, 'remove it: virtops scales in proactively (the default)'],
    ['/spec/scaleInStrategy/proactive/selectionPolicy/selectors', spec.scaleInStrategy?.proactive?.selectionPolicy?.selectors, 'remove it and choose the order with sortPolicy'],
    ['/spec/updateStrategy/opportunistic', spec.updateStrategy?.opportunistic, 'remove it: template changes reach the VMs as a git change to each VM does (RestartRequired when the change needs a restart)'],
    ['/spec/updateStrategy/unmanaged', spec.updateStrategy?.unmanaged, 'remove it: template changes reach the VMs as a git change to each VM does'],
    ['/spec/updateStrategy/proactive/selectionPolicy', spec.updateStrategy?.proactive?.selectionPolicy, 'remove it: every VM follows the template'],
    ['/spec/autohealing', spec.autohealing, 'remove it: a failing VM is restarted with backoff by its runStrategy, not replaced'],
  ];
  for (const [path, value, fix] of unsupported) {
    if (value !== undefined) issues.push({ path, message: 'not supported by virtops', fix });
  }
  const preservation = spec.scaleInStrategy?.proactive?.statePreservation;
  if (preservation !== undefined && preservation !== 'Disabled') {
    issues.push({ path: '/spec/scaleInStrategy/proactive/statePreservation', message: `'${preservation}' is not supported by virtops`, fix: "remove it (or set 'Disabled'): a VM removed on scale-in is deleted with its state" });
  }
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== '100%') {
    issues.push({ path: '/spec/maxUnavailable', message: `${JSON.stringify(spec.maxUnavailable)} is not supported by virtops (no rolling update limit)`, fix: "remove it (KubeVirt's default is 100%)" });
  }
  return issues;
}

// ---- expansion ----------------------------------------------------------------------------

/** A VM the pool owns now. */
export interface PoolMember {
  name: string;
  /** Creation time (epoch ms), for the Newest/Oldest sort policies; absent: ordered by index. */
  createdAt?: number;
}

export interface PoolContext {
  /** The VMs the pool owns now (see ownedByPool). */
  owned: readonly PoolMember[];
  /** Names of the other VMs in the pool's namespace: a new VM never takes one. */
  taken: ReadonlySet<string>;
}

export interface PoolExpansion {
  /** Every VM the pool wants now, ordered by index, each rendered from the current template. */
  vms: VirtualMachine[];
  /** New names (scale-out). */
  create: string[];
  /** Owned names to delete (scale-in), in the order the sort policy picked them. */
  remove: string[];
}

/** The index of a pool VM's name (`web-3` → 3), as KubeVirt reads it: the part after the last `-`. */
export function indexFromName(name: string): number | undefined {
  const tail = name.slice(name.lastIndexOf('-') + 1);
  return /^\d+$/.test(tail) ? Number(tail) : undefined;
}

export function poolVmName(poolName: string, index: number): string {
  return `${poolName}-${index}`;
}

/**
 * A stable uid for a pool that has none (single host: there is no API server to assign one),
 * so owner references compare the same way in both modes.
 */
export function derivedPoolUid(namespace: string, name: string): string {
  const h = createHash('sha256').update(`${POOL_API_VERSION}/${POOL_KIND}/${namespace}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function poolUid(pool: VirtualMachinePool): string {
  return pool.metadata.uid ?? derivedPoolUid(pool.metadata.namespace ?? 'default', pool.metadata.name ?? '');
}

export function poolOwnerReference(pool: VirtualMachinePool): OwnerReference {
  return { apiVersion: POOL_API_VERSION, kind: POOL_KIND, name: pool.metadata.name ?? '', uid: poolUid(pool), controller: true, blockOwnerDeletion: true };
}

/** The name of the pool controlling `vm`, if one does. */
export function controllingPool(vm: { metadata?: ObjectMeta }): string | undefined {
  const ref = vm.metadata?.ownerReferences?.find((r) => r.controller && r.kind === POOL_KIND && r.apiVersion.startsWith(`${POOL_GROUP}/`));
  return ref?.name;
}

/**
 * True when `vm` belongs to `pool`: its controller reference names the pool (and its uid,
 * when both have one) and the pool's selector matches the VM's labels (those it got from
 * spec.virtualMachineTemplate.metadata.labels).
 */
export function ownedByPool(vm: { metadata?: ObjectMeta }, pool: VirtualMachinePool): boolean {
  const ref = vm.metadata?.ownerReferences?.find((r) => r.controller && r.kind === POOL_KIND && r.apiVersion.startsWith(`${POOL_GROUP}/`));
  if (!ref || ref.name !== pool.metadata.name) return false;
  if (pool.metadata.uid && ref.uid && ref.uid !== pool.metadata.uid) return false;
  return selectorMatches(pool.spec.selector ?? {}, vm.metadata?.labels ?? {});
}

/** The template's VM spec with the per-VM names of index `index` (KubeVirt's indexVMSpec). */
export function indexVmSpec(spec: VirtualMachinePoolSpec, index: number): VirtualMachineSpec {
  const vmSpec = structuredClone(spec.virtualMachineTemplate.spec);
  const suffix = `-${index}`;
  const dvNames = new Map<string, string>();
  for (const dv of vmSpec.dataVolumeTemplates ?? []) {
    const meta = dv['metadata'] as { name?: string } | undefined;
    if (meta?.name) {
      dvNames.set(meta.name, meta.name + suffix);
      meta.name += suffix;
    }
  }
  const secrets = spec.nameGeneration?.appendIndexToSecretRefs === true;
  const configMaps = spec.nameGeneration?.appendIndexToConfigMapRefs === true;
  for (const v of (vmSpec.template.spec.volumes ?? []) as (Volume & { sysprep?: { secret?: { name: string }; configMap?: { name: string } } })[]) {
    if (v.persistentVolumeClaim) {
      const renamed = dvNames.get(v.persistentVolumeClaim.claimName);
      if (renamed) v.persistentVolumeClaim.claimName = renamed;
    } else if (v.dataVolume) {
      const renamed = dvNames.get(v.dataVolume.name);
      if (renamed) v.dataVolume.name = renamed;
    } else if (v.configMap) {
      if (configMaps && v.configMap.name) v.configMap.name += suffix;
    } else if (v.secret) {
      if (secrets && v.secret.secretName) v.secret.secretName += suffix;
    } else if (v.cloudInitNoCloud || v.cloudInitConfigDrive) {
      const src = (v.cloudInitNoCloud ?? v.cloudInitConfigDrive)! as { secretRef?: { name: string }; networkDataSecretRef?: { name: string } };
      if (secrets && src.secretRef) src.secretRef.name += suffix;
      if (secrets && src.networkDataSecretRef) src.networkDataSecretRef.name += suffix;
    } else if (v.sysprep) {
      if (secrets && v.sysprep.secret) v.sysprep.secret.name += suffix;
      if (configMaps && v.sysprep.configMap) v.sysprep.configMap.name += suffix;
    }
  }
  return vmSpec;
}

/** The pool's VM of index `index`, as the pool controller creates it. */
export function poolVm(pool: VirtualMachinePool, index: number): VirtualMachine {
  const template = pool.spec.virtualMachineTemplate;
  const labels = template.metadata?.labels;
  const annotations = template.metadata?.annotations;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: {
      name: poolVmName(pool.metadata.name ?? '', index),
      namespace: pool.metadata.namespace ?? 'default',
      ...(labels && Object.keys(labels).length ? { labels: { ...labels } } : {}),
      ...(annotations && Object.keys(annotations).length ? { annotations: { ...annotations } } : {}),
      ownerReferences: [poolOwnerReference(pool)],
    },
    spec: indexVmSpec(pool.spec, index),
  };
}

/** The scale-in order of `owned` (first = removed first) for the pool's sort policy. */
export function scaleInOrder(pool: VirtualMachinePool, owned: readonly PoolMember[]): PoolMember[] {
  const policy = pool.spec.scaleInStrategy?.proactive?.selectionPolicy?.sortPolicy ?? 'Random';
  const idx = (m: PoolMember): number => indexFromName(m.name) ?? 0;
  const byIndexDesc = (a: PoolMember, b: PoolMember): number => idx(b) - idx(a) || (a.name < b.name ? 1 : -1);
  const list = [...owned];
  switch (policy) {
    case 'AscendingOrder':
      return list.sort((a, b) => -byIndexDesc(a, b));
    case 'Newest':
      return list.sort((a, b) => (b.createdAt ?? idx(b)) - (a.createdAt ?? idx(a)) || byIndexDesc(a, b));
    case 'Oldest':
      return list.sort((a, b) => (a.createdAt ?? idx(a)) - (b.createdAt ?? idx(b)) || -byIndexDesc(a, b));
    default:
      // DescendingOrder, and Random drawn deterministically (see the module comment).
      return list.sort(byIndexDesc);
  }
}

/** Pure: the VMs `pool` wants given the VMs it owns and the names other VMs hold. */
export function expandPool(pool: VirtualMachinePool, ctx: PoolContext): PoolExpansion {
  const replicas = pool.spec.replicas ?? 1;
  const owned = [...new Map(ctx.owned.map((m) => [m.name, m])).values()];
  let keep = owned.map((m) => m.name);
  let create: string[] = [];
  let remove: string[] = [];
  if (!pool.spec.paused) {
    if (owned.length > replicas) {
      remove = scaleInOrder(pool, owned).slice(0, owned.length - replicas).map((m) => m.name);
      keep = keep.filter((n) => !remove.includes(n));
    } else if (owned.length < replicas) {
      const used = new Set([...ctx.taken, ...keep]);
      for (let i = 0; create.length < replicas - owned.length; i++) {
        const name = poolVmName(pool.metadata.name ?? '', i);
        if (!used.has(name)) create.push(name);
      }
    }
  }
  const names = [...keep, ...create].filter((n) => indexFromName(n) !== undefined);
  names.sort((a, b) => indexFromName(a)! - indexFromName(b)!);
  return { vms: names.map((n) => poolVm(pool, indexFromName(n)!)), create, remove };
}

/** A pool's status from the VMs it owns (KubeVirt: replicas = owned VMs, readyReplicas = those Ready). */
export function poolStatus(pool: VirtualMachinePool, owned: readonly { name: string; ready: boolean }[]): VirtualMachinePoolStatus {
  return {
    replicas: owned.length,
    readyReplicas: owned.filter((m) => m.ready).length,
    labelSelector: selectorString(pool.spec.selector ?? {}),
  };
}
