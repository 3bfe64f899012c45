import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { renderKubeconfig } from './credentials.js';
import type { ControlPlaneInfo } from './control-plane.js';

/** Loads a kubeconfig file into a client-node KubeConfig. */
export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface ServiceAccountKubeconfigOptions {
  readonly namespace: string;
  readonly name: string;
  /** Create the namespace and ServiceAccount when missing (default true). */
  readonly create?: boolean;
  /** Token lifetime; default 24 h (the API server's minimum is 10 min). */
  readonly expirationSeconds?: number;
  /** Where to write the kubeconfig; default DIR/users/sa-<namespace>-<name>.kubeconfig. */
  readonly path?: string;
}

/**
 * Mints a kubeconfig that authenticates as a ServiceAccount through the TokenRequest API, so a
 * test can act exactly as the controller or the node agent would in-cluster (RBAC applies).
 */
export async function serviceAccountKubeconfig(
  cp: Pick<ControlPlaneInfo, 'dir' | 'kubeconfigPath' | 'apiServerUrl' | 'caFile'>,
  o: ServiceAccountKubeconfigOptions,
): Promise<{ kubeconfigPath: string; token: string; user: string }> {
  const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  if (!dns.test(o.namespace)) throw new Error(`namespace: "${o.namespace}" must be a DNS label (lower-case letters, digits, -)`);
  if (!/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(o.name)) throw new Error(`name: "${o.name}" must be a DNS subdomain (lower-case letters, digits, - and .)`);
  const expirationSeconds = o.expirationSeconds ?? 86_400;
  if (!Number.isInteger(expirationSeconds) || expirationSeconds < 600) {
    throw new Error(`expirationSeconds: ${expirationSeconds} must be an integer >= 600 (the API server's minimum)`);
  }
  const core = loadKubeConfig(cp.kubeconfigPath).makeApiClient(CoreV1Api);
  if (o.create ?? true) {
    await ignoreConflict(core.createNamespace({ body: { metadata: { name: o.namespace } } }));
    await ignoreConflict(core.createNamespacedServiceAccount({ namespace: o.namespace, body: { metadata: { name: o.name } } }));
  }
  const request = await core.createNamespacedServiceAccountToken({
    namespace: o.namespace,
    name: o.name,
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const token = request.status?.token;
  if (!token) throw new Error(`TokenRequest for ${o.namespace}/${o.name} returned no token`);
  const user = `system:serviceaccount:${o.namespace}:${o.name}`;
  const kubeconfigPath = o.path ?? join(cp.dir, 'users', `sa-${o.namespace}-${o.name}.kubeconfig`);
  mkdirSync(dirname(kubeconfigPath), { recursive: true });
  writeFileSync(kubeconfigPath, renderKubeconfig({ server: cp.apiServerUrl, caFile: cp.caFile, user, token }), { mode: 0o600 });
  return { kubeconfigPath, token, user };
}

async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}
