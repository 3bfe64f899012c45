/**
 * Validation and conversion of a VMI, in the launcher's own isolate.
 *
 * The launcher needs the VMI validator (in the bundle, ajv's standalone code for the closed
 * KubeVirt schema: launcher/precompiled/) and the converter for a new spec only. Their modules
 * are loaded in the background when the launcher starts (`warmPreparation`), while libvirt
 * connects and the first PUT arrives, so the first sync does not wait for them.
 *
 * Until 2026-12-06 both ran in a worker thread that was stopped after each sync, to keep them
 * out of the long-lived launcher's heap. Measured with the lean modules (BENCHMARKS.md,
 * "validation in the launcher's own isolate"), the worker used ~25–40 ms more CPU per start
 * (Node's bootstrap of a second V8 isolate). It also saved less memory than it seemed: a
 * stopped worker's memory stays mostly resident, so loading the modules here costs only
 * ~1.3 MiB more USS per launcher.
 */
import type { ValidationIssue } from '../api/validate.js';
import type { VirtualMachineInstance } from '../api/kubevirt.js';
import type { ConversionContext } from './convert/context.js';
import type { ConversionResult } from './convert/index.js';

type Modules = [typeof import('../api/validate.js'), typeof import('./convert/index.js')];
let loading: Promise<Modules> | undefined;

/** Loads the validator and the converter (once; a failed load is tried again by the next call). */
export function warmPreparation(): Promise<Modules> {
  if (!loading) {
    const attempt = Promise.all([import('../api/validate.js'), import('./convert/index.js')]);
    loading = attempt;
    attempt.catch(() => {
      if (loading === attempt) loading = undefined;
    });
  }
  return loading;
}

/** api/validate.ts's validateManifest. */
export async function validateVmi(obj: unknown): Promise<ValidationIssue[]> {
  const [{ validateManifest }] = await warmPreparation();
  return validateManifest(obj);
}

/** launcher/convert's convertVmi. */
export async function convertVmi(vmi: VirtualMachineInstance, ctx: ConversionContext): Promise<ConversionResult> {
  const [, { convertVmi: convert }] = await warmPreparation();
  return convert(vmi, ctx);
}
