/**
 * Freshness: the committed dist/ must be exactly what the commit's vms/ synthesize, or a
 * reviewer would approve a diff that is not what runs. The check runs `virtops synth --check`
 * inside the revision's worktree (with this project's node_modules linked in, since
 * checkouts carry no dependencies). Exit code 0 = fresh, anything else = stale (or a synth
 * that fails, which is refused just the same).
 */
import { lstat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export interface FreshnessOptions {
  /** argv run in the worktree. Default: defaultFreshnessCommand(distPath). */
  command?: string[];
  /** node_modules linked into the worktree when it has none. Default: this project's. */
  nodeModules?: string;
  timeoutMs?: number;
}

/** This virtops checkout: its CLI runs the check, its node_modules serve the worktree. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROJECT_NODE_MODULES = join(PROJECT_ROOT, 'node_modules');

/**
 * `npx tsx <this checkout>/cli/main.ts synth --check --out <distPath>`, run with the
 * worktree as working directory: synth reads the commit's cdk8s.yaml and runs the commit's
 * vms/ app, so the check compares the commit's dist/ with what the commit's code produces.
 */
export function defaultFreshnessCommand(distPath = 'dist'): string[] {
  return ['npx', 'tsx', join(PROJECT_ROOT, 'cli/main.ts'), 'synth', '--check', '--out', distPath];
}

export type FreshnessResult = { fresh: true } | { fresh: false; errors: string[] };

export async function checkFreshness(worktree: string, distPath: string, opts: FreshnessOptions = {}, signal?: AbortSignal): Promise<FreshnessResult> {
  const link = join(worktree, 'node_modules');
  const exists = await lstat(link).then(() => true, () => false);
  if (!exists) await symlink(opts.nodeModules ?? PROJECT_NODE_MODULES, link, 'dir');
  try {
    return await runCheck(worktree, opts.command ?? defaultFreshnessCommand(distPath), opts, signal);
  } finally {
    // Remove our link before anyone deletes the worktree recursively.
    if (!exists) await unlink(link).catch(() => undefined);
  }
}

async function runCheck(worktree: string, command: string[], opts: FreshnessOptions, signal?: AbortSignal): Promise<FreshnessResult> {
  const [file, ...args] = command;
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
  // A timeout or cancellation says nothing about the commit: fail the check (the source
  // retries on its next trigger) instead of refusing the revision for good.
  if (r.timedOut) throw new Error(`freshness check timed out after ${opts.timeoutMs ?? 300_000} ms: ${[file, ...args].join(' ')}`);
  if (r.isCanceled) throw new Error('freshness check canceled');
  const output = (r.all ?? '').trim().split('\n').slice(-30).join('\n');
  const why = `exit code ${r.exitCode ?? 'none'}${r.signal ? ` (${r.signal})` : ''}`;
  return {
    fresh: false,
    errors: [
      `dist/ is stale or the synth check failed (${[file, ...args].join(' ')}: ${why}): re-run synth and commit dist/, ` +
        `or start the source with --no-freshness-check` + (output ? `\n${output}` : ''),
    ],
  };
}
