/**
 * How a long-running command (`up`, `controller`, `agent`, `source watch`, `synth --watch`,
 * `port-forward`) stops on SIGTERM or SIGINT.
 *
 * The first signal runs the command's graceful stop. The handlers stay installed until the
 * process exits, because execa (through signal-exit) re-raises a signal with the default
 * action when, while a child process of ours runs, it finds no other listener for that
 * signal: a command that removed its handler on the first signal was killed mid-stop by that
 * re-raise whenever a git or helper process happened to be running.
 *
 * A second signal while stopping exits at once with code 1, as Kubernetes' components do:
 * whoever sends it wants the process gone, and every stop here is crash-safe (the next start
 * adopts what is running).
 */
export interface StopSignalLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Resolves with what `stop` returns once the first stop signal has been handled (rejects if
 * it throws). `log` gets one line per signal.
 */
export function untilStopped<T>(stop: (signal: NodeJS.Signals) => Promise<T>, log?: StopSignalLog): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log?.warn({ signal }, 'second signal while stopping: exiting now');
        process.exit(1);
      }
      stopping = true;
      log?.info({ signal }, 'signal received');
      stop(signal).then(resolve, reject);
    };
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
  });
}
