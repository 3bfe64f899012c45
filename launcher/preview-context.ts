/**
 * The ConversionContext a launcher would build for a VMI, computed without touching the
 * disk, for previews (`virtops domain-xml`). It uses the launcher's own pure pieces, so the
 * preview cannot drift from what the launcher defines:
 *
 * - volume paths from launcher/volumes/plan.ts `planVolumes(vmi, --ephemeral-disk-dir)`
 *   (the same call materializeVolumes makes before creating anything);
 * - socket and log directories from launcher/flags.ts `launcherPaths(config)`;
 * - firmware files from launcher/firmware-files.ts `ovmfFirmware(nvramDir)`.
 *
 * Only what is decided at materialisation time is not knowable here; each such value is
 * reported in `unresolved`: the digest directory of a pulled image (backing files of
 * containerDisks, kernel/initrd of kernelBoot) and which of a claim's file layouts exists
 * (`<claim>.img` is shown; `.qcow2` or `<claim>/disk.img` are found at run time).
 *
 * It lives outside launcher/convert so the converter keeps no dependency on volumes.
 */
import { join } from 'node:path';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import type { ConversionContext, Emulation, MaterializedVolume } from './convert/context.js';
import { type LauncherConfig, launcherPaths } from './flags.js';
import { planVolumes, type VolumePlan } from './volumes/plan.js';
import { ovmfFirmware } from './firmware-files.js';

export interface PreviewContext {
  ctx: ConversionContext;
  /** Paths that are placeholders until the launcher pulls images or finds claims, for the reader. */
  unresolved: string[];
}

/** The image store directory of a not-yet-pulled image (the launcher names it by manifest digest). */
function imageFile(config: LauncherConfig, image: string, pathInImage: string): string {
  return join(config.imageStore, 'images', `<digest of ${image}>`, 'files', pathInImage);
}

/** `planVolumes` and `launcherPaths` for `config` (the launcher's parsed flags) → the context convertVmi gets. */
export function launcherPreviewContext(vmi: VirtualMachineInstance, config: LauncherConfig, emulation: Emulation): PreviewContext {
  const plan = planVolumes(vmi, config.ephemeralDiskDir);
  const paths = launcherPaths(config);
  const unresolved: string[] = [];
  const volumes: Record<string, MaterializedVolume> = {};
  for (const step of plan.volumes) volumes[step.name] = previewVolume(step, config, plan.namespace, unresolved);

  let kernelBoot: ConversionContext['kernelBoot'];
  if (plan.kernelBoot) {
    const { ref, kernelPath, initrdPath } = plan.kernelBoot;
    kernelBoot = {
      ...(kernelPath ? { kernelPath: imageFile(config, ref.image, kernelPath) } : {}),
      ...(initrdPath ? { initrdPath: imageFile(config, ref.image, initrdPath) } : {}),
    };
    unresolved.push(`kernelBoot: kernel/initrd are extracted into the image store under the digest ${ref.image} resolves to when pulled`);
  }
  return {
    ctx: { emulation, volumes, ...(kernelBoot ? { kernelBoot } : {}), socketsDir: paths.socketsDir, logDir: paths.logDir, ovmf: ovmfFirmware(paths.nvramDir) },
    unresolved,
  };
}

function previewVolume(step: VolumePlan, config: LauncherConfig, namespace: string, unresolved: string[]): MaterializedVolume {
  const name = step.name;
  switch (step.kind) {
    case 'emptyDisk':
      return { name, type: 'file', path: step.path, format: 'qcow2' };
    case 'containerDisk': {
      unresolved.push(`${name}: the backing file is extracted into the image store under the digest ${step.ref.image} resolves to when pulled; its format (qcow2 or raw) is read then`);
      return { name, type: 'file', path: step.overlayPath, format: 'qcow2', backingStore: { path: imageFile(config, step.ref.image, step.pathInImage ?? '/disk'), format: 'qcow2' } };
    }
    case 'hostDisk':
      return { name, type: 'file', path: step.path, format: 'raw' };
    case 'claim': {
      if (config.vmiDisksDir) {
        // A kubelet-run Pod: the claim is the Pod's volume, one place only.
        const mounted = join(config.vmiDisksDir, name, 'disk.img');
        if (step.overlayPath) return { name, type: 'file', path: step.overlayPath, format: 'qcow2', backingStore: { path: mounted, format: 'raw' } };
        return { name, type: 'file', path: mounted, format: 'raw', ...(step.readOnly ? { readOnly: true } : {}) };
      }
      const claim = join(config.pvcDir, namespace, `${step.claimName}.img`);
      unresolved.push(`${name}: claim ${namespace}/${step.claimName} is shown as ${claim}; the launcher uses whichever of <claim>.img, <claim>.qcow2, <claim>/disk.img exists under ${config.pvcDir}/${namespace}`);
      if (step.overlayPath) return { name, type: 'file', path: step.overlayPath, format: 'qcow2', backingStore: { path: claim, format: 'raw' } };
      return { name, type: 'file', path: claim, format: 'raw', ...(step.readOnly ? { readOnly: true } : {}) };
    }
    case 'cloudInit':
    case 'objectIso':
      return { name, type: 'file', path: step.isoPath, format: 'raw', readOnly: true };
  }
}
