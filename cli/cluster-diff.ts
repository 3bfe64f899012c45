/**
 * `virtops diff` in cluster mode, like `flux diff kustomization --path`: the dist/ of the
 * working directory against the API server. Per object, a server-side apply dry run with the
 * controller's field manager shows exactly what applying would change (the API server's own
 * defaulting and merge, no guess); inventory entries that left dist/ would be pruned; per VM,
 * reconciler/core's decision says what the controller would do to its instance next
 * (with the override a changed VM loses).
 */
import { resolve } from 'node:path';
import type { VirtualMachine, VirtualMachineInstance } from '../api/kubevirt.js';
import {
  DEFAULT_BACKOFF_POLICY,
  decideVmActions,
  objectKey,
  parseObjectKey,
  parseOverride,
  planRevision,
  reconcileBackoff,
  reconcileStateFromStatus,
  OVERRIDE_ANNOTATION,
  type Action,
  type KubeObject,
} from '../reconciler/core/index.js';
import { parseManifestFiles, readManifestFiles } from '../reconciler/source/manifests.js';
import { isCrdKey, isVm, planApply, runLimited } from '../reconciler/cluster/apply.js';
import { observeInstance } from '../reconciler/cluster/instances.js';
import type { DiffEntry } from '../reconciler/standalone/backend.js';
import { comparable, fieldDiff } from './cluster-format.js';
import { KubeApiError, resourcePath, type KubeRest } from './kube-rest.js';
import type { DiffView, ObjectChange } from './vm-access.js';

export async function clusterDiff(kube: KubeRest, opts: { distDir: string; controllerNamespace: string; now?: number }): Promise<DiffView> {
  const now = opts.now ?? Date.now();
  const files = await readManifestFiles(process.cwd(), opts.distDir);
  if (!files) throw new Error(`--path ${opts.distDir}: no such directory under ${process.cwd()}; run in your repository or pass --path DIR`);
  const parsed = parseManifestFiles(files);
  if (parsed.errors.length) throw new Error(`dist/ would be refused by the controller:\n  ${parsed.errors.join('\n  ')}`);
  const plan = planApply(parsed.manifests);
  const cm = await kube.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${opts.controllerNamespace}/configmaps/virtops-inventory`).catch((err: unknown) => {
    if (err instanceof KubeApiError && err.code === 403) return undefined;
    throw err;
  });
  let entries: Record<string, string> = {};
  try {
    entries = JSON.parse(cm?.data?.['entries'] ?? '{}') as Record<string, string>;
  } catch {
    /* an unreadable inventory prunes nothing, as in the controller */
  }
  const revision = planRevision({ entries }, { sha: 'local', manifests: plan.applied });
  const touched = new Set([...revision.create, ...revision.update].map(objectKey));

  const objects: ObjectChange[] = [];
  const desiredVms = new Map<string, { desired: VirtualMachine; live?: VirtualMachine; change: DiffEntry['change'] }>();
  await runLimited(plan.applied, 8, async (obj) => {
    const key = objectKey(obj);
    // A kind not served yet (its CRD is in dist/) is a create.
    const served = await kube.resource(obj.apiVersion, obj.kind);
    const path = served ? resourcePath(obj.apiVersion, served, obj.metadata.namespace ?? 'default', obj.metadata.name ?? '') : undefined;
    const live = path ? await kube.get<Record<string, unknown>>(path) : undefined;
    let desired: Record<string, unknown> = obj as unknown as Record<string, unknown>;
    let change: DiffEntry['change'] = 'create';
    if (live && path) {
      // What the controller's apply would make of it: server-side apply, its field manager, forced.
      desired = await kube.call<Record<string, unknown>>('PATCH', `${path}?fieldManager=virtops&force=true&dryRun=All`, obj, 'apply');
      const fields = fieldDiff(comparable(live), comparable(desired));
      change = fields.length ? 'update' : 'unchanged';
      if (fields.length) objects.push({ key, change: 'update', fields });
    } else objects.push({ key, change: 'create', fields: [] });
    if (isVm(obj)) desiredVms.set(`${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`, { desired: desired as unknown as VirtualMachine, ...(live ? { live: live as unknown as VirtualMachine } : {}), change });
  });
  for (const key of revision.prune) {
    if (isCrdKey(key)) continue;
    objects.push({ key, change: 'prune', fields: [] });
  }
  objects.sort((a, b) => a.key.localeCompare(b.key));

  const entriesOut: DiffEntry[] = [];
  const pruneVms = revision.prune.map(parseObjectKey).filter((k) => isVm(k)).map((k) => `${k.namespace}/${k.name}`);
  for (const vmKey of [...desiredVms.keys(), ...pruneVms].sort()) {
    const [ns, name] = vmKey.split('/') as [string, string];
    const vmi = await kube.get<VirtualMachineInstance>(`/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachineinstances/${name}`).catch(() => undefined);
    const d = desiredVms.get(vmKey);
    if (!d) {
      entriesOut.push({ vm: vmKey, change: 'prune', actions: vmi?.metadata.uid ? [{ type: 'delete-instance', uid: vmi.metadata.uid, gracePeriodSeconds: vmi.spec.terminationGracePeriodSeconds ?? 30, reason: 'VM left git: prune' }] : [] });
      continue;
    }
    const pods = vmi?.metadata.uid
      ? (await kube.call<{ items: unknown[] }>('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(`kubevirt.io/created-by=${vmi.metadata.uid}`)}`).catch(() => ({ items: [] }))).items
      : [];
    const observed = observeInstance(vmi, pods[0] as Parameters<typeof observeInstance>[1], now);
    const remembered = reconcileStateFromStatus(d.live?.status);
    const backoff = reconcileBackoff(remembered.backoff, observed, now, DEFAULT_BACKOFF_POLICY);
    const raw = d.live?.metadata.annotations?.[OVERRIDE_ANNOTATION];
    const parsedOverride = raw !== undefined ? parseOverride(raw) : undefined;
    // A commit that changes the VM clears its override (git wins again).
    const override = parsedOverride?.ok && !touched.has(objectKey(d.desired as unknown as KubeObject)) ? parsedOverride.override : undefined;
    const actions: Action[] = decideVmActions(d.desired, observed, { now, backoff, ...(override ? { override } : {}), ...(remembered.onceCompleted ? { onceCompleted: true } : {}) }, DEFAULT_BACKOFF_POLICY);
    entriesOut.push({ vm: vmKey, change: d.change, actions });
  }
  return { ...(cm?.data?.['revision'] ? { applied: cm.data['revision'] } : {}), next: `${resolve(opts.distDir)} (local)`, objects, entries: entriesOut };
}
