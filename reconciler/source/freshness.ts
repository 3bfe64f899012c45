/**
 * Freshness: the committed dist/ must be exactly what the commit's vms/ synthesize, or a
 * reviewer would approve a diff that is not what runs. The check runs the repository's own
 * `synth --check` inside the revision's worktree (with this project's node_modules linked
 * in, since checkouts carry no dependencies). Exit code 0 = fresh, anything else = stale.
 */
import { lstat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface FreshnessOptions {
  /** argv run in the worktree. Default: `npx tsx cli/main.ts synth --check`. */
  command?: string[];
  /** node_modules linked into the worktree when it has none. Default: this project's. */
  nodeModules?: string;
  timeoutMs?: number;
}

export const DEFAULT_FRESHNESS_COMMAND: readonly string[] = ['npx', 'tsx', 'cli/main.ts', 'synth', '--check'];

export const PROJECT_NODE_MODULES = new URL('../../node_modules', import.meta.url).pathname;

export type FreshnessResult = { fresh: true } | { fresh: false; errors: string[] };

export async function checkFreshness(worktree: string, opts: FreshnessOptions = {}, signal?: AbortSignal): Promise<FreshnessResult> {
  const link = join(worktree, 'node_modules');
  const exists = await lstat(link).then(() => true, () => false);
  if (!exists) await symlink(opts.nodeModules ?? PROJECT_NODE_MODULES, link, 'dir');
  try {
    return await runCheck(worktree, opts, signal);
  } finally {
    // Remove our link before anyone deletes the worktree recursively.
    if (!exists) await unlink(link).catch(() => undefined);
  }
}

async function runCheck(worktree: string, opts: FreshnessOptions, signal?: AbortSignal): Promise<FreshnessResult> {
  const [file, ...args] = opts.command ?? DEFAULT_FRESHNESS_COMMAND;
  if (!file) throw new Error('freshness command is empty: pass a command such as ["npx","tsx","cli/main.ts","synth","--check"]');
  const r = await execa(file, args, {
    cwd: worktree,
    reject: false,
    all: true,
    timeout: opts.timeoutMs ?? 300_000,
    ...(signal ? { cancelSignal: signal } : {}),
    env: { CI: '1', NO_COLOR: '1' },
  });
  if (r.exitCode === 0 && !r.failed) return { fresh: true };
  const output = (r.all ?? '').trim().split('\n').slice(-30).join('\n');
  const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? 300_000} ms` : r.isCanceled ? 'canceled' : `exit code ${r.exitCode ?? 'none'}`;
  return {
    fresh: false,
    errors: [
      `dist/ is stale or the synth check failed (${[file, ...args].join(' ')}: ${why}): re-run synth and commit dist/, ` +
        `or start the source with --no-freshness-check` + (output ? `\n${output}` : ''),
    ],
  };
}
