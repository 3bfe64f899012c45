/**
 * Freshness, the opt-in synth verifier (`--verify-synth`): the committed dist/ must be
 * exactly what the commit's vms/ synthesize, or a reviewer would approve a diff that is not
 * what runs. Proving that means running the commit's code, so it is off by default (dist/ is
 * data; the repository's own CI runs `virtops synth --check`) and, when asked for, runs only
 * in the sandbox of sandbox.ts: as an unprivileged uid, no network, read-only, limited, with
 * a clean environment. Exit code 0 = fresh, anything else = refused.
 *
 * The check synthesizes with the virtops version the commit's package-lock.json pins, not
 * with the reconciler's own: the reconciler and the repository upgrade apart. That version
 * (with the rest of the lockfile) is installed once per lockfile into
 * `~/.cache/virtops/verifier/<lockfile sha256>` by `npm ci --ignore-scripts`, outside the
 * sandbox: no lifecycle script of any package runs, the commit's .npmrc is not used, and
 * only registry or tarball sources with an integrity hash are accepted (pinnedInstall). A
 * commit whose lockfile pins nothing installable is refused with the version and npm's error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, cp, lchown, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dependencyLinks, resolvedLimits, sandboxArgv, sandboxNodeModules, sandboxSynthCommand, type SandboxLimits } from './sandbox.js';

export interface FreshnessOptions {
  /** argv run inside the sandbox, cwd /src (the commit), the pinned install at /virtops. Default: sandboxSynthCommand. */
  command?: string[];
  /**
   * Dependencies to use instead of installing the ones the commit's lockfile pins (a host
   * that provides them itself; the sandbox tests). `virtops` falls back to this checkout.
   */
  nodeModules?: string;
  /** Where pinned installs are cached, one dir per lockfile hash. Default ~/.cache/virtops/verifier. */
  installRoot?: string;
  /** Wall-clock limit of one `npm ci`. Default 10 min. */
  installTimeoutMs?: number;
  /** Wall-clock limit; the whole sandbox is killed. Default 300 s. */
  timeoutMs?: number;
  /** uid/gid and resource limits of the sandbox. */
  sandbox?: SandboxLimits;
  /** Where the per-check scratch dirs go. Default: os.tmpdir(). */
  scratchRoot?: string;
}

/** This virtops checkout or package (the fallback for `virtops` with an explicit nodeModules). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROJECT_NODE_MODULES = join(PROJECT_ROOT, 'node_modules');
export const DEFAULT_INSTALL_ROOT = join(homedir(), '.cache', 'virtops', 'verifier');

/** The check's output kept for the refusal (and all that is buffered: a commit cannot flood memory). */
const MAX_OUTPUT = 1024 * 1024;
/** Pinned installs not used for this long are removed when another one is made. */
const INSTALL_PRUNE_AFTER_MS = 30 * 24 * 3600 * 1000;

export type FreshnessResult = { fresh: true } | { fresh: false; errors: string[] };

export async function checkFreshness(worktree: string, distPath: string, opts: FreshnessOptions = {}, signal?: AbortSignal): Promise<FreshnessResult> {
  const limits = resolvedLimits(opts.sandbox);
  let deps: { project: string; nodeModules: string };
  if (opts.nodeModules !== undefined) {
    deps = { project: PROJECT_ROOT, nodeModules: opts.nodeModules };
  } else {
    const installed = await installPinned(worktree, opts, signal);
    if ('errors' in installed) return { fresh: false, errors: installed.errors };
    // The install is /virtops in the sandbox; its node_modules serves the commit.
    deps = { project: installed.root, nodeModules: join(installed.root, 'node_modules') };
  }
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
    const layout = { src, ...deps, execPath: process.execPath };
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

/** What the commit's lockfile pins, or why the verifier will not install it. Pure. */
export type PinnedVirtops = { ok: true; version: string; resolved: string | undefined } | { ok: false; problem: string };

const FIX_LOCK = 'run `npm install` in the repository and commit package.json and package-lock.json';
const DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

/**
 * Reads a package-lock.json (v2/v3) for the verifier: the virtops version it pins, after
 * checking that every package comes from a source `npm ci` may fetch as root without
 * running anything or reaching beyond the registry: a tarball under one of `registries`
 * (npm's configured registry) or a local .tgz, each with an integrity hash (a git or
 * directory dependency, another host, or a tarball without integrity would have the install
 * clone, link, fetch or copy what the commit names). Pure.
 */
export function pinnedVirtops(lockText: string | undefined, registries: readonly string[] = [DEFAULT_REGISTRY]): PinnedVirtops {
  if (lockText === undefined) {
    return { ok: false, problem: `the commit has no package-lock.json, and the verifier synthesizes with the virtops version the lockfile pins: ${FIX_LOCK}` };
  }
  let lock: { lockfileVersion?: unknown; packages?: Record<string, { version?: string; resolved?: string; integrity?: string; link?: boolean; inBundle?: boolean }> };
  try {
    lock = JSON.parse(lockText) as typeof lock;
  } catch (err) {
    return { ok: false, problem: `package-lock.json is not valid JSON (${(err as Error).message}): ${FIX_LOCK}` };
  }
  if (typeof lock !== 'object' || lock === null || typeof lock.packages !== 'object' || lock.packages === null) {
    return { ok: false, problem: `package-lock.json has no "packages" (lockfileVersion ${String(lock?.lockfileVersion)}; npm 7 or newer writes version 2 or 3): ${FIX_LOCK}` };
  }
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.inBundle) continue;
    const name = key.replace(/^.*node_modules\//, '');
    if (entry.link) return { ok: false, problem: `package-lock.json links ${name} to a directory (${key}); the verifier installs only registry packages and .tgz tarballs: depend on a published version or a packed tarball` };
    if (entry.resolved === undefined) continue; // npm resolves it from the registry by version
    const fromRegistry = registries.some((r) => entry.resolved!.startsWith(r.endsWith('/') ? r : `${r}/`));
    if (!fromRegistry && !/^file:.*\.(tgz|tar\.gz)$/.test(entry.resolved)) {
      return { ok: false, problem: `package-lock.json resolves ${name} from ${entry.resolved.slice(0, 200)}; the verifier installs only from npm's registry (${registries.join(', ')}) and .tgz tarballs (no git or directory dependencies, no other hosts)` };
    }
    if (!entry.integrity) return { ok: false, problem: `package-lock.json has no integrity hash for ${name} (${entry.resolved.slice(0, 200)}): ${FIX_LOCK}` };
  }
  const virtops = lock.packages['node_modules/virtops'];
  if (!virtops?.version) {
    return { ok: false, problem: 'package-lock.json does not pin virtops, and the verifier synthesizes with the version the lockfile pins: add it (`npm install virtops@<version>`) and commit package.json and package-lock.json' };
  }
  return { ok: true, version: virtops.version, resolved: virtops.resolved };
}

/** The cache dir of a lockfile's install. Pure. */
export function installDirFor(installRoot: string, lockText: string): string {
  return join(installRoot, createHash('sha256').update(lockText).digest('hex').slice(0, 32));
}

/**
 * The install of the commit's package.json + package-lock.json (made once per lockfile; the
 * dir appears by an atomic rename, so a dir that exists is complete), or refusal reasons.
 */
async function installPinned(worktree: string, opts: FreshnessOptions, signal?: AbortSignal): Promise<{ root: string } | { errors: string[] }> {
  const read = (f: string) => readFile(join(worktree, f), 'utf8').catch(() => undefined);
  const [lockText, pkgText] = [await read('package-lock.json'), await read('package.json')];
  // Only the environment npm needs (where its cache and config are, which registry):
  // nothing else of the reconciler's. --ignore-scripts: no package's code runs here.
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? homedir() };
  for (const [k, v] of Object.entries(process.env)) if (/^npm_config_/i.test(k) && v !== undefined) env[k] = v;
  const registry = await execa('npm', ['config', 'get', 'registry'], { env, extendEnv: false, reject: false, stdin: 'ignore' });
  const pinned = pinnedVirtops(lockText, registry.exitCode === 0 && /^https?:\/\//.test(registry.stdout.trim()) ? [registry.stdout.trim()] : [DEFAULT_REGISTRY]);
  if (!pinned.ok) return { errors: [`synth verifier: ${pinned.problem}`] };
  if (pkgText === undefined) return { errors: [`synth verifier: the commit has a package-lock.json but no package.json: ${FIX_LOCK}`] };
  const installRoot = opts.installRoot ?? DEFAULT_INSTALL_ROOT;
  const dir = installDirFor(installRoot, lockText as string);
  if (await stat(join(dir, 'node_modules', 'virtops', 'package.json')).then(() => true, () => false)) {
    const now = new Date();
    await utimes(dir, now, now).catch(() => undefined); // in use: spared by pruning
    return { root: dir };
  }
  await mkdir(installRoot, { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(tmp, { mode: 0o755 });
    await writeFile(join(tmp, 'package.json'), pkgText);
    await writeFile(join(tmp, 'package-lock.json'), lockText as string);
    const timeoutMs = opts.installTimeoutMs ?? 600_000;
    const r = await execa('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: tmp, env, extendEnv: false, reject: false, all: true, stdin: 'ignore', timeout: timeoutMs, maxBuffer: MAX_OUTPUT,
      ...(signal ? { cancelSignal: signal } : {}),
    });
    if (r.isCanceled) throw new Error('synth verifier canceled');
    if (r.exitCode !== 0 || r.failed) {
      const why = r.timedOut ? `timed out after ${timeoutMs} ms` : (r.all ?? '').trim().split('\n').filter((l) => !/^npm (error|ERR!) (A complete log|$)/.test(l)).slice(-12).join('\n');
      return {
        errors: [
          `synth verifier: cannot install virtops ${pinned.version} as the commit's package-lock.json pins it (${pinned.resolved ?? 'from the registry'}): `
            + `npm ci failed${why ? `:\n${why}` : ''}\nFix: pin a virtops version this reconciler's host can install (a published version, or an absolute file: path to a tarball it has), or stop --verify-synth`,
        ],
      };
    }
    await chmod(tmp, 0o755);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another check installed the same lockfile first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await pruneInstalls(installRoot, dir);
    return { root: dir };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function pruneInstalls(installRoot: string, keep: string): Promise<void> {
  for (const name of await readdir(installRoot).catch(() => [] as string[])) {
    const p = join(installRoot, name);
    if (p === keep || !/^[0-9a-f]{32}$/.test(name)) continue;
    const s = await stat(p).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > INSTALL_PRUNE_AFTER_MS) await rm(p, { recursive: true, force: true }).catch(() => undefined);
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
