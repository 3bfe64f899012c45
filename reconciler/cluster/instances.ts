/**
 * The cluster controller's pure half: the VMI a VM starts, the launcher Pod instantiated
 * from the template in git for that VMI, what a VMI and its Pod say about the instance
 * (`ObservedInstance` for reconciler/core), and when a VM status is worth writing.
 *
 * Names are deterministic so that every create is idempotent (a controller killed between
 * two writes, or reading a stale cache, gets AlreadyExists instead of a duplicate): the VMI
 * is named after its VM (as in KubeVirt), the Pod after the VM plus the VMI uid's first
 * characters (a new incarnation never collides with a terminating Pod of the previous one).
 */
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { Condition, InstancetypeStatusRef, VirtualMachine, VirtualMachineInstance, VirtualMachineStatus, VMIPhase } from '../../api/kubevirt.js';
import { API_VERSION, vmiFromVm } from '../../api/kubevirt.js';
import { instancetypeVmiAnnotations, referencesInstancetype } from '../../api/expand.js';
import type { InstancetypeObject } from '../../api/instancetype.js';
import { controllerRevision, statusRef, type ControllerRevision } from '../../api/instancetype-revision.js';
import { ANNOTATION_MEMORY_OVERHEAD, LABEL_CREATED_BY, LABEL_VM_NAME, computeResources, formatOverhead, launcherPodName, TEMPLATE_ANNOTATIONS } from '../../synth/launcher-pod.js';
import { computeOverhead, type Emulation } from '../../synth/overhead.js';
import type { PodManifest } from '../../synth/pod-types.js';
import { canonicalJson, type ObservedInstance } from '../core/index.js';

export const VMI_FINALIZER = 'virtops.io/vmi-cleanup';
/** The VM generation a VMI was created from (KubeVirt's annotation). */
export const ANNOTATION_VM_GENERATION = 'kubevirt.io/vm-generation';
/** The revision (commit) whose launcher Pod template a Pod was made from. */
export const ANNOTATION_REVISION = 'virtops.io/revision';
export const LABEL_LAUNCHER = 'kubevirt.io';

export function vmKeyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? ''}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

function ownerRef(owner: { apiVersion: string; kind: string; metadata: { name?: string; uid?: string } }): NonNullable<VirtualMachine['metadata']['ownerReferences']>[number] {
  if (!owner.metadata.uid || !owner.metadata.name) throw new Error(`${owner.kind} has no uid/name yet: it must be read from the API server before it can own objects`);
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/**
 * The refs (status.instancetypeRef/preferenceRef) of the revisions a VMI was started from, as
 * JSON on the VMI: the VM status takes them from its current VMI, so they survive a
 * controller restart and name what runs, not what git says now.
 */
export const ANNOTATION_INSTANCETYPE_REFS = 'virtops.io/instancetype-refs';
/** KubeVirt's annotations on a VMI created from a VM with matchers (api/expand.ts instancetypeVmiAnnotations). */
const SIZED_BY_ANNOTATIONS = new Set(['kubevirt.io/instancetype-name', 'kubevirt.io/cluster-instancetype-name', 'kubevirt.io/preference-name', 'kubevirt.io/cluster-preference-name']);

/** What a VM's instance was expanded from: the revisions stored when it started. */
export interface StartedRevisions {
  instancetype?: ControllerRevision;
  preference?: ControllerRevision;
}

type OwnedControllerRevision = ControllerRevision & { metadata: ControllerRevision['metadata'] & { ownerReferences: NonNullable<VirtualMachine['metadata']['ownerReferences']> } };

/**
 * The ControllerRevisions KubeVirt stores when a VM with an instancetype/preference starts:
 * a copy of each object as it is now, owned by the VM (they go when it goes). The name is
 * a content hash, so creating one again for the same content is a no-op (AlreadyExists).
 */
export function startRevisions(vm: VirtualMachine, objects: { instancetype?: InstancetypeObject; preference?: InstancetypeObject }): { instancetype?: OwnedControllerRevision; preference?: OwnedControllerRevision } {
  const owned = (obj: InstancetypeObject): OwnedControllerRevision => {
    const rev = controllerRevision(vm, obj);
    return { ...rev, metadata: { ...rev.metadata, ownerReferences: [ownerRef(vm)] } };
  };
  return {
    ...(objects.instancetype ? { instancetype: owned(objects.instancetype) } : {}),
    ...(objects.preference ? { preference: owned(objects.preference) } : {}),
  };
}

function startedRefs(revisions: StartedRevisions): { instancetypeRef?: InstancetypeStatusRef; preferenceRef?: InstancetypeStatusRef } {
  return {
    ...(revisions.instancetype ? { instancetypeRef: statusRef(revisions.instancetype) } : {}),
    ...(revisions.preference ? { preferenceRef: statusRef(revisions.preference) } : {}),
  };
}

/**
 * status.instancetypeRef/preferenceRef of a VM with matchers: those its current VMI was
 * started from; with no VMI (stopped), those the status already shows (KubeVirt keeps them).
 */
export function instancetypeStatusRefs(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, previous: VirtualMachineStatus | undefined): { instancetypeRef?: InstancetypeStatusRef; preferenceRef?: InstancetypeStatusRef } {
  if (!referencesInstancetype(vm)) return {};
  const raw = vmi?.metadata.annotations?.[ANNOTATION_INSTANCETYPE_REFS];
  if (raw !== undefined) {
    try {
      const refs = JSON.parse(raw) as { instancetypeRef?: InstancetypeStatusRef; preferenceRef?: InstancetypeStatusRef };
      return {
        ...(refs.instancetypeRef ? { instancetypeRef: refs.instancetypeRef } : {}),
        ...(refs.preferenceRef ? { preferenceRef: refs.preferenceRef } : {}),
      };
    } catch {
      // Not ours (edited by hand): fall back to what the status shows.
    }
  }
  return {
    ...(previous?.instancetypeRef ? { instancetypeRef: previous.instancetypeRef } : {}),
    ...(previous?.preferenceRef ? { preferenceRef: previous.preferenceRef } : {}),
  };
}

/**
 * The VMI a VM starts: its template, owned by the VM, held by our cleanup finalizer. A VM
 * with matchers is passed expanded; the VMI then names what sized it (KubeVirt's
 * instancetype/preference-name annotations) and the revisions it was started from.
 */
export function vmiForVm(vm: VirtualMachine, revisions: StartedRevisions = {}): VirtualMachineInstance {
  const vmi = vmiFromVm(vm);
  const refs = startedRefs(revisions);
  vmi.metadata = {
    ...vmi.metadata,
    name: vm.metadata.name,
    namespace: vm.metadata.namespace ?? 'default',
    labels: { ...(vmi.metadata.labels ?? {}), [LABEL_VM_NAME]: vm.metadata.name ?? '' },
    annotations: {
      ...(vmi.metadata.annotations ?? {}),
      ...(vm.metadata.generation !== undefined ? { [ANNOTATION_VM_GENERATION]: String(vm.metadata.generation) } : {}),
      ...instancetypeVmiAnnotations(vm),
      ...(Object.keys(refs).length ? { [ANNOTATION_INSTANCETYPE_REFS]: JSON.stringify(refs) } : {}),
    },
    ownerReferences: [ownerRef(vm)],
    finalizers: [VMI_FINALIZER],
  };
  return vmi;
}

export function launcherPodNameFor(vmName: string, vmiUid: string): string {
  const suffix = vmiUid.replace(/[^a-z0-9]/g, '').slice(0, 5);
  return launcherPodName(vmName, suffix);
}

/**
 * A launcher Pod for this VMI from the template synth wrote to dist/: same spec, the real
 * VMI uid in `kubevirt.io/created-by` (the downward API feeds it to `--uid $(VMI_UID)`),
 * owned by the VMI so the garbage collector removes it with the VMI.
 */
/** The real Pod is not a template: GitOps tools may see it (it is not in git, so they leave it alone). */
function withoutTemplateMarkers(annotations: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => !(k in TEMPLATE_ANNOTATIONS)));
}

export function instantiateLauncherPod(template: PodManifest, vmi: VirtualMachineInstance, revision?: string): PodManifest {
  const uid = vmi.metadata.uid;
  const vmName = vmi.metadata.name;
  if (!uid || !vmName) throw new Error('instantiateLauncherPod: the VMI must come from the API server (metadata.uid and metadata.name set)');
  // A VMI sized by an instancetype: the Pod reserves what the expanded VMI needs.
  const sized = Object.keys(vmi.metadata.annotations ?? {}).some((k) => k === ANNOTATION_INSTANCETYPE_REFS || SIZED_BY_ANNOTATIONS.has(k));
  const pod = sized ? withResourcesOf(template, vmi) : structuredClone(template);
  pod.metadata = {
    ...pod.metadata,
    name: launcherPodNameFor(vmName, uid),
    namespace: vmi.metadata.namespace ?? 'default',
    labels: { ...(pod.metadata.labels ?? {}), [LABEL_CREATED_BY]: uid, [LABEL_VM_NAME]: vmName },
    annotations: { ...withoutTemplateMarkers(pod.metadata.annotations), ...(revision ? { [ANNOTATION_REVISION]: revision } : {}) },
    ownerReferences: [ownerRef({ apiVersion: API_VERSION, kind: 'VirtualMachineInstance', metadata: vmi.metadata })],
  };
  delete pod.metadata.uid;
  delete pod.metadata.resourceVersion;
  delete pod.metadata.creationTimestamp;
  return pod;
}

/** The emulation the template's launcher was rendered for (its `--emulation` flag), else auto. */
function templateEmulation(pod: PodManifest): Emulation {
  const args = pod.spec.containers.find((c) => c.name === 'compute')?.args ?? [];
  const i = args.indexOf('--emulation');
  const v = i >= 0 ? args[i + 1] : undefined;
  return v === 'kvm' || v === 'tcg' ? v : 'auto';
}

/**
 * The Pod with its compute container's resources (and the overhead annotation) computed from
 * the VMI it runs. A template in git is rendered from the VM as synth saw it; the VMI is what
 * was expanded from the instancetype when it started (an instancetype edited in git alone, or
 * one only the cluster has), and the scheduler must reserve what the guest will use.
 */
export function withResourcesOf(pod: PodManifest, vmi: VirtualMachineInstance): PodManifest {
  const out = structuredClone(pod);
  const compute = out.spec.containers.find((c) => c.name === 'compute');
  if (!compute) return out;
  const overhead = computeOverhead(vmi.spec, { emulation: templateEmulation(pod) });
  compute.resources = computeResources(vmi.spec, overhead);
  out.metadata.annotations = { ...(out.metadata.annotations ?? {}), [ANNOTATION_MEMORY_OVERHEAD]: formatOverhead(overhead) };
  return out;
}

export function isControlledBy(obj: { metadata?: { ownerReferences?: { uid: string; controller?: boolean }[] } }, ownerUid: string | undefined): boolean {
  return ownerUid !== undefined && (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === ownerUid && r.controller === true);
}

/** The launcher Pod's view of scheduling: the scheduler's verdict, if any. */
export function podScheduling(pod: V1Pod | undefined): { scheduled: boolean; unschedulable?: string } {
  if (!pod) return { scheduled: false };
  if (pod.spec?.nodeName) return { scheduled: true };
  const cond = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (cond?.status === 'False' && cond.reason === 'Unschedulable') return { scheduled: false, unschedulable: cond.message ?? 'the scheduler found no node for the launcher Pod' };
  return { scheduled: false };
}

/** The kubelet's waiting reasons for an image it cannot pull (KubeVirt copies them onto the VM). */
export const IMAGE_PULL_REASONS = ['ErrImagePull', 'ImagePullBackOff'] as const;
export type ImagePullReason = (typeof IMAGE_PULL_REASONS)[number];
export const isImagePullReason = (reason: string | undefined): reason is ImagePullReason => (IMAGE_PULL_REASONS as readonly (string | undefined)[]).includes(reason);

/**
 * The first container of the launcher Pod (init containers first, in order) that the
 * kubelet reports waiting on an image it cannot pull: a containerDisk (or kernelBoot) image
 * that does not exist, or a registry that refuses it. The message names the image and the
 * container, then the kubelet's own words.
 */
export function podImagePullError(pod: V1Pod | undefined): { reason: ImagePullReason; container: string; image: string; message: string } | undefined {
  if (!pod) return undefined;
  const specImage = (name: string) => [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name)?.image;
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const reason = s.state?.waiting?.reason;
    if (!isImagePullReason(reason)) continue;
    // The spec's reference is what the user wrote; the status may hold a resolved one.
    const image = specImage(s.name) ?? s.image ?? '(unknown image)';
    const said = s.state?.waiting?.message;
    return { reason, container: s.name, image, message: `cannot pull image ${image} (container ${s.name}): ${said ?? reason}` };
  }
  return undefined;
}

/**
 * The VMI's conditions as the controller wants them while the launcher Pod waits on an image
 * (KubeVirt's virt-controller sets Synchronized=False with the container's reason and
 * message), or `undefined` when nothing is to be written. Only before the node agent has
 * reported the VMI (no phase, or Pending/Scheduling/Scheduled): after that the conditions are
 * the agent's. A condition of this kind whose cause is gone (the image appeared) is removed.
 */
export function vmiPullConditions(vmi: VirtualMachineInstance, pod: V1Pod | undefined, now: Date): Condition[] | undefined {
  const phase = vmi.status?.phase;
  if (vmi.metadata.deletionTimestamp || (phase !== undefined && phase !== 'Pending' && phase !== 'Scheduling' && phase !== 'Scheduled')) return undefined;
  const conditions = vmi.status?.conditions ?? [];
  const current = conditions.find((c) => c.type === 'Synchronized');
  const ours = current !== undefined && current.status === 'False' && isImagePullReason(current.reason);
  const err = podImagePullError(pod);
  const others = conditions.filter((c) => c.type !== 'Synchronized');
  if (!err) return ours ? others : undefined;
  if (ours && current.reason === err.reason && current.message === err.message) return undefined;
  if (current && !ours) return undefined; // someone else's Synchronized condition: not ours to replace
  return [...others, { type: 'Synchronized', status: 'False', reason: err.reason, message: err.message, lastTransitionTime: ours && current.lastTransitionTime ? current.lastTransitionTime : now.toISOString() }];
}

function ms(t: Date | string | undefined | null): number | undefined {
  if (t === undefined || t === null) return undefined;
  const v = new Date(t).getTime();
  return Number.isNaN(v) ? undefined : v;
}

function condition(vmi: VirtualMachineInstance, type: string): Condition | undefined {
  return vmi.status?.conditions?.find((c) => c.type === type);
}

/**
 * What the VMI (written by the node agent) and its launcher Pod (scheduler, agent) say about
 * the instance, in reconciler/core's terms. The VMI's own phase wins once the agent wrote
 * one; before that, the Pod tells whether it is waiting for the scheduler or was refused.
 */
export function observeInstance(vmi: VirtualMachineInstance | undefined, pod: V1Pod | undefined, now: number): ObservedInstance | undefined {
  if (!vmi || !vmi.metadata.uid) return undefined;
  const createdAt = ms(vmi.metadata.creationTimestamp) ?? now;
  const gen = vmi.metadata.annotations?.[ANNOTATION_VM_GENERATION];
  let phase: VMIPhase = vmi.status?.phase ?? 'Pending';
  let reason = vmi.status?.reason;
  let message: string | undefined = condition(vmi, 'Ready')?.message ?? undefined;
  const final = phase === 'Succeeded' || phase === 'Failed';
  if (!final) {
    const podPhase = pod?.status?.phase;
    if (podPhase === 'Failed' || podPhase === 'Succeeded') {
      // The launcher Pod ended (its process died, or was evicted) without the VMI being finalised.
      phase = 'Failed';
      reason = 'LauncherPodFinished';
      message = pod?.status?.message ?? `launcher Pod ${pod?.metadata?.name} is ${podPhase}`;
    } else if (!vmi.status?.phase || phase === 'Pending' || phase === 'Scheduling' || phase === 'Scheduled') {
      const s = podScheduling(pod);
      // On its node, the kubelet may be unable to pull an image (a containerDisk that does not
      // exist): the VM shows ErrImagePull/ImagePullBackOff (core/status.ts), as KubeVirt's does.
      const pull = s.scheduled ? podImagePullError(pod) : undefined;
      if (s.unschedulable !== undefined) {
        phase = 'Scheduling';
        reason = 'Unschedulable';
        message = s.unschedulable;
      } else if (pull) {
        phase = 'Scheduled';
        reason = pull.reason;
        message = pull.message;
      } else if (s.scheduled) {
        phase = 'Scheduled';
      } else {
        phase = pod ? 'Scheduling' : 'Pending';
      }
    }
  }
  const transitions = vmi.status?.phaseTransitionTimestamps ?? [];
  const runningSince = ms(transitions.find((t) => t.phase === 'Running')?.phaseTransitionTimestamp);
  const finishedAt = ms(transitions.find((t) => t.phase === 'Succeeded' || t.phase === 'Failed')?.phaseTransitionTimestamp);
  const paused = condition(vmi, 'Paused')?.status === 'True';
  // The agent keeps the last known phase while it cannot see the guest (core/launcher-phase.ts).
  const sync = condition(vmi, 'Synchronized');
  const outOfSync = sync?.status === 'False' && (sync.reason === 'LibvirtUnreachable' || sync.reason === 'LauncherUnresponsive') ? { reason: sync.reason, message: sync.message ?? '' } : undefined;
  return {
    uid: vmi.metadata.uid,
    phase,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
    spec: vmi.spec,
    ...(gen !== undefined && /^\d+$/.test(gen) ? { vmGeneration: Number(gen) } : {}),
    createdAt,
    ...(runningSince !== undefined ? { runningSince } : {}),
    ...(finishedAt !== undefined ? { finishedAt } : {}),
    paused,
    ready: condition(vmi, 'Ready')?.status === 'True',
    ...(vmi.metadata.deletionTimestamp ? { terminating: true } : {}),
    ...(outOfSync ? { outOfSync } : {}),
    // Mirrored onto the VM (core/status.ts), as KubeVirt does.
    ...(condition(vmi, 'AgentConnected')?.status === 'True' ? { agentConnected: true } : {}),
  };
}

/** Statuses a VM passes through on its way somewhere: their writes may be coalesced. */
const TRANSIENT = new Set(['Starting', 'Stopping', 'Provisioning']);

/**
 * Whether and when to write a computed VM status. Unchanged → never (no no-op writes).
 * A transient status (Starting, Stopping) waits `coalesceMs` and is written only if it is
 * still what the VM shows then, so a VM that reaches Running quickly costs one status
 * write instead of two; anything else is written at once.
 */
export function statusWrite(previous: VirtualMachineStatus | undefined, next: VirtualMachineStatus, opts: { coalesceMs: number; pendingSinceMs?: number; now: number }): { write: 'now' } | { write: 'later'; afterMs: number } | { write: 'no' } {
  if (previous && canonicalJson(withoutNulls(previous)) === canonicalJson(withoutNulls(next))) return { write: 'no' };
  if (next.printableStatus && TRANSIENT.has(next.printableStatus) && previous?.printableStatus !== next.printableStatus) {
    const since = opts.pendingSinceMs ?? opts.now;
    const left = since + opts.coalesceMs - opts.now;
    if (left > 0) return { write: 'later', afterMs: left };
  }
  return { write: 'now' };
}

/**
 * Nulls removed, recursively: the API server prunes `null` from CRD objects whose schema
 * does not allow it (`lastProbeTime: null`), so comparisons must ignore them or every
 * reconcile would see a difference and write.
 */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => withoutNulls(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = withoutNulls(v);
    return out as T;
  }
  return value;
}

/** A JSON merge patch turning `previous` into `next` at the top level (removed keys → null). */
export function statusMergePatch(previous: object | undefined, next: object): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...next };
  for (const k of Object.keys(previous ?? {})) if (!(k in next)) patch[k] = null;
  return patch;
}

export function asKubeObject<T>(obj: T): KubernetesObject {
  return obj as unknown as KubernetesObject;
}
