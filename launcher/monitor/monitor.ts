/**
 * `virtops launcher-monitor`: the one process per VM, in the role of virt-launcher-monitor +
 * virt-launcher. It runs the launcher (launcher/main.ts) **in this process** instead of
 * spawning a second Node process (two Node processes cost ~126 MiB RSS per VM, one ~75): the
 * monitor's duties are split between this process and the node agent:
 *
 * - here: signal handling (the launcher's own SIGTERM/SIGINT handler stops the guest within
 *   its grace period; a backstop exits after grace + 15 s), and after the launcher's own
 *   failure (a thrown error, a failed start) the cleanup (cleanupAfterLauncher: grace period,
 *   destroy, undefine, release volumes, remove socket and state) in the same process;
 * - a SIGKILL of this process (or any death it cannot see) is for whoever supervises it. On a
 *   single host and on process-runtime agents that is the node agent (reconciler/agent): it
 *   notices the dead pid, reaps the process group (helpers such as qemu-img or skopeo stay in
 *   it) and runs `virtops launcher-monitor --cleanup-only <same flags>` (runCleanupOnly), the
 *   same cleanup function, retrying until it succeeds. Beside a real kubelet with
 *   `--libvirt-daemon pod`, QEMU and the container's libvirt daemon die with the container
 *   (its cgroup); the node socket dir of a Pod that is gone is the agent's to remove.
 *
 * With `--libvirt-daemon pod` it first starts the container's own libvirt daemon
 * (libvirt-daemon.ts) and stops it last, after the launcher and any cleanup, so the guest's
 * QEMU runs inside the launcher Pod.
 *
 * Exit codes (unchanged from the two-process monitor; synth, the agents and KubeVirt's
 * virt-launcher-monitor contract rely on them):
 *   0  the launcher exited cleanly (after SIGTERM, or on its own with 0); --cleanup-only: clean
 *   1  the launcher failed; this process cleaned up after it
 *   2  bad flags (nothing was started)
 *   3  the launcher failed and cleanup failed too (something may be left; see the log);
 *      --cleanup-only: the cleanup failed (the caller retries)
 *   4  the launcher could not be started (its code failed to load, the pod's libvirt daemon did not start)
 */
import { join } from 'node:path';
import type { LauncherConfig } from '../flags.js';

export const MONITOR_EXIT = { clean: 0, launcherFailed: 1, badFlags: 2, cleanupFailed: 3, spawnFailed: 4 } as const;

/**
 * `launcher-monitor --cleanup-only <flags>`: the cleanup after a launcher process that died
 * without cleaning up (SIGKILL), run by its supervisor with the launcher's own flags.
 */
export async function runCleanupOnly(config: LauncherConfig): Promise<number> {
  const { createLogger } = await import('../logger.js');
  const log = await createLogger('virtops-launcher-cleanup', { vmi: `${config.namespace}/${config.name}`, uid: config.uid });
  const errors = await cleanup(config, log);
  if (errors.length) {
    log.error({ errors: errors.map((e) => e.message) }, 'cleanup after the launcher failed');
    return MONITOR_EXIT.cleanupFailed;
  }
  log.info('cleaned up after the launcher');
  return MONITOR_EXIT.clean;
}

export async function runMonitor(config: LauncherConfig): Promise<number> {
  const { createLogger } = await import('../logger.js');
  const log = await createLogger('virtops-launcher-monitor', { vmi: `${config.namespace}/${config.name}`, uid: config.uid });

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
    return await runLauncherHere(config, log);
  } finally {
    publishing.abort();
    await (await relay)?.close().catch(() => undefined);
    daemonStopping = true;
    await daemon?.stop();
  }
}

async function runLauncherHere(config: LauncherConfig, log: import('pino').Logger): Promise<number> {
  let runLauncher: typeof import('../main.js').runLauncher;
  try {
    ({ runLauncher } = await import('../main.js'));
  } catch (err) {
    log.fatal({ err }, 'cannot load the launcher');
    return MONITOR_EXIT.spawnFailed;
  }
  // Backstop: a launcher whose termination hangs (libvirt calls that never return) is given
  // up on after the grace period plus a margin; its supervisor cleans up after the exit.
  let backstop: NodeJS.Timeout | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (backstop) return;
    log.info({ signal: sig }, 'stopping the launcher');
    backstop = setTimeout(() => {
      log.warn('the launcher did not stop within the grace period; exiting without its cleanup (the node agent runs it)');
      process.exit(MONITOR_EXIT.cleanupFailed);
    }, (config.gracePeriodSeconds + 15) * 1000);
    backstop.unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  log.info({ pid: process.pid }, 'launcher running in this process');

  let code: number;
  try {
    code = await runLauncher(config);
  } catch (err) {
    log.error({ err }, 'the launcher threw');
    code = 1;
  }
  clearTimeout(backstop);
  if (code === 0) {
    log.info('launcher exited cleanly');
    return MONITOR_EXIT.clean;
  }
  log.error({ code }, 'launcher failed; cleaning up after it');
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

/** The cleanup after a failed launcher, loaded only then. */
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
