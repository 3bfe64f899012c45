/**
 * The pure half of materialisation: from a VMI to a list of steps with every path decided
 * and every field validated. Nothing here touches the disk, so layout and validation are
 * table-tested; materialize.ts carries the steps out.
 *
 * Layout under the VM's directory (`vmDir`, owned by the launcher, kept across restarts):
 *
 *   <vmDir>/volumes/persistent/<volume>.qcow2      emptyDisk: kept while the VM exists
 *   <vmDir>/volumes/ephemeral/<vmi-uid>/<volume>.qcow2   containerDisk / ephemeral overlays
 *   <vmDir>/volumes/ephemeral/<vmi-uid>/<volume>.iso     cloud-init, secret, configMap, serviceAccount
 *
 * The ephemeral directory is per VMI (by uid): a new incarnation never sees the previous
 * one's overlay, and a launcher restarted under a running VMI finds its files again.
 */
import { join } from 'node:path';
import type { CloudInitSource, VirtualMachineInstance, Volume } from '../../api/kubevirt.js';
import { agentSshKeyRequests, metadataKeySources, type MetadataKeySource } from '../access-credentials.js';
import { ceilQuantity } from '../convert/quantity.js';
import { InvalidVolumeError } from './errors.js';
import { defaultPullPolicy, type ImageRef, type PullPolicy } from './image-ref.js';

export type VolumePlan =
  | { kind: 'emptyDisk'; name: string; path: string; bytes: bigint }
  | { kind: 'containerDisk'; name: string; ref: ImageRef; pathInImage?: string; overlayPath: string }
  | { kind: 'hostDisk'; name: string; path: string; create: boolean; bytes?: bigint }
  | { kind: 'claim'; name: string; claimName: string; readOnly: boolean; field: string; overlayPath?: string }
  | {
      kind: 'cloudInit';
      name: string;
      flavor: 'noCloud' | 'configDrive';
      source: CloudInitSource;
      field: string;
      isoPath: string;
    }
  | {
      kind: 'objectIso';
      name: string;
      object: 'secret' | 'configMap' | 'serviceAccount';
      objectName: string;
      optional: boolean;
      volumeId: string;
      field: string;
      isoPath: string;
    };

export interface KernelBootPlan {
  ref: ImageRef;
  kernelPath?: string;
  initrdPath?: string;
}

export interface MaterializationPlan {
  namespace: string;
  /** cloud-init instance-id: the VMI uid (a new one per incarnation). */
  instanceId: string;
  hostname: string;
  dirs: VolumeDirs;
  volumes: VolumePlan[];
  /** accessCredentials whose ssh keys go into the cloud-init meta-data, by flavour. */
  metadataKeys?: { noCloud: MetadataKeySource[]; configDrive: MetadataKeySource[] };
  kernelBoot?: KernelBootPlan;
}

export interface VolumeDirs {
  /** `<vmDir>/volumes`: everything this module creates for the VM; removed when the VM is deleted. */
  root: string;
  persistent: string;
  /** `<vmDir>/volumes/ephemeral`: all incarnations; removed when a VMI stops. */
  ephemeralRoot: string;
  /** This incarnation's ephemeral dir. */
  ephemeral: string;
}

/** The volume source fields virtops materialises, in KubeVirt's names. */
export const SUPPORTED_SOURCES = [
  'containerDisk', 'emptyDisk', 'ephemeral', 'cloudInitNoCloud', 'cloudInitConfigDrive',
  'persistentVolumeClaim', 'dataVolume', 'hostDisk', 'secret', 'configMap', 'serviceAccount',
] as const satisfies readonly (keyof Volume)[];

// Volume, claim, secret and namespace names become path components: allow what Kubernetes
// names allow (DNS-1123 subdomain characters) and nothing that could climb out of a dir.
const SAFE_NAME = /^[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

export function volumeDirs(vmDir: string, vmi: VirtualMachineInstance): VolumeDirs {
  const root = join(vmDir, 'volumes');
  const ephemeralRoot = join(root, 'ephemeral');
  return { root, persistent: join(root, 'persistent'), ephemeralRoot, ephemeral: join(ephemeralRoot, incarnationKey(vmi)) };
}

function incarnationKey(vmi: VirtualMachineInstance): string {
  const uid = vmi.metadata.uid;
  return uid && SAFE_NAME.test(uid) ? uid : 'no-uid';
}

/** A capacity quantity in bytes, rounded up; must be positive. */
export function capacityBytes(quantity: string | undefined, volume: string, path: string): bigint {
  if (quantity === undefined || quantity === '') {
    throw new InvalidVolumeError(volume, path, 'capacity is required', 'set a size such as "1Gi"');
  }
  let bytes: bigint;
  try {
    bytes = ceilQuantity(quantity);
  } catch (err) {
    throw new InvalidVolumeError(volume, path, (err as Error).message, 'use a quantity such as "512Mi" or "10Gi"');
  }
  if (bytes <= 0n) throw new InvalidVolumeError(volume, path, `capacity "${quantity}" is not positive`, 'use a size above zero');
  return bytes;
}

/** ISO 9660 volume ids hold at most 32 characters. */
export function isoVolumeId(label: string | undefined, volume: string, path: string): string {
  const id = label ?? volume;
  if (id.length > 32 || !/^[A-Za-z0-9_.-]+$/.test(id)) {
    throw new InvalidVolumeError(volume, path, `"${id}" is not a usable ISO volume label`, 'use at most 32 letters, digits, "-", "_" or "."');
  }
  return id;
}

function imageRef(
  volume: string | undefined,
  path: string,
  src: { image: string; imagePullPolicy?: PullPolicy; imagePullSecret?: string },
): ImageRef {
  if (typeof src.image !== 'string' || src.image.trim() === '' || /\s/.test(src.image)) {
    throw new InvalidVolumeError(volume, `${path}.image`, `"${String(src.image)}" is not an image reference`, 'use e.g. "registry.example.com/disks/fedora:40"');
  }
  const policy = src.imagePullPolicy ?? defaultPullPolicy(src.image);
  if (!['Always', 'IfNotPresent', 'Never'].includes(policy)) {
    throw new InvalidVolumeError(volume, `${path}.imagePullPolicy`, `"${policy}" is not a pull policy`, 'use Always, IfNotPresent or Never');
  }
  if (src.imagePullSecret !== undefined) safeName(src.imagePullSecret, volume, `${path}.imagePullSecret`);
  return { image: src.image, pullPolicy: policy, ...(src.imagePullSecret ? { pullSecret: src.imagePullSecret } : {}) };
}

function safeName(value: unknown, volume: string | undefined, path: string): string {
  if (typeof value !== 'string' || !SAFE_NAME.test(value) || value.length > 253) {
    throw new InvalidVolumeError(volume, path, `"${String(value)}" is not a valid name`, 'use lowercase letters, digits, "-" and "." (a Kubernetes object name)');
  }
  return value;
}

function inImagePath(value: string | undefined, volume: string | undefined, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (!value.startsWith('/') || value.split('/').includes('..')) {
    throw new InvalidVolumeError(volume, path, `"${value}" is not an absolute path inside the image`, 'use e.g. "/disk/disk.qcow2"');
  }
  return value;
}

/** Validates the VMI's volumes and decides every path. Throws InvalidVolumeError naming the field. */
export function planVolumes(vmi: VirtualMachineInstance, vmDir: string): MaterializationPlan {
  const name = safeName(vmi.metadata.name, undefined, 'metadata.name');
  const namespace = safeName(vmi.metadata.namespace ?? 'default', undefined, 'metadata.namespace');
  const dirs = volumeDirs(vmDir, vmi);
  const seen = new Set<string>();
  const volumes = (vmi.spec.volumes ?? []).map((v, i): VolumePlan => {
    const field = `spec.volumes[${i}]`;
    const vol = safeName(v.name, undefined, `${field}.name`);
    if (seen.has(vol)) throw new InvalidVolumeError(vol, `${field}.name`, `volume name "${vol}" is used twice`, 'give every volume a unique name');
    seen.add(vol);
    const sources = Object.keys(v).filter((k) => k !== 'name' && (v as unknown as Record<string, unknown>)[k] !== undefined);
    if (sources.length !== 1) {
      throw new InvalidVolumeError(vol, field, sources.length ? `has several sources (${sources.join(', ')})` : 'has no source', `set exactly one of ${SUPPORTED_SOURCES.join(', ')}`);
    }
    const kind = sources[0]!;
    const at = `${field}.${kind}`;
    const eph = (ext: string): string => join(dirs.ephemeral, `${vol}.${ext}`);

    if (v.emptyDisk) {
      return { kind: 'emptyDisk', name: vol, path: join(dirs.persistent, `${vol}.qcow2`), bytes: capacityBytes(v.emptyDisk.capacity, vol, `${at}.capacity`) };
    }
    if (v.containerDisk) {
      const pathInImage = inImagePath(v.containerDisk.path, vol, `${at}.path`);
      return { kind: 'containerDisk', name: vol, ref: imageRef(vol, at, v.containerDisk), ...(pathInImage ? { pathInImage } : {}), overlayPath: eph('qcow2') };
    }
    if (v.hostDisk) {
      const hd = v.hostDisk;
      if (typeof hd.path !== 'string' || !hd.path.startsWith('/')) {
        throw new InvalidVolumeError(vol, `${at}.path`, `"${String(hd.path)}" is not an absolute path`, 'use an absolute path on the node, e.g. /var/lib/virtops/disks/data.img');
      }
      if (hd.type === 'Disk') return { kind: 'hostDisk', name: vol, path: hd.path, create: false };
      if (hd.type === 'DiskOrCreate') {
        return { kind: 'hostDisk', name: vol, path: hd.path, create: true, bytes: capacityBytes(hd.capacity, vol, `${at}.capacity`) };
      }
      throw new InvalidVolumeError(vol, `${at}.type`, `"${String(hd.type)}" is not a hostDisk type`, 'use Disk (must exist) or DiskOrCreate (created with capacity)');
    }
    if (v.persistentVolumeClaim) {
      const claim = safeName(v.persistentVolumeClaim.claimName, vol, `${at}.claimName`);
      return { kind: 'claim', name: vol, claimName: claim, readOnly: v.persistentVolumeClaim.readOnly === true, field: `${at}.claimName` };
    }
    if (v.dataVolume) {
      const claim = safeName(v.dataVolume.name, vol, `${at}.name`);
      return { kind: 'claim', name: vol, claimName: claim, readOnly: false, field: `${at}.name` };
    }
    if (v.ephemeral) {
      const claim = safeName(v.ephemeral.persistentVolumeClaim?.claimName, vol, `${at}.persistentVolumeClaim.claimName`);
      return { kind: 'claim', name: vol, claimName: claim, readOnly: true, field: `${at}.persistentVolumeClaim.claimName`, overlayPath: eph('qcow2') };
    }
    if (v.cloudInitNoCloud || v.cloudInitConfigDrive) {
      const flavor = v.cloudInitNoCloud ? 'noCloud' : 'configDrive';
      const source = (v.cloudInitNoCloud ?? v.cloudInitConfigDrive)!;
      validateCloudInitSource(source, vol, at);
      return { kind: 'cloudInit', name: vol, flavor, source, field: at, isoPath: eph('iso') };
    }
    if (v.secret || v.configMap) {
      const object = v.secret ? 'secret' : 'configMap';
      const objectName = v.secret ? v.secret.secretName : v.configMap!.name;
      const nameField = v.secret ? `${at}.secretName` : `${at}.name`;
      const src = (v.secret ?? v.configMap)!;
      return {
        kind: 'objectIso', name: vol, object, objectName: safeName(objectName, vol, nameField), optional: src.optional === true,
        volumeId: isoVolumeId(src.volumeLabel, vol, `${at}.volumeLabel`), field: nameField, isoPath: eph('iso'),
      };
    }
    if (v.serviceAccount) {
      const objectName = safeName(v.serviceAccount.serviceAccountName, vol, `${at}.serviceAccountName`);
      return { kind: 'objectIso', name: vol, object: 'serviceAccount', objectName, optional: false, volumeId: isoVolumeId(undefined, vol, at), field: `${at}.serviceAccountName`, isoPath: eph('iso') };
    }
    throw new InvalidVolumeError(vol, at, `volume source "${kind}" is not supported by virtops`, `use one of ${SUPPORTED_SOURCES.join(', ')}`);
  });

  let kernelBoot: KernelBootPlan | undefined;
  const kb = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kb) {
    const at = 'spec.domain.firmware.kernelBoot.container';
    const kernelPath = inImagePath(kb.kernelPath, undefined, `${at}.kernelPath`);
    const initrdPath = inImagePath(kb.initrdPath, undefined, `${at}.initrdPath`);
    if (!kernelPath && !initrdPath) {
      throw new InvalidVolumeError(undefined, at, 'neither kernelPath nor initrdPath is set', 'set kernelPath (e.g. "/boot/vmlinuz") and/or initrdPath');
    }
    kernelBoot = { ref: imageRef(undefined, at, kb), ...(kernelPath ? { kernelPath } : {}), ...(initrdPath ? { initrdPath } : {}) };
  }

  const metadataKeys = { noCloud: metadataKeySources(vmi.spec, 'noCloud'), configDrive: metadataKeySources(vmi.spec, 'configDrive') };
  agentSshKeyRequests(vmi.spec); // checked here too, so a bad entry fails the sync, not the first agent contact
  for (const flavor of ['noCloud', 'configDrive'] as const) {
    const first = metadataKeys[flavor][0];
    if (first && !volumes.some((p) => p.kind === 'cloudInit' && p.flavor === flavor)) {
      const vol = flavor === 'noCloud' ? 'cloudInitNoCloud' : 'cloudInitConfigDrive';
      throw new InvalidVolumeError(undefined, first.field.replace(/\.sshPublicKey.*$/, '.sshPublicKey.propagationMethod'), `propagation ${flavor} needs a ${vol} volume to carry the keys`, `add a ${vol} volume (and its disk), or propagate with qemuGuestAgent`);
    }
  }
  return {
    namespace,
    instanceId: vmi.metadata.uid ?? `${name}.${namespace}`,
    hostname: vmi.spec.hostname ?? name,
    dirs,
    volumes,
    ...(metadataKeys.noCloud.length || metadataKeys.configDrive.length ? { metadataKeys } : {}),
    ...(kernelBoot ? { kernelBoot } : {}),
  };
}

function validateCloudInitSource(src: CloudInitSource, vol: string, at: string): void {
  const user = (['userData', 'userDataBase64', 'secretRef'] as const).filter((k) => src[k] !== undefined);
  const net = (['networkData', 'networkDataBase64', 'networkDataSecretRef'] as const).filter((k) => src[k] !== undefined);
  if (user.length > 1) throw new InvalidVolumeError(vol, at, `sets ${user.join(' and ')}`, 'set only one of userData, userDataBase64, secretRef');
  if (net.length > 1) throw new InvalidVolumeError(vol, at, `sets ${net.join(' and ')}`, 'set only one of networkData, networkDataBase64, networkDataSecretRef');
  if (user.length === 0 && net.length === 0) {
    throw new InvalidVolumeError(vol, at, 'has neither user data nor network data', 'set userData, userDataBase64 or secretRef');
  }
  if (src.secretRef) safeName(src.secretRef.name, vol, `${at}.secretRef.name`);
  if (src.networkDataSecretRef) safeName(src.networkDataSecretRef.name, vol, `${at}.networkDataSecretRef.name`);
  if (src.userDataBase64 !== undefined) decodeBase64(src.userDataBase64, vol, `${at}.userDataBase64`);
  if (src.networkDataBase64 !== undefined) decodeBase64(src.networkDataBase64, vol, `${at}.networkDataBase64`);
}

/** Strict base64 (Node's decoder silently skips garbage). */
export function decodeBase64(text: string, vol: string, path: string): string {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw new InvalidVolumeError(vol, path, 'is not valid base64', 'encode the data with `base64 -w0` or use the plain-text field');
  }
  return Buffer.from(compact, 'base64').toString('utf8');
}
