/**
 * Materialises a VMI's volumes on this node (the imperative half; plan.ts decides paths
 * and validates). Produces ConversionContext.volumes / kernelBoot for launcher/convert.
 *
 * Lifetimes, matching what a user of KubeVirt expects of each source:
 *   emptyDisk              created once, kept across restarts of the VM, removed with the VM
 *   containerDisk          base in the shared image store; per-VMI qcow2 overlay, removed when the VMI stops
 *   ephemeral (PVC-backed) per-VMI overlay over the claim's file, removed when the VMI stops
 *   cloud-init / secret /  per-VMI ISO, removed when the VMI stops
 *   configMap / serviceAccount
 *   hostDisk, PVC          the user's files: used in place (DiskOrCreate creates), never removed
 *
 * Both entry points are idempotent: materialising again (a restarted launcher under a
 * running VMI) reuses what is there; releasing twice is harmless.
 */
import { access, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { publicKeysOf } from '../access-credentials.js';
import type { VirtualMachineInstance } from '../../api/kubevirt.js';
import type { MaterializedVolume } from '../convert/context.js';
import { configDriveLayout, noCloudLayout, NETWORK_DATA_KEYS, pickKey, USER_DATA_KEYS, type IsoLayout } from './cloud-init.js';
import { VolumeError } from './errors.js';
import { run } from './exec.js';
import type { ImageRef } from './image-ref.js';
import type { ImageStore, PulledImage } from './image-store.js';
import { writeIso } from './iso.js';
import { decodeBase64, planVolumes, volumeDirs, type KernelBootPlan, type MaterializationPlan, type VolumePlan } from './plan.js';
import type { ObjectKind, SecretSource } from './secrets.js';

export interface MaterializeOptions {
  /** The VM's own directory on the node (kept across VMI restarts); volumes go under `<vmDir>/volumes`. */
  vmDir: string;
  imageStore: ImageStore;
  /** Secrets / ConfigMaps / ServiceAccounts (cloud-init secretRef, secret volumes, imagePullSecret). */
  secrets?: SecretSource;
  /**
   * Where PersistentVolumeClaims and DataVolumes live on this node:
   * `<pvcDir>/<namespace>/<claim>.img` (raw; a file or a block device), `<claim>.qcow2`, or
   * `<claim>/disk.img` (KubeVirt's layout of a filesystem PVC).
   */
  pvcDir?: string;
  /**
   * A launcher Pod run by a kubelet: the Pod's claim volumes, `<vmiDisksDir>/<volume>/disk.img`
   * (KubeVirt's layout of a filesystem PVC mounted into virt-launcher). When set, claims are
   * found only here, never under `pvcDir`, and a hostDisk's file under its directory's mount,
   * `<vmiDisksDir>/<volume>/<file name>`.
   */
  vmiDisksDir?: string;
}

export interface MaterializedVolumes {
  volumes: Record<string, MaterializedVolume>;
  kernelBoot?: { kernelPath?: string; initrdPath?: string };
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export async function materializeVolumes(vmi: VirtualMachineInstance, opts: MaterializeOptions): Promise<MaterializedVolumes> {
  const plan = planVolumes(vmi, opts.vmDir);
  const { dirs } = plan;
  // Ephemeral files of earlier incarnations are leftovers (a VM runs one VMI at a time).
  for (const entry of await readdir(dirs.ephemeralRoot).catch(() => [] as string[])) {
    if (join(dirs.ephemeralRoot, entry) !== dirs.ephemeral) await rm(join(dirs.ephemeralRoot, entry), { recursive: true, force: true });
  }
  const freshEphemeral = !(await exists(dirs.ephemeral));
  await mkdir(dirs.ephemeral, { recursive: true });

  try {
    // Volumes are independent (own paths; the image store tolerates concurrent pulls and
    // extractions), so they are prepared at once: the sync waits for the slowest helper
    // program (genisoimage, qemu-img, skopeo) instead of their sum. All settle before any
    // error is thrown, so the cleanup below never races a step still writing.
    const settled = await Promise.allSettled([
      ...plan.volumes.map((step) => materializeOne(step, plan, opts)),
      plan.kernelBoot ? materializeKernelBoot(plan.kernelBoot, plan, opts) : Promise.resolve(undefined),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const values = settled.map((r) => (r as PromiseFulfilledResult<unknown>).value);
    const volumes: Record<string, MaterializedVolume> = {};
    plan.volumes.forEach((step, i) => (volumes[step.name] = values[i] as MaterializedVolume));
    const kernelBoot = values[plan.volumes.length] as MaterializedVolumes['kernelBoot'];
    return { volumes, ...(kernelBoot ? { kernelBoot } : {}) };
  } catch (err) {
    // Leave nothing of a failed first attempt behind; a restarted launcher keeps its files.
    if (freshEphemeral) await rm(dirs.ephemeral, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Removes what the VMI's volumes left on the node: always the ephemeral files (overlays,
 * ISOs), and with `deleteVm` also the VM's persistent ones (emptyDisks). Image store
 * contents (shared), hostDisks and PVCs (the user's data) are never touched.
 */
export async function releaseVolumes(
  vmi: VirtualMachineInstance,
  opts: Pick<MaterializeOptions, 'vmDir'>,
  { deleteVm }: { deleteVm: boolean },
): Promise<void> {
  const dirs = volumeDirs(opts.vmDir, vmi);
  await rm(deleteVm ? dirs.root : dirs.ephemeralRoot, { recursive: true, force: true });
}

async function materializeOne(step: VolumePlan, plan: MaterializationPlan, opts: MaterializeOptions): Promise<MaterializedVolume> {
  const { name } = step;
  switch (step.kind) {
    case 'emptyDisk':
      await mkdir(dirname(step.path), { recursive: true });
      if (!(await exists(step.path))) await atomically(step.path, (tmp) => run('qemu-img', ['create', '-q', '-f', 'qcow2', tmp, String(step.bytes)]));
      return { name, type: 'file', path: step.path, format: 'qcow2' };

    case 'containerDisk': {
      // This incarnation already has its overlay (the launcher restarted under a running
      // VMI): keep it and its base, even if the tag has moved since; no registry needed.
      const current = await existingOverlay(step.overlayPath);
      if (current) return { name, type: 'file', path: step.overlayPath, format: 'qcow2', backingStore: current };
      const pulled = await pullImage(step.ref, plan, opts, name);
      const base = await opts.imageStore.extractFile(pulled, step.pathInImage ?? '/disk', step.pathInImage === undefined, name);
      const format = await imageFormat(base.path, name);
      await ensureOverlay(step.overlayPath, base.path, format);
      return { name, type: 'file', path: step.overlayPath, format: 'qcow2', backingStore: { path: base.path, format } };
    }

    case 'hostDisk': {
      const path = hostDiskPath(step, opts.vmiDisksDir);
      const shown = path === step.path ? step.path : `${step.path} (in this Pod ${path})`;
      let st = await stat(path).catch(() => undefined);
      if (!st && step.create) {
        await mkdir(dirname(path), { recursive: true });
        await atomically(path, (tmp) => run('qemu-img', ['create', '-q', '-f', 'raw', tmp, String(step.bytes)]));
        st = await stat(path);
      }
      if (!st) throw new VolumeError('HostDiskNotFound', name, `hostDisk ${shown} does not exist (type Disk requires it); create it or use type DiskOrCreate with a capacity`);
      if (!st.isFile() && !st.isBlockDevice()) throw new VolumeError('InvalidVolume', name, `hostDisk ${shown} is neither a file nor a block device`);
      return { name, type: st.isBlockDevice() ? 'block' : 'file', path, format: 'raw' };
    }

    case 'claim': {
      const claim = opts.vmiDisksDir ? await findMountedClaim(step, opts.vmiDisksDir) : await findClaim(step, plan.namespace, opts.pvcDir);
      if (!step.overlayPath) return { name, ...claim, ...(step.readOnly ? { readOnly: true } : {}) };
      await ensureOverlay(step.overlayPath, claim.path, claim.format);
      return { name, type: 'file', path: step.overlayPath, format: 'qcow2', backingStore: { path: claim.path, format: claim.format } };
    }

    case 'cloudInit':
      if (!(await exists(step.isoPath))) await writeIso(step.isoPath, await cloudInitLayout(step, plan, opts.secrets));
      return { name, type: 'file', path: step.isoPath, format: 'raw', readOnly: true };

    case 'objectIso':
      if (!(await exists(step.isoPath))) await writeIso(step.isoPath, await objectLayout(step, plan.namespace, opts.secrets));
      return { name, type: 'file', path: step.isoPath, format: 'raw', readOnly: true };
  }
}

/**
 * Kernel and initrd from the kernelBoot image. The paths chosen for this incarnation are
 * recorded in its ephemeral dir, so a restarted launcher reuses them (like overlays)
 * instead of re-pulling a tag that may have moved.
 */
async function materializeKernelBoot(
  kb: KernelBootPlan,
  plan: MaterializationPlan,
  opts: MaterializeOptions,
): Promise<NonNullable<MaterializedVolumes['kernelBoot']>> {
  const record = join(plan.dirs.ephemeral, 'kernel-boot.json');
  const known = await readFile(record, 'utf8').then((t) => JSON.parse(t) as { kernelPath?: string; initrdPath?: string }, () => undefined);
  if (known && Boolean(known.kernelPath) === Boolean(kb.kernelPath) && Boolean(known.initrdPath) === Boolean(kb.initrdPath)) {
    const paths = [known.kernelPath, known.initrdPath].filter((p): p is string => p !== undefined);
    if ((await Promise.all(paths.map(exists))).every(Boolean)) return known;
  }
  const pulled = await pullImage(kb.ref, plan, opts, undefined);
  const [kernel, initrd] = await Promise.all([
    kb.kernelPath ? opts.imageStore.extractFile(pulled, kb.kernelPath) : undefined,
    kb.initrdPath ? opts.imageStore.extractFile(pulled, kb.initrdPath) : undefined,
  ]);
  const result = { ...(kernel ? { kernelPath: kernel.path } : {}), ...(initrd ? { initrdPath: initrd.path } : {}) };
  await writeFile(record, JSON.stringify(result));
  return result;
}

/** Runs `create(tmpPath)` then renames into place, so a crash leaves no half-made disk under the real name. */
async function atomically(path: string, create: (tmp: string) => Promise<unknown>): Promise<void> {
  const tmp = `${path}.partial`;
  try {
    await create(tmp);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

async function imageFormat(path: string, volume: string): Promise<'qcow2' | 'raw'> {
  const info = JSON.parse(await run('qemu-img', ['info', '--output=json', path])) as { format?: string; 'backing-filename'?: string };
  if (info.format !== 'qcow2' && info.format !== 'raw') {
    throw new VolumeError('InvalidVolume', volume, `${path} is a ${String(info.format)} image; virtops attaches qcow2 or raw`);
  }
  if (info['backing-filename']) throw new VolumeError('InvalidVolume', volume, `${path} has its own backing file; flatten it (qemu-img convert) first`);
  return info.format;
}

/** The backing file of an existing, intact overlay (undefined when absent or its base is gone). */
async function existingOverlay(overlay: string): Promise<{ path: string; format: 'qcow2' | 'raw' } | undefined> {
  if (!(await exists(overlay))) return undefined;
  const info = JSON.parse(await run('qemu-img', ['info', '--output=json', '--force-share', overlay])) as {
    'backing-filename'?: string;
    'backing-filename-format'?: string;
  };
  const base = info['backing-filename'];
  const format = info['backing-filename-format'];
  if (!base || (format !== 'qcow2' && format !== 'raw') || !(await exists(base))) return undefined;
  return { path: base, format };
}

/** A qcow2 overlay over `base`; an existing one is kept when it already points at `base`. */
async function ensureOverlay(overlay: string, base: string, format: 'qcow2' | 'raw'): Promise<void> {
  if (await exists(overlay)) {
    const info = JSON.parse(await run('qemu-img', ['info', '--output=json', '--force-share', overlay])) as { 'backing-filename'?: string };
    if (info['backing-filename'] === base) return;
    await rm(overlay, { force: true });
  }
  await atomically(overlay, (tmp) => run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', format, tmp]));
}

async function pullImage(ref: ImageRef, plan: MaterializationPlan, opts: MaterializeOptions, volume: string | undefined): Promise<PulledImage> {
  if (!ref.pullSecret) return opts.imageStore.pull(ref, volume ? { volume } : {});
  const secret = await requireObject(opts.secrets, 'secret', plan.namespace, ref.pullSecret, volume, 'imagePullSecret');
  const config = secret['.dockerconfigjson'] ?? secret['.dockercfg'];
  if (!config) {
    throw new VolumeError('SecretNotFound', volume, `imagePullSecret "${ref.pullSecret}" has no .dockerconfigjson key (keys: ${Object.keys(secret).join(', ') || 'none'})`);
  }
  const authFile = join(plan.dirs.ephemeral, `.auth-${volume ?? 'kernel-boot'}.json`);
  await writeFile(authFile, config, { mode: 0o600 });
  try {
    return await opts.imageStore.pull(ref, { authFile, ...(volume ? { volume } : {}) });
  } finally {
    await rm(authFile, { force: true });
  }
}

async function requireObject(
  source: SecretSource | undefined,
  kind: ObjectKind,
  namespace: string,
  objectName: string,
  volume: string | undefined,
  field: string,
): Promise<Record<string, Buffer>> {
  const data = source ? await source.get(kind, namespace, objectName) : undefined;
  if (!data) {
    const where = source ? source.describe(kind, namespace, objectName) : 'no secret source configured for this launcher';
    throw new VolumeError('SecretNotFound', volume, `${kind} "${namespace}/${objectName}" (${field}) not found (${where})`);
  }
  return data;
}

async function cloudInitLayout(
  step: Extract<VolumePlan, { kind: 'cloudInit' }>,
  plan: MaterializationPlan,
  secrets: SecretSource | undefined,
): Promise<IsoLayout> {
  const src = step.source;
  const ns = plan.namespace;
  let userData = src.userData ?? (src.userDataBase64 !== undefined ? decodeBase64(src.userDataBase64, step.name, `${step.field}.userDataBase64`) : undefined);
  let networkData = src.networkData ?? (src.networkDataBase64 !== undefined ? decodeBase64(src.networkDataBase64, step.name, `${step.field}.networkDataBase64`) : undefined);
  if (src.secretRef) {
    const data = await requireObject(secrets, 'secret', ns, src.secretRef.name, step.name, `${step.field}.secretRef`);
    userData = pickKey(data, USER_DATA_KEYS);
    if (userData === undefined) {
      throw new VolumeError('SecretNotFound', step.name, `secret "${ns}/${src.secretRef.name}" (${step.field}.secretRef) has no ${USER_DATA_KEYS.join(' or ')} key (keys: ${Object.keys(data).join(', ') || 'none'})`);
    }
    // KubeVirt reads network data from the same secret when no separate one is named.
    if (!src.networkDataSecretRef && networkData === undefined) networkData = pickKey(data, NETWORK_DATA_KEYS);
  }
  if (src.networkDataSecretRef) {
    const ref = src.networkDataSecretRef.name;
    const data = await requireObject(secrets, 'secret', ns, ref, step.name, `${step.field}.networkDataSecretRef`);
    networkData = pickKey(data, NETWORK_DATA_KEYS);
    if (networkData === undefined) {
      throw new VolumeError('SecretNotFound', step.name, `secret "${ns}/${ref}" (${step.field}.networkDataSecretRef) has no ${NETWORK_DATA_KEYS.join(' or ')} key (keys: ${Object.keys(data).join(', ') || 'none'})`);
    }
  }
  const publicKeys: string[] = [];
  for (const k of plan.metadataKeys?.[step.flavor] ?? []) {
    const secret = await requireObject(secrets, 'secret', ns, k.secretName, step.name, k.field);
    for (const key of publicKeysOf(secret)) if (!publicKeys.includes(key)) publicKeys.push(key);
  }
  const data = {
    instanceId: plan.instanceId,
    hostname: plan.hostname,
    ...(userData !== undefined ? { userData } : {}),
    ...(networkData !== undefined ? { networkData } : {}),
    ...(publicKeys.length ? { publicKeys } : {}),
  };
  return step.flavor === 'noCloud' ? noCloudLayout(data) : configDriveLayout(data);
}

async function objectLayout(
  step: Extract<VolumePlan, { kind: 'objectIso' }>,
  namespace: string,
  secrets: SecretSource | undefined,
): Promise<IsoLayout> {
  const data = step.optional
    ? ((secrets ? await secrets.get(step.object, namespace, step.objectName) : undefined) ?? {})
    : await requireObject(secrets, step.object, namespace, step.objectName, step.name, step.field);
  return { volumeId: step.volumeId, files: data };
}

/**
 * `<pvcDir>/<namespace>/<claim>.img` (raw file or block device), `<claim>.qcow2`, or
 * KubeVirt's filesystem-PVC convention `<claim>/disk.img` (raw); exactly one must exist.
 */
async function findClaim(
  step: Extract<VolumePlan, { kind: 'claim' }>,
  namespace: string,
  pvcDir: string | undefined,
): Promise<Pick<MaterializedVolume, 'type' | 'path' | 'format'>> {
  if (!pvcDir) {
    throw new VolumeError('ErrorPvcNotFound', step.name, `claim "${step.claimName}" (${step.field}) cannot be resolved: this launcher has no PVC directory configured`);
  }
  const candidates = [
    { path: join(pvcDir, namespace, `${step.claimName}.img`), format: 'raw' as const },
    { path: join(pvcDir, namespace, `${step.claimName}.qcow2`), format: 'qcow2' as const },
    { path: join(pvcDir, namespace, step.claimName, 'disk.img'), format: 'raw' as const },
  ];
  const found = [];
  for (const c of candidates) {
    const st = await stat(c.path).catch(() => undefined);
    if (st) found.push({ ...c, type: st.isBlockDevice() ? ('block' as const) : ('file' as const) });
  }
  if (found.length === 0) {
    throw new VolumeError('ErrorPvcNotFound', step.name, `claim "${namespace}/${step.claimName}" (${step.field}) not found: expected one of ${candidates.map((c) => c.path).join(', ')}`);
  }
  if (found.length > 1) {
    throw new VolumeError('InvalidVolume', step.name, `claim "${namespace}/${step.claimName}" is ambiguous: both ${found.map((c) => c.path).join(' and ')} exist; remove one`);
  }
  return found[0]!;
}

/**
 * Where a hostDisk's file is: its host path, or in a kubelet-run launcher Pod (`vmiDisksDir`
 * set) the same file name under the Pod's mount of its directory, `<vmiDisksDir>/<volume>/`
 * (synth/launcher-pod.ts mounts the hostDisk's directory there as a hostPath volume).
 */
export function hostDiskPath(step: Extract<VolumePlan, { kind: 'hostDisk' }>, vmiDisksDir: string | undefined): string {
  return vmiDisksDir ? join(vmiDisksDir, step.name, basename(step.path)) : step.path;
}

/**
 * A claim the kubelet mounted into this Pod: `<vmiDisksDir>/<volume>/disk.img` (raw; the Pod
 * template mounts each claim volume at `<vmiDisksDir>/<volume>`, synth/launcher-pod.ts).
 */
async function findMountedClaim(
  step: Extract<VolumePlan, { kind: 'claim' }>,
  vmiDisksDir: string,
): Promise<Pick<MaterializedVolume, 'type' | 'path' | 'format'>> {
  const path = join(vmiDisksDir, step.name, 'disk.img');
  const st = await stat(path).catch(() => undefined);
  if (!st) {
    const mounted = await stat(join(vmiDisksDir, step.name)).then(() => true, () => false);
    throw new VolumeError('ErrorPvcNotFound', step.name, mounted
      ? `claim "${step.claimName}" (${step.field}) is mounted at ${join(vmiDisksDir, step.name)} but has no disk.img: fill the claim (a DataVolume imports one) or put the disk image there as disk.img`
      : `claim "${step.claimName}" (${step.field}) is not mounted at ${join(vmiDisksDir, step.name)}: the launcher Pod has no volume "${step.name}" for it; re-render the Pod with virtops synth`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new VolumeError('InvalidVolume', step.name, `claim "${step.claimName}": ${path} is neither a file nor a block device`);
  return { path, format: 'raw', type: st.isBlockDevice() ? 'block' : 'file' };
}
