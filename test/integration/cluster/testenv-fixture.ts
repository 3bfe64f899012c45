import { inject } from 'vitest';
import { attachControlPlane, type ControlPlane } from '../../../reconciler/cluster/testenv/index.js';

/** What the cluster global setup hands to test files (serializable). */
export interface ClusterTestenv {
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly apiServerUrl: string;
  readonly token: string;
  readonly caFile: string;
  readonly kubernetesVersion: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    clusterTestenv: ClusterTestenv | { skipReason: string };
  }
}

/**
 * The shared control plane of the `cluster` project, or undefined when it could not be built
 * (no Go; the global setup already printed why). Use with `describe.skipIf(!testenv)`.
 * The handle can stop/start single components (`stopComponent('kube-apiserver')`): leave
 * them running at the end of your file, later files share the same control plane.
 */
export function clusterTestenv(): (ControlPlane & ClusterTestenv) | undefined {
  const provided = inject('clusterTestenv');
  if ('skipReason' in provided) return undefined;
  return attachControlPlane(provided.dir);
}
