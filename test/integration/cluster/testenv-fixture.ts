import { inject } from 'vitest';
import { attachControlPlane, readControlPlane, runningComponents, startControlPlane, type ControlPlane, type ControlPlaneInfo } from '../../../reconciler/cluster/testenv/index.js';

/** What the cluster global setup hands to test files: the control plane's state dir. */
export type ClusterTestenv = Pick<ControlPlaneInfo, 'dir' | 'kubeconfigPath' | 'apiServerUrl' | 'token' | 'caFile' | 'kubernetesVersion'>;

declare module 'vitest' {
  export interface ProvidedContext {
    clusterTestenv: { dir: string } | { skipReason: string };
  }
}

/**
 * The shared control plane of the `cluster` project, or undefined when it could not be built
 * (no Go; the global setup already printed why). Use with `describe.skipIf(!testenv)`.
 * The first file to ask starts it (building the binaries, or waiting for the build `npm test`
 * runs in the background); the project runs one file at a time, so there is no race, and the
 * global setup stops it at the end. The handle can stop/start single components
 * (`stopComponent('kube-apiserver')`): leave them running at the end of your file, later files
 * share the same control plane.
 */
export async function clusterTestenv(): Promise<ControlPlane | undefined> {
  const provided = inject('clusterTestenv');
  if ('skipReason' in provided) return undefined;
  if (!readControlPlane(provided.dir)) {
    const started = Date.now();
    const cp = await startControlPlane({ dir: provided.dir, detached: true, onProgress: (line) => process.stderr.write(`${line}\n`) });
    process.stderr.write(`cluster testenv: ${cp.apiServerUrl} (${cp.kubernetesVersion}) ready in ${Date.now() - started} ms, dir ${provided.dir}\n`);
  }
  else if (runningComponents(provided.dir).length === 0) {
    throw new Error(`the cluster project's control plane in ${provided.dir} is not running: an earlier file's start failed or stopped it (logs in ${provided.dir}/logs)`);
  }
  return attachControlPlane(provided.dir);
}
