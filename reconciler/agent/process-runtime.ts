/**
 * The node agent's process runtime: starts launcher processes detached (own session and
 * process group, output to a log file), so they outlive `virtops up`; finds them again by
 * pid (checked against /proc so a recycled pid is never mistaken for a launcher) or, when
 * the pid was never recorded (killed mid-create), by the VMI uid on their command line.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readdir, readFile, symlink, lstat, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { launcherPaths, parseLauncherArgv, validateLauncherFlags } from '../../launcher/flags.js';
import type { HostDir } from './pod-process.js';

/** `launcher-monitor --cleanup-only <flags>`: the one-shot cleanup after a launcher that died (launcher/monitor/monitor.ts). */
export const CLEANUP_ONLY_FLAG = '--cleanup-only';

export interface StartedProcess {
  pid: number;
  logFile: string;
}

/** Creates the Pod's host directories and the links of nested mounts (idempotent). */
export async function prepareHostDirs(dirs: HostDir[]): Promise<void> {
  for (const d of dirs) await mkdir(d.hostPath, { recursive: true, mode: 0o750 });
  for (const d of dirs) {
    if (!d.linkTo) continue;
    const st = await lstat(d.linkTo).catch(() => null);
    if (st?.isSymbolicLink()) continue;
    if (st) await rm(d.linkTo, { recursive: true, force: true });
    await mkdir(dirname(d.linkTo), { recursive: true });
    await symlink(d.hostPath, d.linkTo);
  }
}

/**
 * Node flags for the one launcher process per VM: none. `--max-semi-space-size=1` (used
 * until 2026-12-05) cost more than it saved: V8 heap flags make node's built-in code cache
 * and the worker's start-up snapshot unusable (~10 ms more CPU before the launcher's socket
 * answers, ~20 ms more for the prepare worker it had then), and a launcher a minute after its first sync
 * had 1.1-1.6 MiB more RSS with the flag than without (BENCHMARKS.md, "launcher start-up").
 */
export const LAUNCHER_NODE_FLAGS: readonly string[] = [];

/** `argv` with LAUNCHER_NODE_FLAGS after the node binary, when it runs node and lacks them. */
export function withLauncherNodeFlags(argv: readonly string[]): string[] {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || !/(^|\/)node(js)?(\d+)?$/.test(cmd)) return [...argv];
  return [cmd, ...LAUNCHER_NODE_FLAGS.filter((f) => !rest.includes(f)), ...rest];
}

export async function startDetached(argv: string[], env: Record<string, string>, opts: { cwd: string; logFile: string }): Promise<StartedProcess> {
  await mkdir(dirname(opts.logFile), { recursive: true });
  const log = await open(opts.logFile, 'a', 0o640);
  try {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { cwd: opts.cwd, env, detached: true, stdio: ['ignore', log.fd, log.fd] });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    // Keep the ChildProcess so Node reaps it if it exits while we run, but do not wait for it.
    child.unref();
    return { pid, logFile: opts.logFile };
  } finally {
    await log.close();
  }
}

/** The process exists, is not a zombie, and (if given) its command line contains `marker`. */
export async function processAlive(pid: number, marker?: string): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3 (after the parenthesised command) is the state; Z = zombie, X = dead.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    if (marker === undefined) return true;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

/** Pids of processes whose argv contains every one of `markers` (e.g. 'launcher-monitor' and the uid) and none of `excluded`. */
export async function findProcesses(markers: string[], excluded: readonly string[] = []): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '');
    if (!cmdline) continue;
    const argv = cmdline.split('\0');
    if (markers.every((m) => argv.includes(m)) && !excluded.some((x) => argv.includes(x)) && (await processAlive(pid))) found.push(pid);
  }
  return found;
}

/** Launcher processes (and their one-shot cleanups) whose argv has an argument under `dir`, with that argv. */
export async function processesUnder(dir: string): Promise<{ pid: number; argv: string[] }[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = (await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '')).split('\0');
    if (argv.some((a) => a.startsWith(prefix)) && (await processAlive(Number(entry)))) found.push({ pid: Number(entry), argv });
  }
  return found;
}

/**
 * SIGTERM to the process group (the launcher process and any helper it runs), then SIGKILL after
 * `graceMs`. Resolves once the process is gone.
 */
export async function stopProcess(pid: number, graceMs: number, marker?: string): Promise<'exited' | 'killed' | 'not-running'> {
  if (!(await processAlive(pid, marker))) return 'not-running';
  signalGroup(pid, 'SIGTERM');
  if (await waitGone(pid, graceMs)) return 'exited';
  signalGroup(pid, 'SIGKILL');
  await waitGone(pid, 10_000);
  return 'killed';
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await processAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !(await processAlive(pid));
}

/**
 * SIGKILL to what is left of the process group `pid` led (helpers a launcher ran), once the
 * leader is gone: a group outlives its leader while any member runs.
 */
export async function reapGroup(pid: number): Promise<void> {
  if (pid === process.pid || (await processAlive(pid))) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // no such group: nothing was left
  }
}

/** A running launcher's argv and environment, from /proc (for records that did not keep them). */
export async function launchOf(pid: number): Promise<{ argv: string[]; env: Record<string, string> } | undefined> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').slice(0, -1);
    const env: Record<string, string> = {};
    for (const kv of (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return argv.length ? { argv, env } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a launcher that is gone left its cleanup undone: a clean exit removes its command
 * socket and its state file (launcher/cleanup.ts); a SIGKILL leaves them. The state file's
 * path is the launcher's own (launcherPaths of the flags it was started with).
 */
export async function cleanupNeeded(argv: readonly string[], socketPath: string): Promise<boolean> {
  const exists = (p: string) => lstat(p).then(() => true, () => false);
  if (await exists(socketPath)) return true;
  let flags: ReturnType<typeof validateLauncherFlags> | undefined;
  try {
    flags = validateLauncherFlags(parseLauncherArgv(argv));
  } catch {
    flags = undefined;
  }
  // Flags that do not parse could not start a launcher either: nothing of it to clean.
  return flags?.ok === true && (await exists(launcherPaths(flags.config).stateFile));
}

/** Runs `argv` to its end (output appended to `logFile`); SIGKILL after `timeoutMs`. */
export async function runToEnd(argv: string[], env: Record<string, string>, opts: { cwd: string; logFile: string; timeoutMs: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  await mkdir(dirname(opts.logFile), { recursive: true });
  const log = await open(opts.logFile, 'a', 0o640);
  try {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { cwd: opts.cwd, env, stdio: ['ignore', log.fd, log.fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    try {
      return await new Promise((resolve) => {
        child.once('error', () => resolve({ code: null, signal: null }));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await log.close();
  }
}

/** The last `lines` lines of a log file (for error messages). */
export async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
