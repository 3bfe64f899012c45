import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Control-plane processes are started detached (own process group, not tied to the caller's
 * event loop) so `virtops testenv up` can exit and a test worker can restart the API server
 * without the restarted process dying with the worker. Pid files are the source of truth:
 * stopping reads them, checks the pid still belongs to this testenv, then signals it.
 */
export interface SpawnSpec {
  readonly binary: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly pidFile: string;
  /** Default: this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
}

export function spawnDetached(spec: SpawnSpec): number {
  const log = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.binary, [...spec.args], { detached: true, stdio: ['ignore', log, log], ...(spec.env ? { env: spec.env } : {}) });
    if (child.pid === undefined) throw new Error(`could not start ${spec.binary} (see ${spec.logFile})`);
    // Reap it if it exits while we are still around (else it lingers as a zombie).
    child.on('error', () => {});
    child.unref();
    writeFileSync(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

export function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/**
 * Alive and ours: the process exists, is not a zombie, and its command line mentions
 * `marker` (the testenv dir), so a recycled pid of an unrelated process is never signalled.
 */
export function isOurs(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/** The pid exists and has not exited (a zombie has exited: it only waits for its reaper). */
/** Those of `names` whose pid file (`pidFile(name)`) names a live process carrying `marker`. */
export function liveByPidFile<T>(names: readonly T[], pidFile: (name: T) => string, marker: string): T[] {
  return names.filter((n) => {
    const pid = readPid(pidFile(n));
    return pid !== undefined && isOurs(pid, marker);
  });
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM, then SIGKILL after `graceMs` (or SIGKILL at once); resolves once the process is
 * gone. Removes the pid file.
 */
export async function stopProcess(pidFile: string, marker: string, o: { graceMs?: number; signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
  const graceMs = o.signal === 'SIGKILL' ? 0 : (o.graceMs ?? 10_000);
  const pid = readPid(pidFile);
  if (pid !== undefined && isOurs(pid, marker)) {
    signal(pid, o.signal ?? 'SIGTERM');
    const deadline = Date.now() + graceMs;
    // Identity was checked once; from here on watch the pid itself (an exiting process
    // loses its command line before it turns into a zombie).
    while (isAlive(pid) && Date.now() < deadline) await sleep(50);
    if (isAlive(pid)) {
      signal(pid, 'SIGKILL');
      const killDeadline = Date.now() + 5_000;
      while (isAlive(pid) && Date.now() < killDeadline) await sleep(20);
      if (isAlive(pid)) throw new Error(`process ${pid} (${pidFile}) survived SIGKILL`);
    }
  }
  rmSync(pidFile, { force: true });
}

/** Synchronous last resort for process 'exit' hooks: SIGKILL without waiting. */
export function killNow(pidFile: string, marker: string): void {
  const pid = readPid(pidFile);
  if (pid !== undefined && isOurs(pid, marker)) signal(pid, 'SIGKILL');
  rmSync(pidFile, { force: true });
}

/** The last lines of a log file, for startup errors. */
export function tailOf(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Leave no process behind: a set of testenv dirs (`add` when started, `delete` when stopped);
 * when this Node process exits, or is ended by SIGINT/SIGTERM/SIGHUP, `killDir` runs for
 * every dir still in the set (synchronously).
 */
export function killOnExit(killDir: (dir: string) => void): { add(dir: string): void; delete(dir: string): void } {
  const dirs = new Set<string>();
  exitKills.add(() => {
    for (const d of dirs) killDir(d);
  });
  return {
    add: (dir) => {
      dirs.add(dir);
      installExitHandlers();
    },
    delete: (dir) => void dirs.delete(dir),
  };
}

const exitKills = new Set<() => void>();
let exitHandlersInstalled = false;

/**
 * One set of handlers for every killOnExit. A signal ends Node without 'exit' unless someone
 * listens, so they listen, and keep the default behaviour (re-raise) when nobody else (e.g.
 * vitest) handles the signal.
 */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  const killAll = () => {
    for (const kill of exitKills) kill();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}
