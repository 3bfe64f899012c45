/**
 * What the launcher needs from launcher/volumes and launcher/convert, as two small
 * interfaces, so the launcher's control flow does not depend on how volumes are built.
 * wiring.ts binds them to the real modules.
 */
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import type { ConversionContext, MaterializedVolume } from './convert/context.js';
import type { LauncherConfig } from './flags.js';

export interface MaterializedSet {
  volumes: Record<string, MaterializedVolume>;
  kernelBoot?: { kernelPath?: string; initrdPath?: string };
  /** JSON-serialisable record of what was created, persisted so the monitor can release it after a crash. */
  handle: unknown;
}

export interface VolumeBackend {
  materialize(vmi: VirtualMachineInstance, config: LauncherConfig): Promise<MaterializedSet>;
  /** Removes what materialize created for this VMI (overlays, ISOs, emptyDisks); idempotent. */
  release(handle: unknown, config: LauncherConfig): Promise<void>;
}

/** VMI → domain XML (the launcher's is launcher/prepare.ts's convertVmi, loaded in the background at start). */
export type Converter = (
  vmi: VirtualMachineInstance,
  ctx: ConversionContext,
) => { xml: string; warnings: string[] } | Promise<{ xml: string; warnings: string[] }>;
