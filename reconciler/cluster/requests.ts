/**
 * What the CLI asks of cluster mode, and where it says so. Kept dependency-free: the CLI
 * imports it without loading the controller.
 *
 * - Overrides (`virtops start|stop|restart|pause|unpause`): annotation `virtops.io/override`
 *   on the VirtualMachine (reconciler/core/overrides.ts). The controller honours it and clears
 *   it when a revision changes the VM (git wins again).
 * - Pause: the controller asks the node agent through annotation `virtops.io/paused` on the
 *   VMI ("true" = pause, "false" = resume; absent = leave as is); the agent carries it out.
 * - Sync now (`virtops reconcile`), like Flux: the CLI sets annotation
 *   `reconcile.virtops.io/requestedAt` on the inventory ConfigMap; the controller re-reads git,
 *   re-applies and resyncs every VM, then writes the same value to `data.lastHandledReconcileAt`.
 * - Console: the node agent serves `GET /virtops/v1/console/<namespace>/<name>` (HTTP upgrade to
 *   a raw byte stream) on its kubelet-style port, to the API server only (client certificate);
 *   users reach it through `nodes/<node>/proxy`, authenticated and authorized by the API server.
 */
export const PAUSED_ANNOTATION = 'virtops.io/paused';
export const RECONCILE_REQUESTED_ANNOTATION = 'reconcile.virtops.io/requestedAt';
export const RECONCILE_HANDLED_KEY = 'lastHandledReconcileAt';
export const CONSOLE_PROTOCOL = 'virtops-console.v1';
export const CONSOLE_PATH_PREFIX = '/virtops/v1/console/';

export function consolePath(namespace: string, name: string): string {
  return `${CONSOLE_PATH_PREFIX}${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

/** `/virtops/v1/console/<ns>/<name>` → its parts; undefined for anything else. Pure. */
export function parseConsolePath(path: string): { namespace: string; name: string } | undefined {
  if (!path.startsWith(CONSOLE_PATH_PREFIX)) return undefined;
  const parts = path.slice(CONSOLE_PATH_PREFIX.length).split('?')[0]!.split('/');
  if (parts.length !== 2) return undefined;
  const [namespace, name] = parts.map((p) => decodeURIComponent(p)) as [string, string];
  const dns = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
  return dns.test(namespace) && dns.test(name) ? { namespace, name } : undefined;
}
