/**
 * Applying a revision to the cluster, the way Flux's kustomize-controller does:
 *
 * - server-side apply (field manager `virtops`, forced: git owns the fields it declares,
 *   fields other managers set and git does not declare are left alone);
 * - CustomResourceDefinitions first, each waited for until Established, then Namespaces,
 *   then everything else;
 * - launcher Pods are NOT applied: they are templates the VM controller instantiates per
 *   VMI (with the VMI's uid and owner). Applying them would start a second, ownerless
 *   launcher per VM;
 * - an inventory of what was applied is kept in a ConfigMap in the controller's namespace;
 *   pruning deletes only inventory entries that left git, never other objects. A CRD that
 *   leaves git is not deleted (that would delete every VM in the cluster, including ones
 *   virtops never applied); it is dropped from the inventory with a warning.
 *
 * `planApply` and `revisionHealth` are pure.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualMachine } from '../../api/kubevirt.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { LABEL_VM_NAME } from '../../synth/launcher-pod.js';
import { EMPTY_INVENTORY, effectiveRunStrategy, objectKey, parseObjectKey, planRevision, type Inventory, type KubeObject, type Revision, type RevisionPlan } from '../core/index.js';
import { errorMessage, type KubeClient } from './kube.js';
import { vmKeyOf } from './instances.js';

/** The inventory ConfigMap (synth/install.ts grants exactly this name). */
export const INVENTORY_CONFIGMAP = 'virtops-inventory';

export interface ApplyPlan {
  crds: KubeObject[];
  namespaces: KubeObject[];
  objects: KubeObject[];
  /** Launcher Pod templates by VM key (`namespace/name`). */
  templates: Map<string, PodManifest>;
  /** Objects the inventory tracks (everything applied), for planRevision. */
  applied: KubeObject[];
}

export function isLauncherTemplate(m: KubeObject): boolean {
  const labels = (m.metadata['labels'] ?? {}) as Record<string, string>;
  return m.apiVersion === 'v1' && m.kind === 'Pod' && labels['kubevirt.io'] === 'virt-launcher' && labels[LABEL_VM_NAME] !== undefined;
}

export function isVm(m: { apiVersion?: string; kind?: string }): boolean {
  return m.apiVersion === 'kubevirt.io/v1' && m.kind === 'VirtualMachine';
}

/** Pure: sort a revision's manifests into apply order and set the templates aside. */
export function planApply(manifests: KubeObject[]): ApplyPlan {
  const crds: KubeObject[] = [];
  const namespaces: KubeObject[] = [];
  const objects: KubeObject[] = [];
  const templates = new Map<string, PodManifest>();
  for (const m of manifests) {
    if (isLauncherTemplate(m)) {
      const labels = m.metadata['labels'] as Record<string, string>;
      templates.set(`${m.metadata.namespace ?? 'default'}/${labels[LABEL_VM_NAME]}`, m as unknown as PodManifest);
    } else if (m.apiVersion === 'apiextensions.k8s.io/v1' && m.kind === 'CustomResourceDefinition') crds.push(m);
    else if (m.apiVersion === 'v1' && m.kind === 'Namespace') namespaces.push(m);
    else objects.push(m);
  }
  return { crds, namespaces, objects, templates, applied: [...crds, ...namespaces, ...objects] };
}

/** Pure: the VMs (`namespace/name`) a revision creates or changes: their overrides are cleared. */
export function changedVmKeys(plan: RevisionPlan): string[] {
  return [...plan.create, ...plan.update].filter(isVm).map((m) => `${m.metadata.namespace ?? 'default'}/${m.metadata.name ?? ''}`);
}

export function isCrdKey(key: string): boolean {
  const k = parseObjectKey(key);
  return k.apiVersion === 'apiextensions.k8s.io/v1' && k.kind === 'CustomResourceDefinition';
}

export type Health = 'Healthy' | 'Progressing' | 'Degraded';

/**
 * A revision is healthy when each of its VMs shows the state git asks for: Running for
 * Always/RerunOnFailure (and Once before it ran), Stopped for Halted, with the status
 * observing the VM's current generation. Error states make it Degraded.
 */
export function revisionHealth(vms: (VirtualMachine | undefined)[]): { health: Health; pending: string[]; failed: string[] } {
  const pending: string[] = [];
  const failed: string[] = [];
  for (const vm of vms) {
    if (!vm) continue;
    const key = vmKeyOf(vm);
    const status = vm.status;
    const rs = effectiveRunStrategy(vm);
    const printable = status?.printableStatus;
    if (!rs.ok || (printable && /^(Error|ErrImagePull|ImagePullBackOff|CrashLoopBackOff|DataVolumeError)/.test(printable))) {
      failed.push(`${key}: ${rs.ok ? printable : rs.error}`);
      continue;
    }
    const want = rs.strategy === 'Halted' ? ['Stopped'] : rs.strategy === 'Manual' ? ['Running', 'Stopped', 'Paused'] : rs.strategy === 'Once' ? ['Running', 'Stopped'] : ['Running', 'Paused'];
    const current = status?.desiredGeneration === undefined || status.desiredGeneration === vm.metadata.generation;
    if (!printable || !want.includes(printable) || !current) pending.push(`${key}: ${printable ?? 'no status yet'}`);
  }
  return { health: failed.length ? 'Degraded' : pending.length ? 'Progressing' : 'Healthy', pending, failed };
}

export interface ApplierOptions {
  namespace: string;
  log: Logger;
  crdTimeoutMs?: number;
}

export interface ApplyOutcome {
  sha: string;
  plan: RevisionPlan;
  applied: number;
  pruned: string[];
  templates: Map<string, PodManifest>;
}

export class Applier {
  constructor(private readonly client: KubeClient, private readonly opts: ApplierOptions) {}

  /** The inventory stored in the cluster (empty if none yet). */
  async readInventory(): Promise<Inventory> {
    const cm = await this.client.read<KubernetesObject & { data?: Record<string, string> }>({
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: INVENTORY_CONFIGMAP, namespace: this.opts.namespace },
    });
    if (!cm?.data?.['entries']) return EMPTY_INVENTORY;
    try {
      const entries = JSON.parse(cm.data['entries']) as Record<string, string>;
      return { ...(cm.data['revision'] ? { revision: cm.data['revision'] } : {}), entries };
    } catch {
      this.opts.log.warn({ configMap: `${this.opts.namespace}/${INVENTORY_CONFIGMAP}` }, 'inventory is not valid JSON; starting from an empty inventory (nothing will be pruned this time)');
      return EMPTY_INVENTORY;
    }
  }

  private async writeInventory(inv: Inventory, health?: string): Promise<void> {
    await this.client.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: INVENTORY_CONFIGMAP, namespace: this.opts.namespace, labels: { 'app.kubernetes.io/part-of': 'virtops' } },
      data: { revision: inv.revision ?? '', entries: JSON.stringify(inv.entries), ...(health ? { health } : {}) },
    } as KubernetesObject);
  }

  /** Records the revision's health next to its inventory (only called on a change). */
  async recordHealth(inv: Inventory, health: string): Promise<void> {
    await this.writeInventory(inv, health);
  }

  /**
   * Applies every object of the revision (also the unchanged ones: server-side apply is
   * idempotent and takes back fields someone edited), then prunes what left git.
   */
  async apply(rev: Revision, hooks: { beforeInventory?: (plan: RevisionPlan, base: string | undefined) => Promise<void> } = {}): Promise<ApplyOutcome> {
    const { log } = this.opts;
    const split = planApply(rev.manifests);
    const current = await this.readInventory();
    const plan = planRevision(current, { sha: rev.sha, manifests: split.applied });
    for (const crd of split.crds) await this.client.apply(crd as KubernetesObject);
    await Promise.all(split.crds.map((c) => this.waitEstablished(c.metadata.name ?? '')));
    for (const ns of split.namespaces) await this.client.apply(ns as KubernetesObject);
    // A few at a time: fast for 1,000 VMs without flooding the API server.
    const errors: string[] = [];
    await runLimited(split.objects, 8, async (obj) => {
      try {
        await this.client.apply(structuredClone(obj) as KubernetesObject);
      } catch (err) {
        errors.push(`${objectKey(obj)}: ${errorMessage(err)}`);
      }
    });
    if (errors.length) {
      // The inventory is not advanced: the next attempt re-applies, and nothing is pruned
      // on the strength of a partly applied revision.
      throw new Error(`applying revision ${rev.sha.slice(0, 12)} failed for ${errors.length} object(s): ${errors.slice(0, 5).join('; ')}`);
    }
    // E.g. clearing the overrides of changed VMs: before the inventory records the revision,
    // so a failure is retried with the next apply (the plan still shows them changed).
    await hooks.beforeInventory?.(plan, current.revision);
    // Write the inventory before pruning: a crash in between re-prunes (idempotent) rather
    // than forgetting what to prune.
    const next: Inventory = { revision: rev.sha, entries: { ...plan.next.entries } };
    const pruned: string[] = [];
    const keepCrds = plan.prune.filter(isCrdKey);
    for (const key of keepCrds) log.warn({ crd: key }, 'a CustomResourceDefinition left git; it is NOT deleted (that would delete every object of its kind): remove it by hand if intended');
    const prune = plan.prune.filter((k) => !isCrdKey(k));
    // Keep the to-be-pruned entries until they are gone, so a crash mid-prune retries them.
    for (const key of prune) next.entries[key] = current.entries[key] ?? '';
    await this.writeInventory(next);
    for (const key of prune) {
      const k = parseObjectKey(key);
      const r = await this.client.delete({ apiVersion: k.apiVersion, kind: k.kind, metadata: { name: k.name, ...(k.namespace ? { namespace: k.namespace } : {}) } }, { propagationPolicy: 'Background' }).catch((err: unknown) => {
        log.error({ object: key, err: errorMessage(err) }, 'prune failed; it stays in the inventory and is retried');
        return 'failed' as const;
      });
      if (r !== 'failed') {
        delete next.entries[key];
        pruned.push(key);
      }
    }
    if (prune.length) await this.writeInventory(next);
    log.info({ sha: rev.sha, created: plan.create.length, updated: plan.update.length, unchanged: plan.unchanged.length, pruned, templates: split.templates.size }, `applied revision ${rev.sha.slice(0, 12)}`);
    return { sha: rev.sha, plan, applied: split.applied.length, pruned, templates: split.templates };
  }

  private async waitEstablished(name: string): Promise<void> {
    const deadline = Date.now() + (this.opts.crdTimeoutMs ?? 60_000);
    for (;;) {
      const crd = await this.client.read<KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }>({
        apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name },
      });
      if (crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
      if (Date.now() > deadline) throw new Error(`CustomResourceDefinition ${name} was not Established within ${(this.opts.crdTimeoutMs ?? 60_000) / 1000}s; check kube-apiserver logs`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function runLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
