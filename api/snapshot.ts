/**
 * KubeVirt's `snapshot.kubevirt.io/v1beta1` VirtualMachineSnapshot and VirtualMachineRestore
 * as virtops runs them on a single host. Pure: which volumes a snapshot takes, the status
 * KubeVirt shows (phase, readyToUse, conditions Progressing/Ready, indications), and the plan
 * of a restore (which snapshot file goes to which claim or hostDisk). The copying is in
 * launcher/volumes/snapshot.ts, the worker in reconciler/standalone/snapshots.ts.
 */
import type { Condition, VirtualMachine, Volume } from './kubevirt.js';

export const SNAPSHOT_API_VERSION = 'snapshot.kubevirt.io/v1beta1';

/** The name `virtops snapshot create` gives a snapshot when none is asked for: `<vm>-<yyyymmdd-hhmmss>` (UTC). */
export function defaultSnapshotName(vm: string, now: Date): string {
  return `${vm}-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-').toLowerCase()}`;
}

/** The name `virtops snapshot restore` gives a restore when none is asked for: `restore-<snapshot>-<time in base 36>`. */
export function defaultRestoreName(snapshot: string, now: Date): string {
  return `restore-${snapshot}-${now.getTime().toString(36)}`;
}

/** The kinds virtops runs and their vendored OpenAPI definitions. */
export const SNAPSHOT_KINDS: Record<string, string> = {
  VirtualMachineSnapshot: 'v1beta1.VirtualMachineSnapshot',
  VirtualMachineRestore: 'v1beta1.VirtualMachineRestore',
};

export interface ObjectRef {
  apiGroup?: string;
  kind: string;
  name: string;
}

export interface VirtualMachineSnapshot {
  apiVersion: typeof SNAPSHOT_API_VERSION;
  kind: 'VirtualMachineSnapshot';
  metadata: { name: string; namespace?: string; uid?: string; creationTimestamp?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { source: ObjectRef; deletionPolicy?: 'Delete' | 'Retain'; failureDeadline?: string };
  status?: SnapshotStatus;
}

export interface VirtualMachineRestore {
  apiVersion: typeof SNAPSHOT_API_VERSION;
  kind: 'VirtualMachineRestore';
  metadata: { name: string; namespace?: string; uid?: string; creationTimestamp?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    target: ObjectRef;
    virtualMachineSnapshotName: string;
    targetReadinessPolicy?: 'WaitGracePeriod' | 'StopTarget' | 'WaitEventually' | 'FailImmediate';
    volumeRestoreOverrides?: { volumeName?: string; restoreName?: string }[];
  };
  status?: RestoreStatus;
}

export type SnapshotPhase = 'InProgress' | 'Succeeded' | 'Failed';
export type Indication = 'Online' | 'GuestAgent' | 'NoGuestAgent';

export interface SnapshotStatus {
  sourceUID?: string;
  virtualMachineSnapshotContentName?: string;
  creationTime?: string | null;
  phase: SnapshotPhase;
  readyToUse: boolean;
  indications?: Indication[];
  error?: { message: string; time: string };
  conditions: Condition[];
  snapshotVolumes?: { includedVolumes: string[]; excludedVolumes: string[] };
}

export interface RestoreStatus {
  complete: boolean;
  restoreTime?: string;
  restores?: { volumeName: string; persistentVolumeClaim?: string; hostDisk?: string; volumeSnapshotName: string }[];
  conditions: Condition[];
}

/** A persistent disk a snapshot copies: a claim (persistentVolumeClaim/dataVolume) or a hostDisk. */
export type SnapshotVolume =
  | { name: string; kind: 'claim'; claim: string }
  | { name: string; kind: 'hostDisk'; path: string };

export function isSnapshotObject(obj: { apiVersion?: unknown; kind?: unknown }): boolean {
  return obj.apiVersion === SNAPSHOT_API_VERSION && typeof obj.kind === 'string' && obj.kind in SNAPSHOT_KINDS;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** What KubeVirt's snapshot webhook checks beyond the schema. */
export function checkSnapshotRules(obj: Obj): { path: string; message: string; fix?: string }[] {
  const spec = isObj(obj.spec) ? obj.spec : {};
  const issues: { path: string; message: string; fix?: string }[] = [];
  const ref = (at: string, r: unknown, what: string): void => {
    if (!isObj(r)) return void issues.push({ path: at, message: 'required field is missing', fix: `name the ${what}: { apiGroup: kubevirt.io, kind: VirtualMachine, name: <vm> }` });
    if (r.kind !== 'VirtualMachine') issues.push({ path: `${at}/kind`, message: `must be VirtualMachine, got ${JSON.stringify(r.kind)}`, fix: 'snapshots and restores work on VirtualMachines' });
    if (r.apiGroup !== undefined && r.apiGroup !== 'kubevirt.io') issues.push({ path: `${at}/apiGroup`, message: `must be kubevirt.io, got ${JSON.stringify(r.apiGroup)}`, fix: 'set apiGroup: kubevirt.io' });
    if (typeof r.name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(r.name)) issues.push({ path: `${at}/name`, message: `${JSON.stringify(r.name)} is not a VM name`, fix: 'name the VirtualMachine' });
  };
  if (obj.kind === 'VirtualMachineSnapshot') {
    ref('/spec/source', spec.source, 'VM to snapshot');
    if (spec.deletionPolicy !== undefined && spec.deletionPolicy !== 'Delete' && spec.deletionPolicy !== 'Retain') {
      issues.push({ path: '/spec/deletionPolicy', message: `must be Delete or Retain, got ${JSON.stringify(spec.deletionPolicy)}` });
    }
    if (spec.failureDeadline !== undefined && parseDuration(String(spec.failureDeadline)) === undefined) {
      issues.push({ path: '/spec/failureDeadline', message: `${JSON.stringify(spec.failureDeadline)} is not a duration`, fix: 'use e.g. 5m or 1h30m' });
    }
  } else if (obj.kind === 'VirtualMachineRestore') {
    ref('/spec/target', spec.target, 'VM to restore into');
    if (typeof spec.virtualMachineSnapshotName !== 'string' || spec.virtualMachineSnapshotName === '') {
      issues.push({ path: '/spec/virtualMachineSnapshotName', message: 'required field is missing', fix: 'name the VirtualMachineSnapshot to restore' });
    }
    const policies = ['WaitGracePeriod', 'StopTarget', 'WaitEventually', 'FailImmediate'];
    if (spec.targetReadinessPolicy !== undefined && !policies.includes(String(spec.targetReadinessPolicy))) {
      issues.push({ path: '/spec/targetReadinessPolicy', message: `must be one of ${policies.join(', ')}, got ${JSON.stringify(spec.targetReadinessPolicy)}` });
    }
  }
  return issues;
}

/** `1h30m`, `5m`, `90s` (Go's time.ParseDuration subset) in ms. */
export function parseDuration(s: string): number | undefined {
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(s)) return undefined;
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) ms += Number(m[1]) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[m[2] as 'h' | 'm' | 's' | 'ms'];
  return ms;
}

/** Which of the VM's volumes a snapshot copies (claims, hostDisks) and which it leaves out, by name. */
export function snapshotVolumes(volumes: readonly Volume[] | undefined): { included: SnapshotVolume[]; excluded: string[] } {
  const included: SnapshotVolume[] = [];
  const excluded: string[] = [];
  for (const v of volumes ?? []) {
    const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name;
    if (claim) included.push({ name: v.name, kind: 'claim', claim });
    else if (v.hostDisk?.path) included.push({ name: v.name, kind: 'hostDisk', path: v.hostDisk.path });
    else excluded.push(v.name);
  }
  return { included, excluded };
}

export interface SnapshotProgress {
  phase: SnapshotPhase;
  sourceUID?: string;
  contentName?: string;
  /** Epoch ms the copy's point in time was taken. */
  createdAt?: number;
  online?: boolean;
  guestAgent?: boolean;
  error?: { message: string; at: number };
  since: number;
  included?: string[];
  excluded?: string[];
}

/** KubeVirt's snapshot status: conditions Progressing and Ready, readyToUse, indications. */
export function snapshotStatus(p: SnapshotProgress): SnapshotStatus {
  const at = new Date(p.since).toISOString();
  const progressing: Condition = p.phase === 'InProgress'
    ? { type: 'Progressing', status: 'True', reason: 'Source locked and operation in progress', lastTransitionTime: at }
    : { type: 'Progressing', status: 'False', reason: p.phase === 'Succeeded' ? 'Operation complete' : 'Operation failed', lastTransitionTime: at };
  const ready: Condition = p.phase === 'Succeeded'
    ? { type: 'Ready', status: 'True', reason: 'Operation complete', lastTransitionTime: at }
    : { type: 'Ready', status: 'False', reason: p.phase === 'Failed' ? 'Operation failed' : 'Not ready', ...(p.error ? { message: p.error.message } : {}), lastTransitionTime: at };
  const indications: Indication[] | undefined = p.online === undefined ? undefined : p.online ? ['Online', p.guestAgent ? 'GuestAgent' : 'NoGuestAgent'] : [];
  return {
    ...(p.sourceUID ? { sourceUID: p.sourceUID } : {}),
    ...(p.contentName ? { virtualMachineSnapshotContentName: p.contentName } : {}),
    creationTime: p.createdAt !== undefined ? new Date(p.createdAt).toISOString() : null,
    phase: p.phase,
    readyToUse: p.phase === 'Succeeded',
    ...(indications && indications.length ? { indications } : {}),
    ...(p.error ? { error: { message: p.error.message, time: new Date(p.error.at).toISOString() } } : {}),
    conditions: [progressing, ready],
    ...(p.included ? { snapshotVolumes: { includedVolumes: p.included, excludedVolumes: p.excluded ?? [] } } : {}),
  };
}

/** KubeVirt's restore status: conditions Progressing and Ready, complete. */
export function restoreStatus(p: { state: 'InProgress' | 'Waiting' | 'Succeeded' | 'Failed'; message?: string; since: number; restores?: RestoreStatus['restores']; restoredAt?: number }): RestoreStatus {
  const at = new Date(p.since).toISOString();
  const done = p.state === 'Succeeded';
  const failed = p.state === 'Failed';
  return {
    complete: done,
    ...(p.restoredAt !== undefined ? { restoreTime: new Date(p.restoredAt).toISOString() } : {}),
    ...(p.restores ? { restores: p.restores } : {}),
    conditions: [
      { type: 'Progressing', status: done || failed ? 'False' : 'True', reason: done ? 'Operation complete' : failed ? 'Operation failed' : p.state === 'Waiting' ? 'Waiting for target to be ready' : 'Restoring', ...(p.message ? { message: p.message } : {}), lastTransitionTime: at },
      { type: 'Ready', status: done ? 'True' : 'False', reason: done ? 'Operation complete' : failed ? 'Operation failed' : 'Not ready', ...(p.message ? { message: p.message } : {}), lastTransitionTime: at },
    ],
  };
}

/**
 * The message of a restore into a VM that does not exist (both modes): git owns VMs, the
 * restore only made their claims.
 */
export function newVmRestoreNote(target: string, restores: NonNullable<RestoreStatus['restores']>): string {
  return `VirtualMachine ${target} is not in git: add it with these claims (${restores.map((r) => `${r.volumeName} → ${r.persistentVolumeClaim ?? r.hostDisk ?? ''}`).join(', ')})`;
}

/** One copy a restore makes: the snapshot's file of `volume` onto a claim or a hostDisk path. */
export type RestoreStep =
  | { volume: string; file: string; kind: 'claim'; claim: string }
  | { volume: string; file: string; kind: 'hostDisk'; path: string };

/**
 * Where each snapshot volume goes. Into the snapshot's own VM: the VM's volume of the same
 * name now (its claim or hostDisk). Into another VM in git: that VM's volume of the same
 * name. Into a VM not in git: new claims `restore-<restore uid>-<volume>` (KubeVirt's names)
 * or each volumeRestoreOverrides restoreName, for a VM the user then adds to git.
 */
export function planRestore(
  snapshotVolumesTaken: readonly (SnapshotVolume & { file: string })[],
  target: VirtualMachine | undefined,
  restore: { uid: string; overrides?: { volumeName?: string; restoreName?: string }[] },
): { steps: RestoreStep[] } | { error: string } {
  const steps: RestoreStep[] = [];
  if (!target) {
    for (const v of snapshotVolumesTaken) {
      const name = restore.overrides?.find((o) => o.volumeName === v.name)?.restoreName ?? `restore-${restore.uid.slice(0, 8)}-${v.name}`;
      steps.push({ volume: v.name, file: v.file, kind: 'claim', claim: name });
    }
    return { steps };
  }
  const { included } = snapshotVolumes(target.spec.template.spec.volumes);
  for (const v of snapshotVolumesTaken) {
    const t = included.find((x) => x.name === v.name);
    if (!t) return { error: `the target VM ${target.metadata.name ?? ''} has no claim or hostDisk volume named ${v.name} (the snapshot has one): add it to the VM in git, or restore into a new VM` };
    steps.push(t.kind === 'claim' ? { volume: v.name, file: v.file, kind: 'claim', claim: t.claim } : { volume: v.name, file: v.file, kind: 'hostDisk', path: t.path });
  }
  return { steps };
}
