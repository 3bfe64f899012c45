import type { Command } from 'commander';
import { LAUNCHER_FLAGS, type LauncherConfig, type RawLauncherFlags, validateLauncherFlags } from '../../launcher/flags.js';

/**
 * `virtops launcher <flags>`: the per-VMI launcher (command socket, libvirt domain).
 * `virtops launcher-monitor <flags>`: wraps the launcher (signals, crash cleanup); this is
 * what the launcher Pod's compute container runs. Both take the same flags; see
 * launcher/flags.ts, launcher/server/README.md and launcher/monitor/monitor.ts.
 */
export function registerLauncher(program: Command): void {
  addFlags(
    program.command('launcher').description('run the launcher for one VMI: converge its libvirt domain and serve the command socket'),
  ).action(async (opts: RawLauncherFlags) => {
    const config = parseOrExit(opts);
    const { runLauncher } = await import('../../launcher/main.js');
    process.exit(await runLauncher(config));
  });

  addFlags(
    program.command('launcher-monitor').description('run and watch the launcher: forward signals, clean up after a crash (exit codes: 0 clean, 1 launcher failed and cleaned up, 2 bad flags, 3 cleanup failed, 4 spawn failed)'),
  ).action(async (opts: RawLauncherFlags, cmd: Command) => {
    const config = parseOrExit(opts);
    const { runMonitor } = await import('../../launcher/monitor/monitor.js');
    process.exit(await runMonitor(config, passThroughArgs(cmd)));
  });
}

function addFlags(cmd: Command): Command {
  for (const f of LAUNCHER_FLAGS) {
    if (f.repeatable) cmd.option(f.flag, f.description, (v: string, prev: string[] = []) => [...prev, v]);
    else cmd.option(f.flag, f.description + (f.default ? ` (default ${f.default})` : ''));
  }
  return cmd;
}

/** The monitor passes its own flags on unchanged (as given, so defaults stay the launcher's). */
function passThroughArgs(cmd: Command): string[] {
  const i = process.argv.indexOf(cmd.name());
  return i >= 0 ? process.argv.slice(i + 1) : [];
}

function parseOrExit(opts: RawLauncherFlags): LauncherConfig {
  const r = validateLauncherFlags(opts);
  if (!r.ok) {
    process.stderr.write(`virtops: invalid flags:\n${r.errors.map((e) => `  ${e}`).join('\n')}\n`);
    process.exit(2);
  }
  return r.config;
}
