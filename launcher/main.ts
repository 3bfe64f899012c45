/**
 * `virtops launcher`: the per-VMI process. Serves the command socket first (so the node
 * agent's health check answers, and info works while libvirt is still down), then loads the
 * launcher, connects to libvirt with backoff, and on SIGTERM/SIGINT stops the domain within
 * the grace period and removes every trace.
 *
 * Exit codes: 0 terminated cleanly; 1 failed (the monitor cleans up after it).
 */
import type { LauncherConfig } from './flags.js';
import { launcherPaths } from './flags.js';
import type { Launcher, LauncherDeps } from './launcher.js';
import type { Logger } from 'pino';

export async function runLauncher(config: LauncherConfig): Promise<number> {
  // Start-up order (BENCHMARKS.md, "launcher start-up"): the socket listens before the
  // launcher's own modules, the libvirt binding (its shared libraries take tens of ms to
  // map), the validator and the converter are loaded; the endpoints other than /healthz wait
  // for the launcher (server.ts). Launcher.start loads the validator and the converter while
  // libvirt connects (prepare.ts): the first PUT waits for libvirt anyway.
  const [{ createLogger }, { startCommandServer }] = await Promise.all([import('./logger.js'), import('./server/server.js')]);
  const log = await createLogger('virtops-launcher', { vmi: `${config.namespace}/${config.name}`, uid: config.uid });
  const paths = launcherPaths(config);
  let loaded!: (l: Launcher) => void;
  let failedToLoad!: (err: unknown) => void;
  const loading = new Promise<Launcher>((resolve, reject) => ((loaded = resolve), (failedToLoad = reject)));

  let server: Awaited<ReturnType<typeof startCommandServer>>;
  try {
    server = await startCommandServer(loading, paths.socket, log);
  } catch (err) {
    log.fatal({ err, socket: paths.socket }, `cannot serve the command socket at ${paths.socket}; check --kubevirt-share-dir`);
    return 1;
  }
  log.info({ socket: paths.socket }, 'command socket listening');

  // A signal while the launcher loads is acted on once it is loaded.
  let signalled: NodeJS.Signals | undefined;
  let onSignal = (sig: NodeJS.Signals): void => void (signalled ??= sig);
  const signalListener = (sig: NodeJS.Signals) => onSignal(sig);
  // `on`, not `once`: tsx's loader re-raises a signal that has no listener left (default action: die).
  process.on('SIGTERM', signalListener);
  process.on('SIGINT', signalListener);

  let launcher: Launcher;
  let deps: LauncherDeps;
  try {
    ({ launcher, deps } = await loadLauncher(config, log));
  } catch (err) {
    failedToLoad(err);
    log.fatal({ err }, 'cannot load the launcher');
    await server.close().catch(() => undefined);
    return 1;
  }
  loaded(launcher);
  // Whether this launcher could have defined anything in libvirt (see exit below).
  let everConnected = false;
  deps.driver.onStatus((status) => void (status === 'connected' && (everConnected = true)));

  const connecting = new AbortController();
  let exiting: Promise<number> | undefined;
  const exit = (why: string, code: number): Promise<number> => {
    exiting ??= (async () => {
      log.info({ why }, 'launcher terminating');
      connecting.abort(new Error(why));
      let rc = code;
      try {
        if (deps.driver.status() === 'connected') await launcher.terminate();
        else if (everConnected) {
          // Connected before (a domain may exist), not now (libvirtd restarting): exit as
          // failed, so the monitor's cleanup connects with retries and removes it. Exiting 0
          // would leave the domain behind: the monitor cleans up only after a failure.
          log.warn('libvirt not connected at termination; the monitor cleans up the domain');
          rc = 1;
        } else log.info('libvirt was never connected: nothing to stop');
      } catch (err) {
        log.error({ err }, 'termination cleanup failed');
        rc = 1;
      }
      launcher.stopWatching();
      await server.close().catch(() => undefined);
      await deps.driver.close().catch(() => undefined);
      log.info({ exitCode: rc }, 'launcher exited');
      return rc;
    })();
    return exiting;
  };

  return new Promise<number>((resolve) => {
    onSignal = (sig) => void exit(sig, 0).then(resolve);
    if (signalled) return onSignal(signalled);
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

/** The launcher and its dependencies (libvirt driver, volumes, converter), not yet started. */
async function loadLauncher(config: LauncherConfig, log: Logger): Promise<{ launcher: Launcher; deps: LauncherDeps }> {
  const [{ Launcher }, { createLauncherDeps }] = await Promise.all([import('./launcher.js'), import('./wiring.js')]);
  const deps = await createLauncherDeps(config, log);
  return { launcher: new Launcher(config, deps), deps };
}
