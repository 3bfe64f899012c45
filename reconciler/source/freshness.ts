/**
 * Freshness, the opt-in synth verifier (`--verify-synth`): the committed dist/ must be
 * exactly what the commit's vms/ synthesize, or a reviewer would approve a diff that is not
 * what runs. Proving that means running the commit's code, so it is off by default (dist/ is
 * data; the repository's own CI runs `virtops synth --check`) and, when asked for, runs only
 * in the sandbox of sandbox.ts: as an unprivileged uid, no network, read-only, limited, with
 * a clean environment. Exit code 0 = fresh, anything else = refused.
 */
import { cp, lchown, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dependencyLinks, resolvedLimits, sandboxArgv, sandboxNodeModules, sandboxSynthCommand, type SandboxLimits } from './sandbox.js';

export interface FreshnessOptions {
  /** argv run inside the sandbox, cwd /src (the commit), this checkout at /virtops. Default: sandboxSynthCommand. */
  command?: string[];
  /** Dependencies the commit resolves through /src/node_modules (symlinks). Default: this project's. */
  nodeModules?: string;
  /** Wall-clock limit; the whole sandbox is killed. Default 300 s. */
  timeoutMs?: number;
  /** uid/gid and resource limits of the sandbox. */
  sandbox?: SandboxLimits;
  /** Where the per-check scratch dirs go. Default: os.tmpdir(). */
  scratchRoot?: string;
}

/** This virtops checkout: its CLI runs the check, its node_modules serve the commit. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROJECT_NODE_MODULES = join(PROJECT_ROOT, 'node_modules');

/** The check's output kept for the refusal (and all that is buffered: a commit cannot flood memory). */
const MAX_OUTPUT = 1024 * 1024;

export type FreshnessResult = { fresh: true } | { fresh: false; errors: string[] };

export async function checkFreshness(worktree: string, distPath: string, opts: FreshnessOptions = {}, signal?: AbortSignal): Promise<FreshnessResult> {
  const limits = resolvedLimits(opts.sandbox);
  // A private copy the sandbox uid can read: the worktree may sit in a root-only state dir,
  // and the commit's own .git and node_modules are not used.
  const root = await mkdtemp(join(opts.scratchRoot ?? tmpdir(), 'virtops-verify-'));
  try {
    const src = join(root, 'src');
    await cp(worktree, src, {
      recursive: true,
      verbatimSymlinks: true, // a symlink in the commit stays a symlink, resolved inside the sandbox
      filter: (from) => !/[/\\](\.git|node_modules)$/.test(from.slice(worktree.length)),
    });
    const layout = { src, project: PROJECT_ROOT, nodeModules: opts.nodeModules ?? PROJECT_NODE_MODULES, execPath: process.execPath };
    await mkdir(join(src, 'node_modules'));
    for (const [name, target] of dependencyLinks(await readdir(layout.nodeModules), sandboxNodeModules(layout))) {
      await symlink(target, join(src, 'node_modules', name));
    }
    await chownTree(src, limits.uid, limits.gid);
    const command = opts.command ?? sandboxSynthCommand(process.execPath, distPath);
    const argv = sandboxArgv(layout, command, limits, (p) => lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ?? false);
    return await runSandboxed(argv, command, opts, signal);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) await lchown(join(e.parentPath, e.name), uid, gid);
}

async function runSandboxed(argv: string[], command: string[], opts: FreshnessOptions, signal?: AbortSignal): Promise<FreshnessResult> {
  const [file, ...args] = argv as [string, ...string[]];
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const shown = command.join(' ');
  const r = await execa(file, args, {
    reject: false,
    all: true,
    stdin: 'ignore',
    maxBuffer: MAX_OUTPUT,
    timeout: timeoutMs,
    // SIGKILL to bwrap: --die-with-parent kills the sandbox's pid 1, and with it its whole pid
    // namespace (every process of the check, however it forked or setsid'd).
    killSignal: 'SIGKILL',
    ...(signal ? { cancelSignal: signal } : {}),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    extendEnv: false, // nothing of the reconciler's environment (tokens, kubeconfig paths) reaches the sandbox
  });
  if (r.exitCode === 0 && !r.failed) return { fresh: true };
  const output = (r.all ?? '').trim();
  // A timeout, a cancellation or a sandbox that could not be built says nothing about the
  // commit: fail the check (the source retries on its next trigger) instead of refusing it.
  if (r.timedOut) throw new Error(`synth verifier timed out after ${timeoutMs} ms in the sandbox: ${shown}`);
  if (r.isCanceled) throw new Error('synth verifier canceled');
  if (/^(bwrap|prlimit|setpriv): /m.test(output) && !/^\s*at /m.test(output)) {
    throw new Error(`synth verifier sandbox could not start (${file}): ${output.split('\n').slice(-5).join(' | ')}`);
  }
  const tail = output.split('\n').slice(-30).join('\n');
  const why = r.isMaxBuffer ? `killed: printed more than ${MAX_OUTPUT} bytes` : r.signal ? `killed by ${r.signal} (a sandbox limit: CPU ${resolvedLimits(opts.sandbox).cpuSeconds} s, memory, file size)` : `exit code ${r.exitCode ?? 'none'}`;
  return {
    fresh: false,
    errors: [
      `dist/ is stale or the synth check failed in the verifier sandbox (${shown}: ${why}): run \`npx virtops synth\` and commit dist/ `
        + '(the repository\'s CI should run `npx virtops synth --check`), or stop the reconciler\'s --verify-synth to treat dist/ as data'
        + (tail ? `\n${tail}` : ''),
    ],
  };
}
