/**
 * The node agent's process runtime: starts launcher processes detached (own session and
 * process group, output to a log file), so they outlive `virtops up`; finds them again by
 * pid (checked against /proc so a recycled pid is never mistaken for a launcher) or, when
 * the pid was never recorded (killed mid-create), by the VMI uid on their command line.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readdir, readFile, symlink, lstat, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { HostDir } from './pod-process.js';

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

/** Pids of processes whose argv contains every one of `markers` (e.g. 'launcher-monitor' and the uid). */
export async function findProcesses(markers: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '');
    if (!cmdline) continue;
    const argv = cmdline.split('\0');
    if (markers.every((m) => argv.includes(m)) && (await processAlive(pid))) found.push(pid);
  }
  return found;
}

/** Launcher processes (monitors and launchers) whose argv has an argument under `dir`, with that argv. */
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
 * SIGTERM to the process group (the launcher monitor and its launcher), then SIGKILL after
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

/** The last `lines` lines of a log file (for error messages). */
export async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
