/**
 * Imperative overrides (`virtops start|stop|restart|pause|unpause`). Git is the source of
 * truth; an override is a recorded, visible exception for one VM that lasts until the next
 * revision that touches that VM (changes or removes it). Then git wins again.
 */
import { objectKey } from './inventory.js';
import { IMPERATIVE_ACTIONS, type ImperativeAction, type ObjectKey, type Override, type RevisionPlan } from './types.js';

export type OverrideMap = Record<ObjectKey, Override>;

/**
 * Drop the overrides of VMs the revision changes or removes: `plan` is the revision planned
 * against the inventory before it (planRevision; the caller has it already). `changedInBetween`:
 * the VMs that commits between the two changed although the net change is nothing (the
 * source's history: GitSource.changedBetween).
 */
export function applyRevisionToOverrides(
  overrides: OverrideMap,
  plan: Pick<RevisionPlan, 'create' | 'update' | 'prune'>,
  changedInBetween: Iterable<ObjectKey> = [],
): { overrides: OverrideMap; cleared: ObjectKey[] } {
  const touched = new Set<ObjectKey>([...plan.update.map(objectKey), ...plan.create.map(objectKey), ...plan.prune, ...changedInBetween]);
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

/**
 * Where an override lives on a VM object when the store keeps it with the VM (annotation
 * value = JSON `{action, at, revision}`, `at` as an RFC 3339 time).
 */
export const OVERRIDE_ANNOTATION = 'virtops.io/override';

export function serializeOverride(o: Override): string {
  return JSON.stringify({ action: o.action, at: new Date(o.at).toISOString(), revision: o.revision });
}

/** Parse and validate a stored override; errors name the field and the fix. */
export function parseOverride(text: string): { ok: true; override: Override } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: `${OVERRIDE_ANNOTATION}: not JSON (fix: write {"action","at","revision"} or remove the annotation)` };
  }
  if (raw === null || typeof raw !== 'object') return { ok: false, error: `${OVERRIDE_ANNOTATION}: must be a JSON object` };
  const o = raw as Record<string, unknown>;
  if (typeof o.action !== 'string' || !(IMPERATIVE_ACTIONS as readonly string[]).includes(o.action)) {
    return { ok: false, error: `${OVERRIDE_ANNOTATION}.action: must be one of ${IMPERATIVE_ACTIONS.join(', ')}, got ${JSON.stringify(o.action)}` };
  }
  const at = typeof o.at === 'string' ? Date.parse(o.at) : typeof o.at === 'number' ? o.at : NaN;
  if (!Number.isFinite(at)) return { ok: false, error: `${OVERRIDE_ANNOTATION}.at: must be an RFC 3339 time, got ${JSON.stringify(o.at)}` };
  if (typeof o.revision !== 'string' || o.revision === '') {
    return { ok: false, error: `${OVERRIDE_ANNOTATION}.revision: must be the commit SHA current when the override was made` };
  }
  return { ok: true, override: { action: o.action as ImperativeAction, at, revision: o.revision } };
}
