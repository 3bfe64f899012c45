/**
 * Revision planning: which objects of a new revision to create, update or prune. Pruning is
 * driven only by the inventory (what this reconciler applied before), so an object someone
 * else created is never touched, even if it has the same kind.
 */
import { contentHash } from './canonical.js';
import type { Inventory, KubeObject, ObjectKey, Revision, RevisionPlan } from './types.js';

export function objectKey(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): ObjectKey {
  const ns = obj.metadata.namespace ?? 'default';
  return `${obj.apiVersion}/${obj.kind}/${ns}/${obj.metadata.name ?? ''}`;
}

/** The key of a VirtualMachine, by namespace and name. */
export function vmObjectKey(namespace: string, name: string): ObjectKey {
  return objectKey({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { namespace, name } });
}

export function parseObjectKey(key: ObjectKey): { apiVersion: string; kind: string; namespace: string; name: string } {
  // apiVersion may itself contain one slash (group/version); kind, namespace and name never do.
  const parts = key.split('/');
  const name = parts.pop() ?? '';
  const namespace = parts.pop() ?? '';
  const kind = parts.pop() ?? '';
  return { apiVersion: parts.join('/'), kind, namespace, name };
}

export const EMPTY_INVENTORY: Inventory = Object.freeze({ entries: Object.freeze({}) }) as Inventory;

/** Hash of what git declares; status is the reconciler's output, never part of the desired state. */
export function manifestHash(obj: KubeObject): string {
  const { status: _status, ...desired } = obj;
  return contentHash(desired);
}

export function planRevision(current: Inventory, revision: Revision): RevisionPlan {
  const create: KubeObject[] = [];
  const update: KubeObject[] = [];
  const unchanged: KubeObject[] = [];
  const entries: Record<ObjectKey, string> = {};
  for (const obj of revision.manifests) {
    const key = objectKey(obj);
    if (key in entries) {
      throw new Error(`revision ${revision.sha} declares ${key} twice: object keys must be unique in dist/`);
    }
    const hash = manifestHash(obj);
    entries[key] = hash;
    const before = current.entries[key];
    if (before === undefined) create.push(obj);
    else if (before !== hash) update.push(obj);
    else unchanged.push(obj);
  }
  const prune = Object.keys(current.entries)
    .filter((key) => !(key in entries))
    .sort();
  return { create, update, unchanged, prune, next: { revision: revision.sha, entries } };
}
