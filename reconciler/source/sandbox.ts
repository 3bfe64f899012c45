/**
 * The synth verifier's sandbox: runs a command from a pushed commit without giving that
 * commit anything of the reconciler's. Built from well-kept tools, not our own code:
 *
 *   prlimit (CPU s, data segment, file size, open files, processes)
 *     └─ bwrap (as root: new mount, network, pid, ipc, uts namespaces; a read-only root
 *        holding only /usr, a few /etc files, the install of the virtops version the commit's
 *        lockfile pins (freshness.ts) and the commit's copy (its node_modules linked to that
 *        install's); one writable, size-limited tmpfs; a clean environment)
 *          └─ setpriv (to the sandbox uid/gid, no groups, no capabilities, no_new_privs)
 *               └─ node … synth --check
 *
 * bwrap runs as root (not in a user namespace) so that the identity change is a real one:
 * inside a user namespace root would map back to the reconciler's uid 0 and could read its
 * 0600 files. The state dir, /root, /tmp and the network are simply not there.
 * argv building is pure (sandboxArgv) so it is unit-tested; running it is in freshness.ts.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

export interface SandboxLimits {
  /** Identity the command runs as. Default 65534/65534 (nobody/nogroup). Never 0. */
  uid?: number;
  gid?: number;
  /** RLIMIT_DATA (heap and private writable mappings). Default 2 GiB. RLIMIT_AS would
   *  break node: V8 reserves large PROT_NONE regions for WebAssembly. */
  memoryBytes?: number;
  /** RLIMIT_CPU in seconds. Default 120. */
  cpuSeconds?: number;
  /** RLIMIT_FSIZE: largest file the command may write. Default 256 MiB. */
  fileSizeBytes?: number;
  /** RLIMIT_NPROC (counted per uid, host-wide). Default 256. */
  processes?: number;
  /** Size of the writable tmpfs at /scratch (memory, not the host's disk). Default 512 MiB. */
  scratchBytes?: number;
}

/** Host paths the sandbox is built from. */
export interface SandboxLayout {
  /** The commit's copy (read-only at /src, the working directory). */
  src: string;
  /** The pinned install (its package.json, lockfile, node_modules), or this virtops checkout: read-only at /virtops. */
  project: string;
  /**
   * Dependencies for the commit: the project's node_modules (already inside /virtops), or
   * another directory, mounted read-only at /deps. The commit's /src/node_modules holds
   * symlinks into it (see dependencyLinks).
   */
  nodeModules: string;
  /** The node binary (process.execPath); its install dir is mounted when outside /usr. */
  execPath: string;
}

export const SANDBOX_SRC = '/src';
export const SANDBOX_SCRATCH = '/scratch';
export const SANDBOX_PROJECT = '/virtops';
export const SANDBOX_DEPS = '/deps';

/** Where node_modules appears inside the sandbox. Pure. */
export function sandboxNodeModules(layout: Pick<SandboxLayout, 'project' | 'nodeModules'>): string {
  return layout.nodeModules.replace(/\/+$/, '') === join(layout.project, 'node_modules') ? `${SANDBOX_PROJECT}/node_modules` : SANDBOX_DEPS;
}

/**
 * The commit's node_modules: one symlink per package into the sandbox's dependencies, plus,
 * when they hold no virtops, `virtops` → /virtops (a checkout given as the project).
 * Symlinks, not a second mount: node resolves them to one real path, so the commit and
 * virtops share one copy of cdk8s and constructs (two copies break `instanceof Construct`).
 * Pure: entries of the dependency dir in, [name, target] out.
 */
export function dependencyLinks(entries: string[], depsInSandbox: string): Array<[string, string]> {
  const links: Array<[string, string]> = entries.filter((e) => e !== '.package-lock.json').map((e) => [e, `${depsInSandbox}/${e}`]);
  if (!entries.includes('virtops')) links.push(['virtops', SANDBOX_PROJECT]);
  return links;
}

/** Public files node and npx read; secrets (/etc/shadow, keys) are not among them. */
const ETC_FILES = ['/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/ld.so.cache', '/etc/localtime', '/etc/ssl'];
/** Merged-/usr symlinks on Debian 12; bound as directories on hosts without them. */
const ROOT_LINKS: Array<[string, string]> = [['/bin', 'usr/bin'], ['/sbin', 'usr/sbin'], ['/lib', 'usr/lib'], ['/lib64', 'usr/lib64']];

export function resolvedLimits(l: SandboxLimits = {}): Required<SandboxLimits> {
  return {
    uid: l.uid ?? 65534,
    gid: l.gid ?? 65534,
    memoryBytes: l.memoryBytes ?? 2 * 1024 ** 3,
    cpuSeconds: l.cpuSeconds ?? 120,
    fileSizeBytes: l.fileSizeBytes ?? 256 * 1024 ** 2,
    processes: l.processes ?? 256,
    scratchBytes: l.scratchBytes ?? 512 * 1024 ** 2,
  };
}

/** Problems with the limits, each naming the field and the fix. Pure. */
export function sandboxLimitProblems(l: SandboxLimits = {}): string[] {
  const r = resolvedLimits(l);
  const out: string[] = [];
  const positive = (name: keyof SandboxLimits, v: number) => {
    if (!Number.isInteger(v) || v <= 0) out.push(`sandbox ${name} must be a positive whole number, got ${v}`);
  };
  if (!Number.isInteger(r.uid) || r.uid <= 0) out.push(`sandbox uid must not be 0 (root) or negative, got ${r.uid}: use an unprivileged uid such as 65534 (nobody)`);
  if (!Number.isInteger(r.gid) || r.gid <= 0) out.push(`sandbox gid must not be 0 (root) or negative, got ${r.gid}: use an unprivileged gid such as 65534 (nogroup)`);
  positive('memoryBytes', r.memoryBytes);
  positive('cpuSeconds', r.cpuSeconds);
  positive('fileSizeBytes', r.fileSizeBytes);
  positive('processes', r.processes);
  positive('scratchBytes', r.scratchBytes);
  return out;
}

/**
 * The full argv (prlimit first) that runs `command` (paths as seen inside: /src, /virtops,
 * /scratch) in the sandbox. `isSymlink` tells how the host lays out /bin, /lib…; injected
 * so this stays pure.
 */
export function sandboxArgv(layout: SandboxLayout, command: string[], limits: SandboxLimits = {}, isSymlink: (p: string) => boolean = () => true): string[] {
  if (command.length === 0) throw new Error('sandbox command is empty');
  const problems = sandboxLimitProblems(limits);
  if (problems.length) throw new Error(problems.join('; '));
  const l = resolvedLimits(limits);
  const nodeDir = dirname(dirname(layout.execPath)); // /usr for /usr/bin/node, <prefix> for <prefix>/bin/node
  const binds: string[] = ['--ro-bind', '/usr', '/usr'];
  for (const [path, target] of ROOT_LINKS) binds.push(...(isSymlink(path) ? ['--symlink', target, path] : ['--ro-bind-try', path, path]));
  if (nodeDir !== '/usr' && nodeDir !== '/') binds.push('--ro-bind', nodeDir, nodeDir);
  binds.push('--perms', '0755', '--dir', '/etc');
  for (const f of ETC_FILES) binds.push('--ro-bind-try', f, f);
  binds.push(
    '--ro-bind', layout.project, SANDBOX_PROJECT,
    '--ro-bind', layout.src, SANDBOX_SRC,
    ...(sandboxNodeModules(layout) === SANDBOX_DEPS ? ['--ro-bind', layout.nodeModules, SANDBOX_DEPS] : []),
    // The only writable place: a tmpfs private to the sandbox, so a commit cannot fill the
    // host's disk or leave anything behind; 1777 because it is created before the uid drop.
    '--perms', '1777', '--size', String(l.scratchBytes), '--tmpfs', SANDBOX_SCRATCH,
    '--proc', '/proc',
    '--dev', '/dev',
  );
  const path = [`${SANDBOX_SRC}/node_modules/.bin`, nodeDir === '/usr' || nodeDir === '/' ? undefined : join(nodeDir, 'bin'), '/usr/local/bin', '/usr/bin', '/bin'].filter(Boolean).join(delimiter);
  return [
    'prlimit',
    `--cpu=${l.cpuSeconds}`,
    `--data=${l.memoryBytes}`,
    `--fsize=${l.fileSizeBytes}`,
    `--nproc=${l.processes}`,
    '--nofile=1024',
    '--core=0',
    '--',
    'bwrap',
    // No --unshare-user: see the header. Everything else is new.
    '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    '--die-with-parent', '--new-session',
    '--clearenv',
    '--setenv', 'PATH', path,
    '--setenv', 'HOME', SANDBOX_SCRATCH,
    '--setenv', 'TMPDIR', SANDBOX_SCRATCH,
    '--setenv', 'CI', '1',
    '--setenv', 'NO_COLOR', '1',
    '--setenv', 'npm_config_offline', 'true', // npx must not try the registry (there is no network anyway)
    '--setenv', 'npm_config_update_notifier', 'false',
    ...binds,
    '--chdir', SANDBOX_SRC,
    // Only for setpriv's setresuid/setgroups below; it drops them (and the bounding set) before exec.
    '--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID',
    '--remount-ro', '/',
    '--',
    'setpriv', `--reuid=${l.uid}`, `--regid=${l.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs',
    '--',
    ...command,
  ];
}

/**
 * The default check inside the sandbox: the CLI of the virtops the commit resolves (the
 * version its lockfile pins, installed at /virtops), on the commit in /src.
 */
export function sandboxSynthCommand(execPath: string, distPath = 'dist'): string[] {
  return [execPath, `${SANDBOX_SRC}/node_modules/virtops/cli/bin.js`, 'synth', '--check', '--out', distPath];
}

/**
 * Why the sandbox cannot run on this host, or undefined. Checked when the source starts, so
 * `--verify-synth` fails at once with the fix instead of refusing every commit later.
 */
export function sandboxUnavailable(env: { uid: number; pathEnv: string } = { uid: process.getuid?.() ?? -1, pathEnv: process.env['PATH'] ?? '' }): string | undefined {
  if (env.uid !== 0) {
    return 'the synth verifier (--verify-synth) must start as root so it can drop to an unprivileged uid (it never runs repository code as the reconciler\'s own user); '
      + 'run the reconciler as root, or leave --verify-synth off and let the repository\'s CI run `virtops synth --check`';
  }
  const missing = ['bwrap', 'prlimit', 'setpriv'].filter((tool) => !onPath(tool, env.pathEnv));
  if (missing.length) {
    return `the synth verifier (--verify-synth) needs ${missing.join(', ')} on PATH: install the Debian packages bubblewrap and util-linux (scripts/setup-host.sh does), `
      + 'or leave --verify-synth off and let the repository\'s CI run `virtops synth --check`';
  }
  return undefined;
}

function onPath(tool: string, pathEnv: string): boolean {
  return pathEnv.split(delimiter).filter(Boolean).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
