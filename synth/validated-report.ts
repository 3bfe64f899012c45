/**
 * The hand-off between a VirtopsApp (child process) and `virtops synth` (synth/run.ts) that
 * keeps each VirtualMachine validated once: the DSL's validation already ran validateManifest
 * and names the construct path, so synth skips the VMs the app lists here. Kept apart from
 * app.ts so the CLI does not load cdk8s just for a constant.
 */

/** Env var naming the file (outside the output dir) the app writes its report to. */
export const VALIDATED_REPORT_ENV = 'VIRTOPS_SYNTH_VALIDATED_REPORT';

/** Output file (e.g. `web.k8s.yaml`) → `namespace/name` of each VM the app validated. */
export interface ValidatedReport {
  readonly validatedVirtualMachines: Record<string, string[]>;
}

/**
 * Env var naming the file in which VirtopsApp keeps the YAML of the documents it synthesized
 * (synth/yaml-cache.ts), so the next `virtops synth` serializes only what changed.
 */
export const YAML_CACHE_FILE_ENV = 'VIRTOPS_SYNTH_YAML_CACHE';
