/**
 * A fixed, self-contained ConversionContext for converter tests and benchmarks: every path
 * derived from one state dir, nothing from the launcher. It is NOT the layout a launcher
 * uses (volumes under the launcher Pod's --ephemeral-disk-dir, sockets and logs under
 * --kubevirt-share-dir): `virtops domain-xml` previews that one through
 * launcher/preview-context.ts, which calls the launcher's own planVolumes/launcherPaths.
 * Pure: it computes paths and touches nothing.
 *
 *   <stateDir>/vmis/<ns>/<name>/disks/<volume>.qcow2     containerDisk / ephemeral overlays, emptyDisk
 *   <stateDir>/vmis/<ns>/<name>/cloud-init/<volume>.iso   NoCloud (cidata) / ConfigDrive (config-2) ISOs
 *   <stateDir>/vmis/<ns>/<name>/config/<volume>.iso       secret, configMap, serviceAccount as ISOs
 *   <stateDir>/vmis/<ns>/<name>/kernel-boot/<file>        kernel / initrd extracted from kernelBoot.container
 *   <stateDir>/images/<sha256 of image ref>.qcow2         containerDisk base images (read-only backing files)
 *   <stateDir>/pvcs/<ns>/<claim>/disk.img                 PVC / DataVolume images (KubeVirt's disk.img)
 *   <stateDir>/vmis/<ns>/<name>/sockets/serial0, vnc     console and VNC unix sockets
 *   <stateDir>/logs/<ns>_<name>-serial0.log               serial console logs
 *   <stateDir>/nvram/<ns>_<name>_VARS.fd                  EFI variables
 *   /usr/share/OVMF/OVMF_{CODE,VARS}_4M*.fd              firmware (launcher/firmware-files.ts, as the launcher uses)
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type * as api from '../../api/kubevirt.js';
import type { ConversionContext, Emulation, MaterializedVolume } from './context.js';
import { ovmfFirmware } from '../firmware-files.js';

// One definition, owned by the host layout (reconciler/agent/host-config.ts, kept free of
// reconciler wiring for importers like this one); re-exported so the converter's API keeps it.
import { DEFAULT_STATE_DIR } from '../../reconciler/agent/host-config.js';
export { DEFAULT_STATE_DIR };

export interface NodeLayoutOptions {
  stateDir?: string;
  emulation: Emulation;
}

export function vmiDir(stateDir: string, namespace: string, name: string): string {
  return posix.join(stateDir, 'vmis', namespace, name);
}

export function nodeContext(vmi: api.VirtualMachineInstance, opts: NodeLayoutOptions): ConversionContext {
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const ns = vmi.metadata.namespace ?? 'default';
  const dir = vmiDir(stateDir, ns, vmi.metadata.name ?? '');
  const volumes: Record<string, MaterializedVolume> = {};
  for (const v of vmi.spec.volumes ?? []) {
    const mv = volumeAt(v, { stateDir, dir, ns });
    if (mv) volumes[v.name] = mv;
  }
  const kb = vmi.spec.domain.firmware?.kernelBoot?.container;
  return {
    emulation: opts.emulation,
    volumes,
    ...(kb
      ? {
          kernelBoot: {
            ...(kb.kernelPath ? { kernelPath: posix.join(dir, 'kernel-boot', posix.basename(kb.kernelPath)) } : {}),
            ...(kb.initrdPath ? { initrdPath: posix.join(dir, 'kernel-boot', posix.basename(kb.initrdPath)) } : {}),
          },
        }
      : {}),
    socketsDir: posix.join(dir, 'sockets'),
    logDir: posix.join(stateDir, 'logs'),
    ovmf: ovmfFirmware(posix.join(stateDir, 'nvram')),
  };
}

function volumeAt(v: api.Volume, p: { stateDir: string; dir: string; ns: string }): MaterializedVolume | undefined {
  const overlay = posix.join(p.dir, 'disks', `${v.name}.qcow2`);
  const pvc = (claim: string) => posix.join(p.stateDir, 'pvcs', p.ns, claim, 'disk.img');
  const iso = (sub: string): MaterializedVolume => ({ name: v.name, type: 'file', path: posix.join(p.dir, sub, `${v.name}.iso`), format: 'raw', readOnly: true });
  if (v.containerDisk) {
    const base = createHash('sha256').update(v.containerDisk.image).digest('hex').slice(0, 32);
    return { name: v.name, type: 'file', path: overlay, format: 'qcow2', backingStore: { path: posix.join(p.stateDir, 'images', `${base}.qcow2`), format: 'qcow2' } };
  }
  if (v.ephemeral) {
    return { name: v.name, type: 'file', path: overlay, format: 'qcow2', backingStore: { path: pvc(v.ephemeral.persistentVolumeClaim.claimName), format: 'raw' } };
  }
  if (v.emptyDisk) return { name: v.name, type: 'file', path: overlay, format: 'qcow2' };
  if (v.persistentVolumeClaim) return { name: v.name, type: 'file', path: pvc(v.persistentVolumeClaim.claimName), format: 'raw', ...(v.persistentVolumeClaim.readOnly ? { readOnly: true } : {}) };
  if (v.dataVolume) return { name: v.name, type: 'file', path: pvc(v.dataVolume.name), format: 'raw' };
  if (v.hostDisk) return { name: v.name, type: 'file', path: v.hostDisk.path, format: 'raw' };
  if (v.cloudInitNoCloud || v.cloudInitConfigDrive) return iso('cloud-init');
  if (v.secret || v.configMap || v.serviceAccount) return iso('config');
  return undefined;
}
