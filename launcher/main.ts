/**
 * `virtops launcher`: the per-VMI process. Serves the command socket at once (so health
 * checks and info work while libvirt is still down), connects to libvirt with backoff,
 * and on SIGTERM/SIGINT stops the domain within the grace period and removes every trace.
 *
 * Exit codes: 0 terminated cleanly; 1 failed (the monitor cleans up after it).
 */
import type { LauncherConfig } from './flags.js';
import { launcherPaths } from './flags.js';

export async function runLauncher(config: LauncherConfig): Promise<number> {
  // First of all: the first sync waits for the worker's validator (from source, compiling
  // the schema costs ~250 ms of CPU; the bundle loads precompiled code), and the node
  // agent sends that sync as soon as the socket is up.
  const { PrepareWorker } = await import('./prepare.js');
  const prepare = new PrepareWorker();
  let prepareError: unknown;
  try {
    prepare.warm();
  } catch (err) {
    prepareError = err;
  }
  const [{ createLogger }, { Launcher }, { startCommandServer }, { createLauncherDeps }] = await Promise.all([
    import('./logger.js'),
    import('./launcher.js'),
    import('./server/server.js'),
    import('./wiring.js'),
  ]);
  const log = await createLogger('virtops-launcher', { vmi: `${config.namespace}/${config.name}`, uid: config.uid });
  if (prepareError) log.warn({ err: prepareError }, 'prepare worker unavailable; validating and converting in-process');
  prepare.onFailure = (err) => log.warn({ err }, 'prepare worker died; validating and converting in-process');
  const deps = await createLauncherDeps(config, log, { prepare });
  const launcher = new Launcher(config, deps);
  const paths = launcherPaths(config);

  let server: Awaited<ReturnType<typeof startCommandServer>>;
  try {
    server = await startCommandServer(launcher, paths.socket, log);
  } catch (err) {
    log.fatal({ err, socket: paths.socket }, `cannot serve the command socket at ${paths.socket}; check --kubevirt-share-dir`);
    await deps.driver.close();
    return 1;
  }
  log.info({ socket: paths.socket }, 'command socket listening');

  const connecting = new AbortController();
  let exiting: Promise<number> | undefined;
  const exit = (why: string, code: number): Promise<number> => {
    exiting ??= (async () => {
      log.info({ why }, 'launcher terminating');
      connecting.abort(new Error(why));
      let rc = code;
      try {
        if (deps.driver.status() === 'connected') await launcher.terminate();
        else log.warn('libvirt not connected at termination; the monitor cleans up the domain');
      } catch (err) {
        log.error({ err }, 'termination cleanup failed');
        rc = 1;
      }
      await server.close().catch(() => undefined);
      await deps.driver.close().catch(() => undefined);
      log.info({ exitCode: rc }, 'launcher exited');
      return rc;
    })();
    return exiting;
  };

  return new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => void exit(sig, 0).then(resolve);
    // `on`, not `once`: tsx's loader re-raises a signal that has no listener left (default action: die).
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('unhandledRejection', (err) => {
      log.fatal({ err }, 'unhandled rejection');
      void exit('unhandledRejection', 1).then(resolve);
    });
    launcher.start(connecting.signal).catch((err: unknown) => {
      if (connecting.signal.aborted) return;
      log.fatal({ err }, 'launcher failed to start');
      void exit('start failed', 1).then(resolve);
    });
  });
}
