/**
 * Pure text rendering for the CLI's cluster mode: `get vms|vmis` with KubeVirt's printer
 * columns, `describe vm`, and the field diff `diff` shows between the API server and dist/.
 */
import type { VirtualMachine, VirtualMachineInstance } from '../api/kubevirt.js';
import { OVERRIDE_ANNOTATION, parseOverride } from '../reconciler/core/overrides.js';
import { age, table } from '../reconciler/standalone/format.js';

export interface KubeEvent {
  type?: string;
  reason?: string;
  message?: string;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  firstTimestamp?: string | null;
  count?: number;
  metadata?: { creationTimestamp?: string };
}

const created = (o: { metadata?: { creationTimestamp?: string } }, now: number) => (o.metadata?.creationTimestamp ? age(o.metadata.creationTimestamp, now) : '<unknown>');

/** The override recorded on a VM (annotation), as text; invalid ones say why. */
export function overrideOf(vm: VirtualMachine): { text: string; action?: string } | undefined {
  const raw = vm.metadata.annotations?.[OVERRIDE_ANNOTATION];
  if (raw === undefined) return undefined;
  const p = parseOverride(raw);
  if (!p.ok) return { text: `invalid (${p.error})` };
  return { text: `${p.override.action} (requested ${new Date(p.override.at).toISOString()} at revision ${p.override.revision.slice(0, 12)}; cleared by the next commit that changes this VM)`, action: p.override.action };
}

/** KubeVirt's VM columns: NAME AGE STATUS READY (NAMESPACE first with -A). */
export function formatVmRows(vms: VirtualMachine[], opts: { wide: boolean; now: number; allNamespaces: boolean }): string {
  const head = ['NAME', 'AGE', 'STATUS', 'READY'];
  if (opts.allNamespaces) head.unshift('NAMESPACE');
  if (opts.wide) head.push('RUNSTRATEGY', 'OVERRIDE', 'MESSAGE');
  const rows = [head];
  for (const vm of vms) {
    const st = vm.status;
    const ready = st?.conditions?.find((c) => c.type === 'Ready');
    // As kubectl prints KubeVirt's printer column: the Ready condition, empty before any status.
    const row = [vm.metadata.name ?? '', created(vm, opts.now), st?.printableStatus ?? '', ready?.status ?? (st?.ready === undefined ? '' : st.ready ? 'True' : 'False')];
    if (opts.allNamespaces) row.unshift(vm.metadata.namespace ?? 'default');
    if (opts.wide) {
      const failure = st?.conditions?.find((c) => c.type === 'Failure' && c.status === 'True');
      const restart = st?.conditions?.find((c) => c.type === 'RestartRequired' && c.status === 'True');
      row.push(vm.spec.runStrategy ?? (vm.spec.running === undefined ? '' : vm.spec.running ? 'Always (running: true)' : 'Halted (running: false)'), overrideOf(vm)?.action ?? '', failure?.message ?? (restart ? 'RestartRequired' : ''));
    }
    rows.push(row);
  }
  return table(rows);
}

/** KubeVirt's VMI columns: NAME AGE PHASE IP NODENAME READY (wide: PAUSED). */
export function formatVmiRows(vmis: VirtualMachineInstance[], opts: { wide: boolean; now: number; allNamespaces: boolean }): string {
  const head = ['NAME', 'AGE', 'PHASE', 'IP', 'NODENAME', 'READY'];
  if (opts.allNamespaces) head.unshift('NAMESPACE');
  if (opts.wide) head.push('PAUSED');
  const rows = [head];
  for (const vmi of vmis) {
    const st = vmi.status;
    const ready = st?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'False';
    const ip = st?.interfaces?.find((i) => i.ipAddress)?.ipAddress ?? '';
    const row = [vmi.metadata.name ?? '', created(vmi, opts.now), st?.phase ?? '', ip, st?.nodeName ?? '', ready];
    if (opts.allNamespaces) row.unshift(vmi.metadata.namespace ?? 'default');
    if (opts.wide) row.push(st?.conditions?.find((c) => c.type === 'Paused')?.status ?? 'False');
    rows.push(row);
  }
  return table(rows);
}

export interface ClusterVmDetails {
  vm: VirtualMachine;
  vmi?: VirtualMachineInstance;
  pod?: { metadata?: { name?: string }; status?: { phase?: string } };
  events: KubeEvent[];
  /** The revision the controller applied last (its inventory), if readable. */
  revision?: string;
}

export function formatClusterDescribe(d: ClusterVmDetails, now: number): string {
  const { vm, vmi } = d;
  const st = vm.status;
  const lines = [
    `Name:           ${vm.metadata.name}`,
    `Namespace:      ${vm.metadata.namespace ?? 'default'}`,
    `Created:        ${vm.metadata.creationTimestamp ?? ''} (${created(vm, now)} ago)`,
    `Revision:       ${d.revision ?? '(unknown: the controller inventory is not readable)'}`,
    `Generation:     ${vm.metadata.generation ?? ''} (observed ${st?.observedGeneration ?? '-'}, desired ${st?.desiredGeneration ?? '-'})`,
    `Status:         ${st?.printableStatus ?? 'Unknown'}`,
    `Ready:          ${st?.ready ? 'True' : 'False'}`,
    `Run Strategy:   ${vm.spec.runStrategy ?? (vm.spec.running === undefined ? '' : `running: ${vm.spec.running}`)}`,
  ];
  const ov = overrideOf(vm);
  if (ov) lines.push(`Override:       ${ov.text}`);
  if (vmi) {
    lines.push(
      'Instance:',
      `  UID:          ${vmi.metadata.uid ?? ''}`,
      `  Created:      ${vmi.metadata.creationTimestamp ?? ''} (${created(vmi, now)} ago)`,
      `  Phase:        ${vmi.status?.phase ?? 'Pending'}${vmi.metadata.deletionTimestamp ? ' (terminating)' : ''}`,
      `  Node:         ${vmi.status?.nodeName ?? '(not scheduled)'}`,
      `  Launcher Pod: ${d.pod?.metadata?.name ?? '(none)'}${d.pod?.status?.phase ? ` (${d.pod.status.phase})` : ''}`,
      `  Console:      virtops console ${vm.metadata.name} -n ${vm.metadata.namespace ?? 'default'}`,
    );
  } else lines.push('Instance:       (none)');
  if (st?.startFailure) lines.push(`Start Failures: ${st.startFailure.consecutiveFailCount ?? 0} in a row${st.startFailure.retryAfterTimestamp ? `, next try ${st.startFailure.retryAfterTimestamp}` : ''}`);
  lines.push('Conditions:');
  const conds = st?.conditions ?? [];
  if (conds.length) lines.push(table([['  TYPE', 'STATUS', 'REASON', 'LAST TRANSITION', 'MESSAGE'], ...conds.map((c) => [`  ${c.type}`, c.status, c.reason ?? '', c.lastTransitionTime ?? '', c.message ?? ''])]));
  else lines.push('  (none)');
  lines.push('Events:');
  const events = [...d.events].sort((a, b) => Date.parse(eventTime(a)) - Date.parse(eventTime(b)));
  if (events.length) lines.push(table([['  TYPE', 'REASON', 'AGE', 'MESSAGE'], ...events.map((e) => [`  ${e.type ?? ''}`, e.reason ?? '', age(eventTime(e), now), e.message ?? ''])]));
  else lines.push('  (none)');
  return lines.join('\n');
}

function eventTime(e: KubeEvent): string {
  return e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? new Date(0).toISOString();
}

/** Fields the API server owns: never part of a diff. */
const SERVER_FIELDS = ['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp', 'selfLink'];

/** Drops server-owned metadata and status (git never declares status). Pure. */
export function comparable(obj: Record<string, unknown>): Record<string, unknown> {
  const { status: _s, metadata, ...rest } = obj;
  const m = { ...((metadata ?? {}) as Record<string, unknown>) };
  for (const f of SERVER_FIELDS) delete m[f];
  return { ...rest, metadata: m };
}

const show = (v: unknown): string => {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

/**
 * The leaf paths that differ between `live` and `desired`, as `path: old → new`, sorted.
 * Arrays are compared element by element. Pure.
 */
export function fieldDiff(live: unknown, desired: unknown, path = ''): string[] {
  if (JSON.stringify(live) === JSON.stringify(desired)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(live) && isObj(desired)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(live), ...Object.keys(desired)])].sort()) out.push(...fieldDiff(live[k], desired[k], path ? `${path}.${k}` : k));
    return out;
  }
  if (Array.isArray(live) && Array.isArray(desired) && live.length === desired.length) {
    return live.flatMap((v, i) => fieldDiff(v, desired[i], `${path}[${i}]`));
  }
  return [`${path || '.'}: ${show(live)} → ${show(desired)}`];
}
