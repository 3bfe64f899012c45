/**
 * The mode-independent half of VM snapshots and restores: the copies on the host that holds
 * the VM's disks. `virtops up`'s worker (reconciler/standalone/snapshots.ts) and the cluster
 * node agent (reconciler/cluster/snapshots.ts) both call these; what to copy and the status
 * are api/snapshot.ts, the copy primitives launcher/volumes/snapshot.ts.
 *
 *   <dir>/<volume>.img   the copy of each disk (raw, or qcow2 for a `<claim>.qcow2` claim)
 */
import { chmod, chown, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { VirtualMachine } from '../api/kubevirt.js';
import { type RestoreStatus, type RestoreStep, type SnapshotProgress, type SnapshotVolume, snapshotVolumes } from '../api/snapshot.js';
import { claimDir, claimFile, findClaimFile } from '../launcher/volumes/import.js';
import { copyDiskFile, onlineCopy, type OnlineCopy } from '../launcher/volumes/snapshot.js';

/** A snapshot's volume and the file of its copy in the snapshot's dir. */
export type TakenVolume = SnapshotVolume & { file: string };

export interface SnapshotCopyInput {
  namespace: string;
  vm: VirtualMachine;
  /** Its running domain (Running or Paused: `running`); undefined when the VM is stopped. */
  instance?: { domain: string; running: boolean };
  /** Where claims are (`<pvcDir>/<ns>/<claim>/disk.img`). */
  pvcDir: string;
  libvirtUri: string;
  /**
   * The running domain is a kubelet-run launcher Pod's: its own libvirt daemon (`libvirtUri`
   * reaching the Pod's socket), which sees each claim where the Pod mounts it,
   * `<vmiDisksDir>/<volume>/disk.img` (the host's `<pvcDir>/<ns>/<claim>/`, bind-mounted).
   * QEMU writes each copy into that claim dir first (the one place both see).
   */
  pod?: { vmiDisksDir: string };
  /** The snapshot's own dir: the copies go there. */
  dir: string;
  /** The snapshot's uid (its content's name). */
  uid: string;
  signal: AbortSignal;
  now: () => number;
}

/**
 * Copies `vm`'s persistent disks into `dir`: online (a libvirt backup job, the guest's
 * filesystems frozen when its agent answers) when it runs, else a file copy. Fills in
 * `progress` as it goes (included/excluded volumes, sourceUID, content name, the point in
 * time, online, guestAgent) so a failure still reports what was attempted. Throws a message
 * for the user; the source disks are only read. The caller discards a failed copy
 * (`discardCopies`).
 */
export async function takeSnapshotCopies(p: SnapshotCopyInput, progress: SnapshotProgress): Promise<TakenVolume[]> {
  const vmName = p.vm.metadata.name ?? '';
  const { included, excluded } = snapshotVolumes(p.vm.spec.template.spec.volumes);
  progress.included = included.map((v) => v.name);
  progress.excluded = excluded;
  progress.sourceUID = p.vm.metadata.uid ?? `${p.namespace}/${vmName}`;
  progress.contentName = `vmsnapshot-content-${p.uid}`;
  if (!included.length) throw new Error(`VirtualMachine ${p.namespace}/${vmName} has no persistent disks (persistentVolumeClaim, dataVolume or hostDisk volumes) to snapshot`);
  const sources: { v: SnapshotVolume; path: string; file: string }[] = [];
  for (const v of included) {
    const path = v.kind === 'claim' ? await findClaimFile(p.pvcDir, p.namespace, v.claim) : v.path;
    if (v.kind === 'hostDisk' && !(await stat(path).catch(() => undefined))) throw new Error(`hostDisk ${path} (volume ${v.name}) does not exist`);
    sources.push({ v, path, file: `${v.name}.img` });
  }
  await mkdir(p.dir, { recursive: true, mode: 0o750 });
  const inst = p.instance;
  if (inst && !inst.running) throw new Error(`VirtualMachine ${p.namespace}/${vmName} is starting or stopping; take the snapshot when it is Running or Stopped`);
  progress.createdAt = p.now();
  if (inst) {
    progress.online = true;
    // A qcow2 claim (`<claim>.qcow2`) is copied as qcow2, so a restore puts back the same format.
    const copies = sources.map((s) => ({ source: s.path, dest: join(p.dir, s.file), format: s.path.endsWith('.qcow2') ? ('qcow2' as const) : ('raw' as const) }));
    const r = await onlineCopy(p.libvirtUri, inst.domain, p.pod ? sources.map((s, i) => podCopy(s.v, s.path, copies[i]!, p.pod!.vmiDisksDir, p.uid)) : copies, p.dir, { signal: p.signal });
    progress.guestAgent = r.guestAgent;
  } else {
    progress.online = false;
    for (const s of sources) await copyDiskFile(s.path, join(p.dir, s.file), p.signal);
  }
  return sources.map((s) => ({ ...s.v, file: s.file }));
}

/**
 * Pure: the online copy of `v` from a kubelet-run launcher Pod's domain: its disk as the Pod
 * mounts it, staged by QEMU in the claim's own dir (`hostPath`'s, the one both see) as
 * `.snapshot-<uid>.partial`. Only claims in KubeVirt's layout (`<claim>/disk.img`) are mounted so.
 */
export function podCopy(v: SnapshotVolume, hostPath: string, copy: { dest: string; format: 'raw' | 'qcow2' }, vmiDisksDir: string, uid: string): OnlineCopy {
  if (v.kind !== 'claim' || basename(hostPath) !== 'disk.img') {
    throw new Error(`volume ${v.name} (${v.kind === 'claim' ? hostPath : `hostDisk ${v.path}`}) is not a claim the launcher Pod mounts as <claim>/disk.img: stop the VM and take the snapshot offline`);
  }
  const staged = `.snapshot-${uid}.partial`;
  return { source: join(vmiDisksDir, v.name, 'disk.img'), dest: copy.dest, format: copy.format, staging: { daemon: join(vmiDisksDir, v.name, staged), local: join(dirname(hostPath), staged) } };
}

/** No half snapshot: every file in `dir` but `keep` (the record) goes. */
export async function discardCopies(dir: string, keep = 'snapshot.json'): Promise<void> {
  for (const f of await readdir(dir).catch(() => [] as string[])) if (f !== keep) await rm(join(dir, f), { force: true });
}

export interface RestoreCopyInput {
  namespace: string;
  /** The snapshot's dir (its copies) and uid. */
  snapshotDir: string;
  snapshotUid: string;
  steps: readonly RestoreStep[];
  /** The target VM exists: its claims are overwritten. Else new claims are made, never over one that exists. */
  targetExists: boolean;
  /**
   * The restore's uid: a new claim's dir is marked with it before the copy, so the same
   * restore run again after an interruption (an agent or `up` restart) takes its own half-made
   * claim over instead of refusing it as someone else's and leaving it behind.
   */
  restoreUid: string;
  pvcDir: string;
  signal: AbortSignal;
}

/**
 * Copies each snapshot file of `steps` onto its claim or hostDisk (atomically: a failed copy
 * replaces nothing). Into a VM that does not exist, a claim that exists already is refused
 * before anything is copied: nothing is deleted unless asked.
 */
export async function restoreCopies(p: RestoreCopyInput): Promise<{ restores: NonNullable<RestoreStatus['restores']> } | { error: string }> {
  const dests: string[] = [];
  for (const step of p.steps) {
    if (step.kind === 'hostDisk') dests.push(step.path);
    else if (p.targetExists) dests.push(await findClaimFile(p.pvcDir, p.namespace, step.claim).catch(() => claimFile(p.pvcDir, p.namespace, step.claim)));
    else {
      const exists = await findClaimFile(p.pvcDir, p.namespace, step.claim).then(() => true, () => false);
      if (exists && !(await isRestoreOwn(p.pvcDir, p.namespace, step.claim, p.restoreUid))) {
        return { error: `claim ${p.namespace}/${step.claim} exists already: name another with volumeRestoreOverrides restoreName (virtops snapshot restore --target NEW)` };
      }
      dests.push(claimFile(p.pvcDir, p.namespace, step.claim));
    }
  }
  for (const step of p.steps) {
    if (p.targetExists || step.kind !== 'claim') continue;
    const dir = claimDir(p.pvcDir, p.namespace, step.claim);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    await writeFile(join(dir, RESTORE_MARK), `${p.restoreUid}\n`, { mode: 0o640 });
  }
  const restores: NonNullable<RestoreStatus['restores']> = [];
  for (const [i, step] of p.steps.entries()) {
    const dest = dests[i]!;
    await mkdir(join(dest, '..'), { recursive: true, mode: 0o750 });
    // The restored file gets the owner and mode the claim had (beside a kubelet: the launcher
    // Pods' group, so QEMU in the Pod can open it again).
    const was = await stat(dest).catch(() => undefined);
    await copyDiskFile(join(p.snapshotDir, step.file), dest, p.signal);
    if (was) {
      await chown(dest, was.uid, was.gid);
      await chmod(dest, was.mode & 0o7777);
    }
    restores.push({ volumeName: step.volume, ...(step.kind === 'claim' ? { persistentVolumeClaim: step.claim } : { hostDisk: step.path }), volumeSnapshotName: `vmsnapshot-${p.snapshotUid}-volume-${step.volume}` });
  }
  return { restores };
}

/** In a claim dir a restore made: the restore's uid (restoreCopies). */
const RESTORE_MARK = '.virtops-restore';

/** Whether the claim dir was made by this very restore (an earlier, interrupted run of it). */
async function isRestoreOwn(pvcDir: string, namespace: string, claim: string, restoreUid: string): Promise<boolean> {
  const mark = await readFile(join(claimDir(pvcDir, namespace, claim), RESTORE_MARK), 'utf8').catch(() => '');
  return mark.trim() !== '' && mark.trim() === restoreUid;
}

/** Restores wait this long for their target to stop (KubeVirt's WaitGracePeriod). */
export const RESTORE_WAIT_MS = 5 * 60_000;

export type TargetReadinessPolicy = 'WaitGracePeriod' | 'StopTarget' | 'WaitEventually' | 'FailImmediate';

/**
 * Pure: what a restore does while its target VM runs (KubeVirt's targetReadinessPolicy):
 * fail now (FailImmediate), fail after `RESTORE_WAIT_MS` of waiting (WaitGracePeriod, the
 * default), or wait, asking the VM to stop once (StopTarget). `stopHint` says how to stop it
 * in this mode.
 */
export function runningTargetDecision(p: {
  policy: TargetReadinessPolicy | undefined;
  target: string;
  /** When the wait for the target to stop began. */
  waitingSince: number;
  now: number;
  /** The restore is waiting already (so a stop was asked for already). */
  waiting: boolean;
  stopHint: string;
}): { action: 'fail'; message: string } | { action: 'wait'; stop: boolean; message: string } {
  const policy = p.policy ?? 'WaitGracePeriod';
  if (policy === 'FailImmediate') return { action: 'fail', message: `the target VM ${p.target} is running: ${p.stopHint}` };
  if (policy === 'WaitGracePeriod' && p.now - p.waitingSince > RESTORE_WAIT_MS) {
    return { action: 'fail', message: `the target VM ${p.target} did not stop within ${RESTORE_WAIT_MS / 60_000} min: ${p.stopHint}` };
  }
  return { action: 'wait', stop: policy === 'StopTarget' && !p.waiting, message: `waiting for the target VM ${p.target} to stop (${policy === 'StopTarget' ? 'stop requested' : p.stopHint})` };
}
