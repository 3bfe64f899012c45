/**
 * `virtops launcher-monitor`: wraps the launcher the way virt-launcher-monitor does.
 *
 * It spawns the launcher (same node binary; from the same bundle when cli/bin.js runs one,
 * else the lean TypeScript entry under the same loader, so the CLI is not loaded twice),
 * forwards SIGTERM/SIGINT, and when the launcher dies
 * without cleaning up (non-zero exit, killed) gives the guest its grace period (ACPI
 * shutdown, destroy after --grace-period-seconds), undefines the domain, releases the
 * volumes and removes the socket. The launcher runs in its own process group so the
 * monitor can reap whatever it left running (a helper such as qemu-img or skopeo) after a crash.
 *
 * With `--libvirt-daemon pod` it first starts the container's own libvirt daemon
 * (libvirt-daemon.ts) and stops it last, after the launcher and any cleanup, so the guest's
 * QEMU runs inside the launcher Pod.
 *
 * Exit codes:
 *   0  the launcher exited cleanly (after SIGTERM, or on its own with 0)
 *   1  the launcher failed or was killed; the monitor cleaned up after it
 *   2  bad flags (nothing was started)
 *   3  the launcher failed and cleanup failed too (something may be left; see the log)
 *   4  the launcher could not be spawned
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LauncherConfig } from '../flags.js';
import { isBundled, siblingEntry } from '../bundled.js';

export const MONITOR_EXIT = { clean: 0, launcherFailed: 1, badFlags: 2, cleanupFailed: 3, spawnFailed: 4 } as const;

/**
 * node arguments that run the launcher: from the bundle when the monitor runs from it
 * (no loader), else the lean TypeScript entry with the loader this process was started with.
 */
export function launcherCommand(args: readonly string[]): { command: string; argv: string[] } {
  // A 1 MiB young generation: the launcher allocates little, and V8's default (16 MiB
  // semi-spaces) alone costs ~15-25 MiB of RSS per VM.
  const heap = ['--max-semi-space-size=1'];
  if (isBundled(import.meta.url)) {
    const entry = fileURLToPath(siblingEntry(import.meta.url, '../entry.ts', 'entry'));
    return { command: process.execPath, argv: [...heap, ...process.execArgv, entry, 'launcher', ...args] };
  }
  const entry = fileURLToPath(new URL('../entry.ts', import.meta.url));
  const hasLoader = process.execArgv.some((a) => /tsx/.test(a));
  const loader = hasLoader ? process.execArgv : ['--import', import.meta.resolve('tsx'), ...process.execArgv];
  return { command: process.execPath, argv: [...heap, ...loader, entry, 'launcher', ...args] };
}

export async function runMonitor(config: LauncherConfig, launcherArgs: readonly string[]): Promise<number> {
  const { createLogger } = await import('../logger.js');
  const log = await createLogger('virtops-launcher-monitor', { vmi: `${config.namespace}/${config.name}`, uid: config.uid });
  const { command, argv } = launcherCommand(launcherArgs);

  let daemon: import('./libvirt-daemon.js').RunningDaemon | undefined;
  let daemonStopping = false;
  if (config.libvirtDaemon === 'pod') {
    const { daemonDirs, sessionSocketOf, startSessionDaemon } = await import('./libvirt-daemon.js');
    const dirs = daemonDirs(process.env);
    const socket = sessionSocketOf(config.libvirtUri);
    if ('error' in dirs || socket === undefined) {
      log.fatal({ libvirtUri: config.libvirtUri }, 'error' in dirs ? dirs.error : '--libvirt-uri names no socket= for the pod daemon');
      return MONITOR_EXIT.badFlags;
    }
    try {
      daemon = await startSessionDaemon({ socket, dirs });
    } catch (err) {
      log.fatal({ err }, 'cannot start the libvirt daemon in this container');
      return MONITOR_EXIT.spawnFailed;
    }
    log.info({ libvirtdPid: daemon.pid, socket }, 'libvirt daemon started in this container');
    // Dying under a running launcher: the launcher sees libvirt go and reports it; this says why.
    void daemon.exited.then((e) => daemonStopping || log.error({ code: e.code, signal: e.signal }, 'the libvirt daemon of this container exited'));
  }
  // Beside a real kubelet: the launcher's socket, relayed where the node agent looks (node-socket.ts).
  const publishing = new AbortController();
  let relay: Promise<import('./node-socket.js').NodeSocketRelay | undefined> | undefined;
  const nodeSocketDir = process.env['VIRTOPS_NODE_SOCKET_DIR'];
  if (nodeSocketDir) {
    relay = import('./node-socket.js').then(({ publishNodeSocket, NODE_SOCKET_NAME }) =>
      publishNodeSocket({ dir: nodeSocketDir, name: NODE_SOCKET_NAME, target: launcherSocketOf(config), signal: publishing.signal, log }),
    ).catch((err: unknown) => {
      log.error({ err, dir: nodeSocketDir }, 'cannot publish the launcher socket for the node agent');
      return undefined;
    });
  }
  try {
    return await superviseLauncher(config, command, argv, log);
  } finally {
    publishing.abort();
    await (await relay)?.close().catch(() => undefined);
    daemonStopping = true;
    await daemon?.stop();
  }
}

async function superviseLauncher(config: LauncherConfig, command: string, argv: string[], log: import('pino').Logger): Promise<number> {
  let child: ChildProcess;
  try {
    child = spawn(command, argv, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  } catch (err) {
    log.fatal({ err }, 'cannot spawn the launcher');
    return MONITOR_EXIT.spawnFailed;
  }
  log.info({ launcherPid: child.pid }, 'launcher started');

  let signalled: NodeJS.Signals | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const forward = (sig: NodeJS.Signals) => {
    signalled = sig;
    log.info({ signal: sig }, 'forwarding signal to the launcher');
    child.kill(sig);
    // The launcher gets the grace period plus a margin to stop the guest itself.
    clearTimeout(killTimer);
    killTimer = setTimeout(() => {
      log.warn('launcher did not exit within the grace period; killing it');
      killGroup(child.pid, 'SIGKILL');
    }, (config.gracePeriodSeconds + 15) * 1000);
  };
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(killTimer);
  // Reap the launcher's leftovers (a helper program mid-run) whatever happened.
  killGroup(child.pid, 'SIGKILL');

  if (exit.error) {
    log.fatal({ err: exit.error }, 'cannot spawn the launcher');
    return MONITOR_EXIT.spawnFailed;
  }
  if (exit.code === 0) {
    log.info({ signalled }, 'launcher exited cleanly');
    return MONITOR_EXIT.clean;
  }
  log.error({ code: exit.code, signal: exit.signal }, 'launcher died; cleaning up after it');
  const errors = await cleanup(config, log);
  if (errors.length) {
    log.error({ errors: errors.map((e) => e.message) }, 'cleanup after the launcher failed');
    return MONITOR_EXIT.cleanupFailed;
  }
  log.info('cleaned up after the launcher');
  return MONITOR_EXIT.launcherFailed;
}

/** The launcher's command socket (launcher/flags.ts launcherPaths, without loading the flag table here). */
function launcherSocketOf(config: LauncherConfig): string {
  return join(config.kubevirtShareDir, 'sockets', 'launcher-sock');
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // group already gone
  }
}

/** Loaded only after a crash: the monitor stays small while the launcher runs. */
async function cleanup(config: LauncherConfig, log: import('pino').Logger): Promise<Error[]> {
  const [{ createLauncherDeps }, { cleanupAfterLauncher }] = await Promise.all([import('../wiring.js'), import('../cleanup.js')]);
  let deps: Awaited<ReturnType<typeof createLauncherDeps>>;
  try {
    deps = await createLauncherDeps(config, log);
    await deps.driver.connect({ retry: true, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    return [err instanceof Error ? err : new Error(String(err))];
  }
  try {
    return await cleanupAfterLauncher({ config, driver: deps.driver, volumes: deps.volumes, log });
  } finally {
    await deps.driver.close();
  }
}
