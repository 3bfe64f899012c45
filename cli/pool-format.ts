/** `virtops get pools` (single host): the pools of the applied revision, KubeVirt's columns plus the VMs. Pure. */
import type { PoolView } from '../reconciler/standalone/pools.js';

export function formatPools(pools: readonly PoolView[], opts: { allNamespaces: boolean }): string | undefined {
  if (pools.length === 0) return undefined;
  const head = [...(opts.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'DESIRED', 'CURRENT', 'READY', 'VMS'];
  const rows = pools.map((p) => [
    ...(opts.allNamespaces ? [p.namespace] : []),
    p.paused ? `${p.name} (paused)` : p.name,
    String(p.desired),
    String(p.status.replicas ?? 0),
    String(p.status.readyReplicas ?? 0),
    p.vms.join(',') || '<none>',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n');
}
