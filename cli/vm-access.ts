/**
 * One CLI for both modes: every VM command (get, describe, start/stop/..., diff, reconcile,
 * console) is written once over `VmAccess`, which has two implementations:
 *
 *   local    the running `virtops up` (its unix socket or TCP + token): cli/local-access.ts
 *   cluster  a Kubernetes API server where `virtops controller` + agents run: cli/cluster-access.ts
 *
 * `selectMode` (pure) decides which from the flags and the environment; the implementation is
 * loaded lazily, so `--help` and the local mode never load the cluster code.
 */
import type { Duplex } from 'node:stream';
import type { Command } from 'commander';
import type { ImperativeAction } from '../reconciler/core/types.js';
import type { DiffEntry } from '../reconciler/standalone/backend.js';
import { SERVER_ENV, STATE_DIR_ENV, addConnectionOptions, type ConnectionOptions } from '../reconciler/standalone/client.js';

export type VmResource = 'vms' | 'vmis';

/** kubectl's resource names and short names. */
const RESOURCE_NAMES: Record<string, VmResource> = {
  vm: 'vms', vms: 'vms', virtualmachine: 'vms', virtualmachines: 'vms',
  vmi: 'vmis', vmis: 'vmis', virtualmachineinstance: 'vmis', virtualmachineinstances: 'vmis',
};

export function parseResource(raw: string, allowed: readonly VmResource[], example: string): VmResource {
  const r = RESOURCE_NAMES[raw.toLowerCase()];
  if (!r || !allowed.includes(r)) throw new Error(`resource "${raw}" is not supported here: use ${example}`);
  return r;
}

export interface Listing {
  /** What `-o json|yaml` prints. */
  data: unknown;
  /** The table (kubectl style); undefined when there is nothing to list. */
  table(opts: { wide: boolean; now: number }): string | undefined;
  /** Printed to stderr before the table (e.g. a refused commit). */
  notice?: string;
  /** Printed to stderr when there is nothing to list. */
  empty: string;
}

export interface Described {
  data: unknown;
  text(now: number): string;
}

/** An object-level change `diff` found (cluster mode: dist/ against the API server). */
export interface ObjectChange {
  key: string;
  change: 'create' | 'update' | 'prune';
  /** Changed fields, `path: old → new`. */
  fields: string[];
}

export interface DiffView {
  applied?: string;
  next?: string;
  objects?: ObjectChange[];
  entries: DiffEntry[];
}

export interface ConsoleStream {
  socket: Duplex;
  /** Bytes that arrived with the connection (after an HTTP upgrade). */
  head?: Buffer;
  /** What the banner names (the domain, or namespace/name on node X). */
  label: string;
}

export interface VmAccess {
  readonly mode: 'local' | 'cluster';
  /** `namespace` undefined: the mode's default (local: all; cluster: the context's); `all`: every namespace. */
  list(resource: VmResource, scope: { namespace?: string; all: boolean }): Promise<Listing>;
  describe(namespace: string | undefined, name: string): Promise<Described>;
  /** An imperative action, recorded as an override on the VM; returns the line to print. */
  act(namespace: string | undefined, name: string, action: ImperativeAction): Promise<string>;
  diff(opts: { path: string }): Promise<DiffView>;
  /** Sync now; resolves with what to print once the reconciler handled the request. */
  reconcile(opts: { timeoutMs: number }): Promise<string>;
  console(namespace: string | undefined, name: string): Promise<ConsoleStream>;
}

export interface AccessOptions extends ConnectionOptions {
  kubeconfig?: string;
  context?: string;
  controllerNamespace?: string;
}

export type Mode = { mode: 'local' } | { mode: 'cluster'; kubeconfigPaths: string[] };

/**
 * Which reconciler to talk to. Pure.
 * - `--kubeconfig` → cluster; together with --server/--state-dir/--token-file it is an error;
 * - `--server`, `--state-dir`, `--token-file` → the local `virtops up`;
 * - `$VIRTOPS_SERVER` / `$VIRTOPS_STATE_DIR` → local (they name a virtops up; `$KUBECONFIG` is
 *   often set for other tools);
 * - `$KUBECONFIG` → cluster;
 * - otherwise the local `virtops up`.
 */
export function selectMode(opts: AccessOptions, env: NodeJS.ProcessEnv): Mode {
  const localFlags = (['server', 'stateDir', 'tokenFile'] as const).filter((k) => opts[k] !== undefined);
  const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (opts.kubeconfig !== undefined) {
    if (localFlags.length) throw new Error(`--kubeconfig (cluster mode) cannot be combined with ${localFlags.map(flag).join(', ')} (a local virtops up): pass one or the other`);
    if (opts.kubeconfig === '') throw new Error('--kubeconfig: empty path; pass a kubeconfig file');
    return { mode: 'cluster', kubeconfigPaths: [opts.kubeconfig] };
  }
  if (localFlags.length) return { mode: 'local' };
  if (env[SERVER_ENV] || env[STATE_DIR_ENV]) return { mode: 'local' };
  const paths = (env['KUBECONFIG'] ?? '').split(':').filter((p) => p !== '');
  if (paths.length) return { mode: 'cluster', kubeconfigPaths: paths };
  return { mode: 'local' };
}

/** The options of every command that talks to a reconciler, in either mode. */
export function addAccessOptions(cmd: Command): Command {
  return addConnectionOptions(cmd)
    .option('--kubeconfig <file>', 'cluster mode: act on the Kubernetes API of this kubeconfig (default: $KUBECONFIG when set)')
    .option('--context <name>', 'cluster mode: kubeconfig context (default: its current-context)')
    .option('--controller-namespace <ns>', 'cluster mode: namespace of virtops controller (its inventory ConfigMap)', 'virtops-system');
}

export async function openAccess(opts: AccessOptions, env: NodeJS.ProcessEnv = process.env): Promise<VmAccess> {
  const m = selectMode(opts, env);
  if (m.mode === 'cluster') {
    const { ClusterAccess } = await import('./cluster-access.js');
    return ClusterAccess.connect(m.kubeconfigPaths, { ...(opts.context ? { context: opts.context } : {}), controllerNamespace: opts.controllerNamespace ?? 'virtops-system' });
  }
  const { LocalAccess } = await import('./local-access.js');
  return LocalAccess.connect(opts, env);
}

/** Pure: the text `virtops diff` prints. */
export function formatDiff(d: DiffView, mode: VmAccess['mode']): string {
  const out: string[] = [`applied: ${d.applied ?? '(none)'}`];
  if (d.next && d.next !== d.applied) out.push(`next:    ${d.next}`);
  let changes = 0;
  for (const o of d.objects ?? []) {
    changes++;
    out.push(`${o.change === 'create' ? '+' : o.change === 'prune' ? '-' : '~'} ${o.key} (${o.change})`);
    for (const f of o.fields) out.push(`    ${f}`);
  }
  for (const e of d.entries) {
    const acts = e.actions.filter((a) => a.type !== 'none');
    const note = e.actions.find((a) => a.type === 'none');
    if (e.change === 'unchanged' && acts.length === 0) continue;
    changes++;
    const sign = e.change === 'create' ? '+' : e.change === 'prune' ? '-' : '~';
    out.push(`${sign} ${e.vm} (${e.change})`);
    for (const a of acts) out.push(`    ${a.type}: ${a.reason}`);
    if (acts.length === 0 && note) out.push(`    no action: ${note.reason}`);
  }
  if (changes === 0) out.push(mode === 'local' ? 'no changes: the host matches the revision' : 'no changes: the cluster matches dist/');
  return out.join('\n');
}
