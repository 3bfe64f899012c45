/** Pure text rendering for `virtops get vms` and `virtops describe vm` (kubectl-like). */
import type { VmView } from './backend.js';
import { age } from './dashboard-shared.js';
import { type SourceError, sourceErrorLine } from './source-health.js';

export { age };

export interface VmList {
  revision: string | null;
  refused?: { sha: string; errors: string[]; at: number };
  /** The git source is failing (fetch or apply): what and since when. */
  sourceError?: SourceError;
  vms: VmView[];
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n');
}

export function formatVmTable(list: VmList, opts: { wide?: boolean; now: number; allNamespaces?: boolean }): string {
  const head = ['NAME', 'AGE', 'STATUS', 'READY', 'REVISION'];
  if (opts.allNamespaces) head.unshift('NAMESPACE');
  if (opts.wide) head.push('RUNSTRATEGY', 'DOMAIN', 'PID', 'OVERRIDE', 'MESSAGE');
  const rows = [head];
  for (const v of list.vms) {
    const st = v.status;
    const row = [v.name, age(v.firstSeen, opts.now), v.inGit ? (st?.printableStatus ?? 'Unknown') : 'Pruning', st?.ready ? 'True' : 'False', (v.revision ?? '').slice(0, 12)];
    if (opts.allNamespaces) row.unshift(v.namespace);
    if (opts.wide) {
      const failure = st?.conditions?.find((c) => c.type === 'Failure' && c.status === 'True');
      const restart = st?.conditions?.find((c) => c.type === 'RestartRequired' && c.status === 'True');
      row.push(st?.runStrategy ?? '', v.instance?.domain ?? '', v.instance?.pid !== undefined ? String(v.instance.pid) : '', v.override?.action ?? '', failure?.message ?? (restart ? 'RestartRequired' : ''));
    }
    rows.push(row);
  }
  return table(rows);
}

/** Lines for stderr above the table: the git source is failing, the newest commit was refused. */
export function refusalNotice(list: Pick<VmList, 'revision' | 'refused' | 'sourceError'>): string | undefined {
  const lines: string[] = [];
  if (list.sourceError) lines.push(sourceBanner(list.sourceError, list.revision));
  if (list.refused) {
    lines.push(`warning: commit ${list.refused.sha.slice(0, 12)} was refused; revision ${list.revision?.slice(0, 12) ?? '(none)'} keeps running:\n${list.refused.errors.map((e) => `  ${e}`).join('\n')}`);
  }
  return lines.length ? lines.join('\n') : undefined;
}

/** The one-line banner of a failing source (newlines of git's message folded). */
export function sourceBanner(e: SourceError, revision: string | null): string {
  return `warning: ${sourceErrorLine(e).replace(/\s*\n\s*/g, ' ')}; revision ${revision?.slice(0, 12) ?? '(none)'} keeps running`;
}

export function formatDescribe(v: VmView & { appliedRevision?: string | null; refused?: VmList['refused']; sourceError?: SourceError }, now: number): string {
  const st = v.status;
  const lines: string[] = [
    `Name:           ${v.name}`,
    `Namespace:      ${v.namespace}`,
    `Revision:       ${v.revision ?? '(none)'}${v.inGit ? '' : '  (left git: being pruned)'}`,
    `Status:         ${st?.printableStatus ?? 'Unknown'}`,
    `Ready:          ${st?.ready ? 'True' : 'False'}`,
    `Run Strategy:   ${st?.runStrategy ?? ''}`,
  ];
  if (v.override) lines.push(`Override:       ${v.override.action} (requested ${new Date(v.override.at).toISOString()}; cleared by the next commit that changes this VM)`);
  if (v.instance) {
    lines.push(
      'Instance:',
      `  UID:          ${v.instance.uid}`,
      `  Created:      ${v.instance.createdAt} (${age(v.instance.createdAt, now)} ago)`,
      `  Domain:       ${v.instance.domain}`,
      `  Launcher PID: ${v.instance.pid ?? '(starting)'}`,
      `  Launcher log: ${v.instance.launcherLog}`,
      `  Console:      ${v.instance.console}  (virtops console ${v.name})`,
      `  Serial log:   ${v.instance.serialLog}`,
    );
  } else {
    lines.push('Instance:       (none)');
  }
  if (st?.startFailure) lines.push(`Start Failures: ${st.startFailure.consecutiveFailCount ?? 0} in a row${st.startFailure.retryAfterTimestamp ? `, next try ${st.startFailure.retryAfterTimestamp}` : ''}`);
  lines.push('Conditions:');
  const conds = st?.conditions ?? [];
  if (conds.length) {
    lines.push(
      table([['  TYPE', 'STATUS', 'REASON', 'LAST TRANSITION', 'MESSAGE'], ...conds.map((c) => [`  ${c.type}`, c.status, c.reason ?? '', c.lastTransitionTime ?? '', c.message ?? ''])]),
    );
  } else lines.push('  (none)');
  if (v.sourceError) lines.push(`Source:         ${sourceErrorLine(v.sourceError)}`);
  if (v.refused) {
    lines.push(`Source:         commit ${v.refused.sha.slice(0, 12)} refused; ${v.appliedRevision?.slice(0, 12) ?? '(none)'} keeps running`);
    for (const e of v.refused.errors) lines.push(`  ${e}`);
  }
  lines.push('Events:');
  if (v.events.length) {
    lines.push(table([['  TYPE', 'REASON', 'AGE', 'MESSAGE'], ...v.events.map((e) => [`  ${e.type}`, e.reason, `${age(e.time, now)}${e.count && e.firstTime ? ` (x${e.count} over ${age(e.firstTime, now)})` : ''}`, e.message])]));
  } else lines.push('  (none)');
  return lines.join('\n');
}
