/** Pure text for `virtops get dv` and `virtops snapshot list` (the columns kubectl shows for CDI's and KubeVirt's kinds). */
import type { DataVolumeView } from '../../reconciler/standalone/datavolumes.js';
import type { VirtualMachineRestore, VirtualMachineSnapshot } from '../../api/snapshot.js';
import { age, table } from '../../reconciler/standalone/format.js';

/** CDI's `kubectl get dv` columns: NAME PHASE PROGRESS RESTARTS AGE (+ NAMESPACE, MESSAGE with -o wide). */
export function formatDataVolumes(items: readonly DataVolumeView[], opts: { now: number; wide?: boolean; created?: (dv: DataVolumeView) => string | undefined }): string | undefined {
  if (!items.length) return undefined;
  const ns = items.some((d) => d.metadata.namespace !== 'default');
  const head = [...(ns ? ['NAMESPACE'] : []), 'NAME', 'PHASE', 'PROGRESS', 'RESTARTS', 'AGE', ...(opts.wide ? ['SOURCE', 'OWNER', 'MESSAGE'] : [])];
  const rows = [head];
  for (const d of items) {
    const bound = d.status.conditions.find((c) => c.type === 'Bound');
    const since = bound?.lastTransitionTime ?? undefined;
    const running = d.status.conditions.find((c) => c.type === 'Running');
    const ready = d.status.conditions.find((c) => c.type === 'Ready');
    rows.push([
      ...(ns ? [d.metadata.namespace] : []),
      d.metadata.name,
      d.status.phase,
      d.status.progress,
      String(d.status.restartCount ?? 0),
      since ? age(since, opts.now) : '<unknown>',
      ...(opts.wide
        ? [d.spec.source.kind, d.metadata.ownerReferences?.[0] ? `VirtualMachine/${d.metadata.ownerReferences[0].name}` : '', (d.errors?.join('; ') || running?.message || ready?.message || '').replace(/\s+/g, ' ')]
        : []),
    ]);
  }
  return table(rows);
}

/** KubeVirt's `kubectl get vmsnapshot` columns: NAME SOURCEKIND SOURCENAME PHASE READYTOUSE CREATIONTIME ERROR (+ INDICATIONS). */
export function formatSnapshots(items: readonly VirtualMachineSnapshot[], opts: { now: number }): string | undefined {
  if (!items.length) return undefined;
  const ns = items.some((s) => (s.metadata.namespace ?? 'default') !== 'default');
  const rows = [[...(ns ? ['NAMESPACE'] : []), 'NAME', 'SOURCEKIND', 'SOURCENAME', 'PHASE', 'READYTOUSE', 'CREATIONTIME', 'INDICATIONS', 'ERROR']];
  for (const s of items) {
    const st = s.status;
    rows.push([
      ...(ns ? [s.metadata.namespace ?? 'default'] : []),
      s.metadata.name,
      s.spec.source.kind,
      s.spec.source.name,
      st?.phase ?? 'Unknown',
      String(st?.readyToUse ?? false),
      st?.creationTime ? age(st.creationTime, opts.now) : '',
      (st?.indications ?? []).join(','),
      (st?.error?.message ?? '').replace(/\s+/g, ' '),
    ]);
  }
  return table(rows);
}

/** KubeVirt's `kubectl get vmrestore` columns: NAME TARGETKIND TARGETNAME COMPLETE RESTORETIME ERROR (the message). */
export function formatRestores(items: readonly VirtualMachineRestore[], opts: { now: number }): string | undefined {
  if (!items.length) return undefined;
  const rows = [['NAME', 'SNAPSHOT', 'TARGETKIND', 'TARGETNAME', 'COMPLETE', 'RESTORETIME', 'MESSAGE']];
  for (const r of items) {
    const st = r.status;
    const msg = st?.conditions.find((c) => c.type === 'Ready')?.message ?? '';
    rows.push([r.metadata.name, r.spec.virtualMachineSnapshotName, r.spec.target.kind, r.spec.target.name, String(st?.complete ?? false), st?.restoreTime ? age(st.restoreTime, opts.now) : '', msg.replace(/\s+/g, ' ')]);
  }
  return table(rows);
}
