/** `virtops import`: KubeVirt manifests → DSL TypeScript (pure; the CLI does the I/O). */
export { DEFAULT_DSL_MODULE, ImportError, className, importManifests, parseManifests, renderPlan } from './generate.js';
export type { ImportOptions, ImportResult, ImportedVirtualMachine } from './generate.js';
export { normalizeVirtualMachine, prepareVirtualMachine, wrapInstance } from './normalize.js';
export { applyPatch, diffJson, pointerToFieldPath } from './diff.js';
export type { PatchOp } from './diff.js';
