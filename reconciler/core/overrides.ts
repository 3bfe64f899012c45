/**
 * Imperative overrides (`virtops start|stop|restart|pause|unpause`). Git is the source of
 * truth; an override is a recorded, visible exception for one VM that lasts until the next
 * revision that touches that VM (changes or removes it). Then git wins again.
 */
import { objectKey, planRevision } from './inventory.js';
import type { Inventory, ObjectKey, Override, Revision } from './types.js';

export type OverrideMap = Record<ObjectKey, Override>;

/**
 * Drop the overrides of VMs the revision changes or removes. `current` is the inventory
 * before the revision is applied.
 */
export function applyRevisionToOverrides(
  overrides: OverrideMap,
  current: Inventory,
  revision: Revision,
): { overrides: OverrideMap; cleared: ObjectKey[] } {
  const plan = planRevision(current, revision);
  const touched = new Set<ObjectKey>([...plan.update.map(objectKey), ...plan.create.map(objectKey), ...plan.prune]);
  const kept: OverrideMap = {};
  const cleared: ObjectKey[] = [];
  for (const [key, override] of Object.entries(overrides)) {
    if (touched.has(key)) cleared.push(key);
    else kept[key] = override;
  }
  return { overrides: kept, cleared: cleared.sort() };
}

/** Record a new override (the latest request replaces an older one). */
export function recordOverride(
  overrides: OverrideMap,
  key: ObjectKey,
  override: Override,
): OverrideMap {
  return { ...overrides, [key]: override };
}
